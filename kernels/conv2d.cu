// conv2d (NCHW, weight (C_out, C_in, kh, kw)) as implicit GEMM: forward, backward-to-input,
// backward-to-weight. Semantics: gpunet/functional/conv_impl.py. Design: kernels/README.md.
//
// One generic tiled GEMM C[M, N] = sum_k A[m, k] * B[k, n] where A and B are never
// materialised: an "operand" struct computes their elements from the NCHW tensors on the fly
// (the implicit im2col), and stores C back in NCHW. Each block of 256 threads owns a 64 x 64
// tile of C, walks K in steps of 16 through shared memory, and each thread accumulates a 4 x 4
// register micro-tile (rows tx + 16*i, cols ty + 16*j: conflict-free shared reads and
// coalesced stores along m). Out-of-range rows, columns and taps load as zero.
//
// Kernel parameters (all three kernels): in, in, out pointers, the geometry as 15 ints
//   n, c_in, h, w, c_out, kh, kw, ho, wo, sh, sw, ph, pw, dh, dw
// and k_chunk (split-K: reduction length per grid z-slice; >= K means no split).
// Launch: block (256, 1, 1), grid (ceil(M / 64), ceil(N / 64), splits). With splits > 1 the
// output pointer is a (splits, M * N) workspace that conv2d_split_sum_* then reduces.

#define CONV_GEOM_PARAMS                                                              \
    int n, int c_in, int h, int w, int c_out, int kh, int kw, int ho, int wo, int sh, \
        int sw, int ph, int pw, int dh, int dw
#define CONV_GEOM_ARGS {n, c_in, h, w, c_out, kh, kw, ho, wo, sh, sw, ph, pw, dh, dw}

namespace conv {

constexpr int BM = 64;       // tile rows (m)
constexpr int BN = 64;       // tile columns (n)
constexpr int BK = 16;       // reduction step
constexpr int TM = 4;        // micro-tile rows per thread
constexpr int TN = 4;        // micro-tile columns per thread
constexpr int THREADS = 256; // (BM / TM) * (BN / TN)
constexpr int TX = BM / TM;  // 16 threads along m
static_assert(TX * (BN / TN) == THREADS, "micro-tiles must cover the tile");
static_assert(THREADS % BM == 0 && THREADS % BK == 0, "loader mapping");

struct Geom {
    int n, c_in, h, w, c_out, kh, kw, ho, wo, sh, sw, ph, pw, dh, dw;
};

// Each operand struct decodes a reduction index k once per tile into a Tap (shared by every
// thread of the block through shared memory) and an output index m once per thread into a Row,
// so the element loads a()/b() need no integer division.

// Forward: m = (n, oh, ow), n = c_out, k = (c, p, q).
template <typename T>
struct Forward {
    const T* __restrict__ x;
    const T* __restrict__ wt;
    T* __restrict__ y;
    Geom g;
    int M, N, K;

    struct Row { const T* base; int ih0, iw0; bool ok; };
    struct Tap { long long xoff; int dh, dw, k; bool ok; };

    __device__ Row row(int m) const {
        const int hw = g.ho * g.wo;
        const int b = m / hw, pix = m - b * hw, oh = pix / g.wo, ow = pix - oh * g.wo;
        return {x + (long long)b * g.c_in * g.h * g.w, oh * g.sh - g.ph, ow * g.sw - g.pw, m < M};
    }
    __device__ Tap tap(int k, int k_end) const {
        const int taps = g.kh * g.kw;
        const int c = k / taps, t = k - c * taps, p = t / g.kw, q = t - p * g.kw;
        return {(long long)c * g.h * g.w, p * g.dh, q * g.dw, k, k < k_end};
    }
    __device__ T a(const Row& r, const Tap& t) const {
        const int ih = r.ih0 + t.dh, iw = r.iw0 + t.dw;
        if (!r.ok || !t.ok || ih < 0 || ih >= g.h || iw < 0 || iw >= g.w) return T(0);
        return r.base[t.xoff + (long long)ih * g.w + iw];
    }
    __device__ T b(const Tap& t, int o) const {
        return (t.ok && o < N) ? wt[(long long)o * K + t.k] : T(0);
    }
    __device__ void store(int m, int o, T v) const {
        const int hw = g.ho * g.wo;
        const int b = m / hw, pix = m - b * hw;
        y[((long long)b * g.c_out + o) * hw + pix] = v;
    }
};

// Backward to input (gather form): m = (n, ih, iw), n = c_in, k = (o, p, q); the tap (p, q)
// reaches output (oh, ow) when ih + ph - p*dh = oh*sh (divisible, in range), same for w.
template <typename T>
struct BackwardInput {
    const T* __restrict__ gy;
    const T* __restrict__ wt;
    T* __restrict__ gx;
    Geom g;
    int M, N, K;

    struct Row { const T* base; int th, tw; bool ok; };
    struct Tap { long long goff, woff; int dh, dw; bool ok; };

    __device__ Row row(int m) const {
        const int hw = g.h * g.w;
        const int b = m / hw, pix = m - b * hw, ih = pix / g.w, iw = pix - ih * g.w;
        return {gy + (long long)b * g.c_out * g.ho * g.wo, ih + g.ph, iw + g.pw, m < M};
    }
    __device__ Tap tap(int k, int k_end) const {
        const int taps = g.kh * g.kw;
        const int o = k / taps, t = k - o * taps, p = t / g.kw, q = t - p * g.kw;
        return {(long long)o * g.ho * g.wo, (long long)o * g.c_in * taps + t, p * g.dh, q * g.dw,
                k < k_end};
    }
    __device__ T a(const Row& r, const Tap& t) const {
        int vh = r.th - t.dh, vw = r.tw - t.dw;
        if (!r.ok || !t.ok || vh < 0 || vw < 0) return T(0);
        if (g.sh != 1) {
            if (vh % g.sh != 0) return T(0);
            vh /= g.sh;
        }
        if (g.sw != 1) {
            if (vw % g.sw != 0) return T(0);
            vw /= g.sw;
        }
        if (vh >= g.ho || vw >= g.wo) return T(0);
        return r.base[t.goff + (long long)vh * g.wo + vw];
    }
    __device__ T b(const Tap& t, int ci) const {
        return (t.ok && ci < N) ? wt[t.woff + (long long)ci * g.kh * g.kw] : T(0);
    }
    __device__ void store(int m, int ci, T v) const {
        const int hw = g.h * g.w;
        const int b = m / hw, pix = m - b * hw;
        gx[((long long)b * g.c_in + ci) * hw + pix] = v;
    }
};

// Backward to weight: m = (c, p, q), n = c_out, reduction k = (n, oh, ow).
template <typename T>
struct BackwardWeight {
    const T* __restrict__ x;
    const T* __restrict__ gy;
    T* __restrict__ gw;
    Geom g;
    int M, N, K;

    struct Row { const T* base; int dh, dw; bool ok; };
    struct Tap { long long xoff, goff; int ih, iw; bool ok; };

    __device__ Row row(int m) const {
        const int taps = g.kh * g.kw;
        const int c = m / taps, t = m - c * taps, p = t / g.kw, q = t - p * g.kw;
        return {x + (long long)c * g.h * g.w, p * g.dh - g.ph, q * g.dw - g.pw, m < M};
    }
    __device__ Tap tap(int k, int k_end) const {
        const int hw = g.ho * g.wo;
        const int b = k / hw, pix = k - b * hw, oh = pix / g.wo, ow = pix - oh * g.wo;
        return {(long long)b * g.c_in * g.h * g.w, (long long)b * g.c_out * hw + pix, oh * g.sh,
                ow * g.sw, k < k_end};
    }
    __device__ T a(const Row& r, const Tap& t) const {
        const int ih = t.ih + r.dh, iw = t.iw + r.dw;
        if (!r.ok || !t.ok || ih < 0 || ih >= g.h || iw < 0 || iw >= g.w) return T(0);
        return r.base[t.xoff + (long long)ih * g.w + iw];
    }
    __device__ T b(const Tap& t, int o) const {
        return (t.ok && o < N) ? gy[t.goff + (long long)o * g.ho * g.wo] : T(0);
    }
    __device__ void store(int m, int o, T v) const { gw[(long long)o * M + m] = v; }
};

// The tiled GEMM shared by all three kernels. Split-K: block z reduces k in
// [z * k_chunk, (z + 1) * k_chunk) and the caller points the output at slice z of a workspace.
template <typename T, typename Op>
__device__ __forceinline__ void implicit_gemm(const Op& op, int k_chunk) {
    __shared__ T As[BK][BM];
    __shared__ T Bs[BK][BN + 1];  // +1: the k-fastest stores below hit distinct banks
    __shared__ typename Op::Tap taps[2][BK];  // decoded k of this tile and the next

    const int tid = threadIdx.x;
    const int tx = tid % TX, ty = tid / TX;
    const int m0 = blockIdx.x * BM, n0 = blockIdx.y * BN;
    const int k_begin = blockIdx.z * k_chunk;
    const int k_end = op.K < k_begin + k_chunk ? op.K : k_begin + k_chunk;
    // Loaders: A keeps one row per thread (decoded once), B one k per thread and tile.
    const int a_m = tid % BM, a_k = tid / BM;
    const int b_k = tid % BK, b_n = tid / BK;
    const typename Op::Row arow = op.row(m0 + a_m);

    T acc[TM][TN];
    for (int i = 0; i < TM; ++i)
        for (int j = 0; j < TN; ++j) acc[i][j] = T(0);

    if (tid < BK) taps[0][tid] = op.tap(k_begin + tid, k_end);
    __syncthreads();
    int buf = 0;
    for (int k0 = k_begin; k0 < k_end; k0 += BK) {
        for (int r = 0; r < BK * BM / THREADS; ++r) {
            const int kk = a_k + r * (THREADS / BM);
            As[kk][a_m] = op.a(arow, taps[buf][kk]);
        }
        for (int r = 0; r < BK * BN / THREADS; ++r) {
            const int nn = b_n + r * (THREADS / BK);
            Bs[b_k][nn] = op.b(taps[buf][b_k], n0 + nn);
        }
        if (tid < BK) taps[buf ^ 1][tid] = op.tap(k0 + BK + tid, k_end);
        __syncthreads();
#pragma unroll
        for (int kk = 0; kk < BK; ++kk) {
            T av[TM], bv[TN];
            for (int i = 0; i < TM; ++i) av[i] = As[kk][tx + i * TX];
            for (int j = 0; j < TN; ++j) bv[j] = Bs[kk][ty + j * (BN / TN)];
            for (int i = 0; i < TM; ++i)
                for (int j = 0; j < TN; ++j) acc[i][j] += av[i] * bv[j];
        }
        __syncthreads();
        buf ^= 1;
    }
    for (int i = 0; i < TM; ++i) {
        const int m = m0 + tx + i * TX;
        for (int j = 0; j < TN; ++j) {
            const int nn = n0 + ty + j * (BN / TN);
            if (m < op.M && nn < op.N) op.store(m, nn, acc[i][j]);
        }
    }
}

// Output slice of this block's split (z = 0 without split-K): slices are M * N apart.
template <typename T>
__device__ __forceinline__ T* split_slice(T* out, int M, int N) {
    return out + (long long)blockIdx.z * M * N;
}

template <typename T>
__device__ __forceinline__ void forward(const T* x, const T* wt, T* y, Geom g, int k_chunk) {
    const int M = g.n * g.ho * g.wo, N = g.c_out;
    const Forward<T> op{x, wt, split_slice(y, M, N), g, M, N, g.c_in * g.kh * g.kw};
    implicit_gemm<T>(op, k_chunk);
}

template <typename T>
__device__ __forceinline__ void backward_input(const T* gy, const T* wt, T* gx, Geom g,
                                               int k_chunk) {
    const int M = g.n * g.h * g.w, N = g.c_in;
    const BackwardInput<T> op{gy, wt, split_slice(gx, M, N), g, M, N, g.c_out * g.kh * g.kw};
    implicit_gemm<T>(op, k_chunk);
}

template <typename T>
__device__ __forceinline__ void backward_weight(const T* x, const T* gy, T* gw, Geom g,
                                                int k_chunk) {
    const int M = g.c_in * g.kh * g.kw, N = g.c_out;
    const BackwardWeight<T> op{x, gy, split_slice(gw, M, N), g, M, N, g.n * g.ho * g.wo};
    implicit_gemm<T>(op, k_chunk);
}

// out[i] = sum over splits z of ws[z * count + i], in a fixed order (deterministic).
template <typename T>
__device__ __forceinline__ void split_sum(const T* ws, T* out, int splits, int count) {
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < count;
         i += (long long)gridDim.x * blockDim.x) {
        T s = T(0);
        for (int z = 0; z < splits; ++z) s += ws[(long long)z * count + i];
        out[i] = s;
    }
}

}  // namespace conv

// MINB: blocks per SM that ptxas must fit (caps registers at 64 for f32, 128 for f64).
#define CONV_KERNELS(SUFFIX, T, MINB)                                                              \
    __global__ void __launch_bounds__(256, MINB) conv2d_fwd_##SUFFIX(                              \
        const T* x, const T* wt, T* y, CONV_GEOM_PARAMS, int k_chunk) {                            \
        conv::forward<T>(x, wt, y, CONV_GEOM_ARGS, k_chunk);                                       \
    }                                                                                              \
    __global__ void __launch_bounds__(256, MINB) conv2d_bwd_input_##SUFFIX(                        \
        const T* gy, const T* wt, T* gx, CONV_GEOM_PARAMS, int k_chunk) {                          \
        conv::backward_input<T>(gy, wt, gx, CONV_GEOM_ARGS, k_chunk);                              \
    }                                                                                              \
    __global__ void __launch_bounds__(256, MINB) conv2d_bwd_weight_##SUFFIX(                       \
        const T* x, const T* gy, T* gw, CONV_GEOM_PARAMS, int k_chunk) {                           \
        conv::backward_weight<T>(x, gy, gw, CONV_GEOM_ARGS, k_chunk);                              \
    }                                                                                              \
    __global__ void __launch_bounds__(256, MINB) conv2d_split_sum_##SUFFIX(                        \
        const T* ws, T* out, int splits, int count) {                                              \
        conv::split_sum<T>(ws, out, splits, count);                                                \
    }

extern "C" {
CONV_KERNELS(f32, float, 4)
CONV_KERNELS(f64, double, 2)
}
