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
// Kernel parameters (all three kernels): geometry as 15 ints
//   n, c_in, h, w, c_out, kh, kw, ho, wo, sh, sw, ph, pw, dh, dw
// Launch: block (256, 1, 1), grid (ceil(M / 64), ceil(N / 64), 1).

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

// Forward: m = (n, oh, ow), n = c_out, k = (c, p, q).
template <typename T>
struct Forward {
    const T* __restrict__ x;
    const T* __restrict__ wt;
    T* __restrict__ y;
    Geom g;
    int M, N, K;

    struct Row { const T* base; int ih0, iw0; bool ok; };
    struct Col { int k; bool ok; };

    __device__ Row row(int m) const {
        const int hw = g.ho * g.wo;
        const int b = m / hw, pix = m - b * hw, oh = pix / g.wo, ow = pix - oh * g.wo;
        return {x + (long long)b * g.c_in * g.h * g.w, oh * g.sh - g.ph, ow * g.sw - g.pw, m < M};
    }
    __device__ T a(const Row& r, int k) const {
        if (!r.ok || k >= K) return T(0);
        const int taps = g.kh * g.kw;
        const int c = k / taps, t = k - c * taps, p = t / g.kw, q = t - p * g.kw;
        const int ih = r.ih0 + p * g.dh, iw = r.iw0 + q * g.dw;
        if (ih < 0 || ih >= g.h || iw < 0 || iw >= g.w) return T(0);
        return r.base[((long long)c * g.h + ih) * g.w + iw];
    }
    __device__ Col col(int k) const { return {k, k < K}; }
    __device__ T b(const Col& c, int o) const {
        return (c.ok && o < N) ? wt[(long long)o * K + c.k] : T(0);
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
    struct Col { long long off; bool ok; };

    __device__ Row row(int m) const {
        const int hw = g.h * g.w;
        const int b = m / hw, pix = m - b * hw, ih = pix / g.w, iw = pix - ih * g.w;
        return {gy + (long long)b * g.c_out * g.ho * g.wo, ih + g.ph, iw + g.pw, m < M};
    }
    __device__ T a(const Row& r, int k) const {
        if (!r.ok || k >= K) return T(0);
        const int taps = g.kh * g.kw;
        const int o = k / taps, t = k - o * taps, p = t / g.kw, q = t - p * g.kw;
        const int vh = r.th - p * g.dh, vw = r.tw - q * g.dw;
        if (vh < 0 || vw < 0 || vh % g.sh != 0 || vw % g.sw != 0) return T(0);
        const int oh = vh / g.sh, ow = vw / g.sw;
        if (oh >= g.ho || ow >= g.wo) return T(0);
        return r.base[((long long)o * g.ho + oh) * g.wo + ow];
    }
    __device__ Col col(int k) const {
        const int taps = g.kh * g.kw;
        const int o = k / taps, t = k - o * taps;
        return {(long long)o * g.c_in * taps + t, k < K};
    }
    __device__ T b(const Col& c, int ci) const {
        return (c.ok && ci < N) ? wt[c.off + (long long)ci * g.kh * g.kw] : T(0);
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

    struct Row { const T* base; int oh0, ow0; bool ok; };
    struct Col { long long off; bool ok; };

    __device__ Row row(int m) const {
        const int taps = g.kh * g.kw;
        const int c = m / taps, t = m - c * taps, p = t / g.kw, q = t - p * g.kw;
        return {x + (long long)c * g.h * g.w, p * g.dh - g.ph, q * g.dw - g.pw, m < M};
    }
    __device__ T a(const Row& r, int k) const {
        if (!r.ok || k >= K) return T(0);
        const int hw = g.ho * g.wo;
        const int b = k / hw, pix = k - b * hw, oh = pix / g.wo, ow = pix - oh * g.wo;
        const int ih = oh * g.sh + r.oh0, iw = ow * g.sw + r.ow0;
        if (ih < 0 || ih >= g.h || iw < 0 || iw >= g.w) return T(0);
        return r.base[((long long)b * g.c_in * g.h + ih) * g.w + iw];
    }
    __device__ Col col(int k) const {
        const int hw = g.ho * g.wo;
        const int b = k / hw, pix = k - b * hw;
        return {(long long)b * g.c_out * hw + pix, k < K};
    }
    __device__ T b(const Col& c, int o) const {
        return (c.ok && o < N) ? gy[c.off + (long long)o * g.ho * g.wo] : T(0);
    }
    __device__ void store(int m, int o, T v) const { gw[(long long)o * M + m] = v; }
};

// The tiled GEMM shared by all three kernels.
template <typename T, typename Op>
__device__ __forceinline__ void implicit_gemm(const Op& op) {
    __shared__ T As[BK][BM];
    __shared__ T Bs[BK][BN + 1];  // +1: the k-fastest stores below hit distinct banks

    const int tid = threadIdx.x;
    const int tx = tid % TX, ty = tid / TX;
    const int m0 = blockIdx.x * BM, n0 = blockIdx.y * BN;
    // Loaders: A keeps one row per thread (decoded once), B one k per thread and tile.
    const int a_m = tid % BM, a_k = tid / BM;
    const int b_k = tid % BK, b_n = tid / BK;
    const typename Op::Row arow = op.row(m0 + a_m);

    T acc[TM][TN];
    for (int i = 0; i < TM; ++i)
        for (int j = 0; j < TN; ++j) acc[i][j] = T(0);

    for (int k0 = 0; k0 < op.K; k0 += BK) {
        for (int r = 0; r < BK * BM / THREADS; ++r) {
            const int kk = a_k + r * (THREADS / BM);
            As[kk][a_m] = op.a(arow, k0 + kk);
        }
        const typename Op::Col bcol = op.col(k0 + b_k);
        for (int r = 0; r < BK * BN / THREADS; ++r) {
            const int nn = b_n + r * (THREADS / BK);
            Bs[b_k][nn] = op.b(bcol, n0 + nn);
        }
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
    }
    for (int i = 0; i < TM; ++i) {
        const int m = m0 + tx + i * TX;
        for (int j = 0; j < TN; ++j) {
            const int nn = n0 + ty + j * (BN / TN);
            if (m < op.M && nn < op.N) op.store(m, nn, acc[i][j]);
        }
    }
}

template <typename T>
__device__ __forceinline__ void forward(const T* x, const T* wt, T* y, Geom g) {
    const Forward<T> op{x, wt, y, g, g.n * g.ho * g.wo, g.c_out, g.c_in * g.kh * g.kw};
    implicit_gemm<T>(op);
}

template <typename T>
__device__ __forceinline__ void backward_input(const T* gy, const T* wt, T* gx, Geom g) {
    const BackwardInput<T> op{gy, wt, gx, g, g.n * g.h * g.w, g.c_in, g.c_out * g.kh * g.kw};
    implicit_gemm<T>(op);
}

template <typename T>
__device__ __forceinline__ void backward_weight(const T* x, const T* gy, T* gw, Geom g) {
    const BackwardWeight<T> op{x, gy, gw, g, g.c_in * g.kh * g.kw, g.c_out, g.n * g.ho * g.wo};
    implicit_gemm<T>(op);
}

}  // namespace conv

extern "C" {

__global__ void __launch_bounds__(256) conv2d_fwd_f32(const float* x, const float* wt, float* y,
                                                      CONV_GEOM_PARAMS) {
    conv::forward<float>(x, wt, y, CONV_GEOM_ARGS);
}
__global__ void __launch_bounds__(256) conv2d_fwd_f64(const double* x, const double* wt, double* y,
                                                      CONV_GEOM_PARAMS) {
    conv::forward<double>(x, wt, y, CONV_GEOM_ARGS);
}
__global__ void __launch_bounds__(256) conv2d_bwd_input_f32(const float* gy, const float* wt,
                                                            float* gx, CONV_GEOM_PARAMS) {
    conv::backward_input<float>(gy, wt, gx, CONV_GEOM_ARGS);
}
__global__ void __launch_bounds__(256) conv2d_bwd_input_f64(const double* gy, const double* wt,
                                                            double* gx, CONV_GEOM_PARAMS) {
    conv::backward_input<double>(gy, wt, gx, CONV_GEOM_ARGS);
}
__global__ void __launch_bounds__(256) conv2d_bwd_weight_f32(const float* x, const float* gy,
                                                             float* gw, CONV_GEOM_PARAMS) {
    conv::backward_weight<float>(x, gy, gw, CONV_GEOM_ARGS);
}
__global__ void __launch_bounds__(256) conv2d_bwd_weight_f64(const double* x, const double* gy,
                                                             double* gw, CONV_GEOM_PARAMS) {
    conv::backward_weight<double>(x, gy, gw, CONV_GEOM_ARGS);
}

}  // extern "C"
