// 2-D max and average pooling (NCHW), forward and backward, one launch each.
// Semantics: gpunet/ops/pool.py (the reference). Max pooling pads with -inf and sends the
// gradient to each window's first maximum (row-major tap order); average pooling counts the
// zero padding (count_include_pad). Every array is C-contiguous.
//
// Forward: one thread per output element (n, c, r, s) through a grid-stride loop; max pooling
// also writes the flat position r * W + s (in the unpadded plane) of the first maximum, as a
// value of the array's dtype (exact: the launcher keeps H * W below 2^24).
// Backward: one thread per input element gathers the windows that contain it (no atomics, so
// the result is deterministic). Launch: block (THREADS, 1, 1), any grid.
// Max and average share the two walks below (window taps forward, containing windows backward);
// they differ only in what they do at each tap.

#define THREADS 256

namespace pool {

struct Geo {
    int planes, h, w, oh, ow, kh, kw, sh, sw, ph, pw;
};

// Output windows [lo, hi] along one axis that contain input position i (padded coordinate i + p).
__device__ __forceinline__ void window_range(int i, int p, int k, int s, int out, int* lo, int* hi) {
    const int ip = i + p;
    int first = ip - k + 1;
    first = first <= 0 ? 0 : (first + s - 1) / s;
    int last = ip / s;
    if (last > out - 1) last = out - 1;
    *lo = first;
    *hi = last;
}

// Grid-stride loop over `total` elements; each thread calls body(e) for its elements.
template <typename Body>
__device__ __forceinline__ void grid_stride(long long total, Body body) {
    for (long long e = blockIdx.x * (long long)blockDim.x + threadIdx.x; e < total;
         e += (long long)gridDim.x * blockDim.x)
        body(e);
}

// Forward walk: for output element e, tap(flat index into x, flat in-plane position) over the
// window's in-bounds taps, in row-major tap order.
template <typename Tap>
__device__ __forceinline__ void window_taps(long long e, const Geo& g, Tap tap) {
    const int s = (int)(e % g.ow);
    const int r = (int)((e / g.ow) % g.oh);
    const long long plane = (e / ((long long)g.ow * g.oh)) * g.h * g.w;
    for (int p = 0; p < g.kh; ++p) {
        const int i = r * g.sh - g.ph + p;
        if (i < 0 || i >= g.h) continue;
        for (int q = 0; q < g.kw; ++q) {
            const int j = s * g.sw - g.pw + q;
            if (j >= 0 && j < g.w) tap(plane + i * g.w + j, i * g.w + j);
        }
    }
}

// Backward walk: for input element e, visit(flat output index o, e's in-plane position) over the
// output windows that contain it.
template <typename Visit>
__device__ __forceinline__ void containing_windows(long long e, const Geo& g, Visit visit) {
    const int j = (int)(e % g.w);
    const int i = (int)((e / g.w) % g.h);
    const long long base = (e / ((long long)g.w * g.h)) * g.oh * g.ow;
    int r0, r1, s0, s1;
    window_range(i, g.ph, g.kh, g.sh, g.oh, &r0, &r1);
    window_range(j, g.pw, g.kw, g.sw, g.ow, &s0, &s1);
    for (int r = r0; r <= r1; ++r)
        for (int s = s0; s <= s1; ++s) visit(base + (long long)r * g.ow + s, i * g.w + j);
}

template <typename T>
__device__ void max_fwd(const T* x, T* y, T* index, Geo g) {
    grid_stride((long long)g.planes * g.oh * g.ow, [&](long long e) {
        bool found = false;
        T best = T(0);
        int where = 0;
        window_taps(e, g, [&](long long at, int pos) {
            const T v = x[at];
            // first maximum; a NaN wins once and is kept (as the reference's tap > y rule)
            if (!found || v > best || (v != v && best == best)) {
                best = v;
                where = pos;
                found = true;
            }
        });
        y[e] = best;
        index[e] = T(where);
    });
}

template <typename T>
__device__ void max_bwd(const T* gy, const T* index, T* gx, Geo g) {
    grid_stride((long long)g.planes * g.h * g.w, [&](long long e) {
        T acc = T(0);
        containing_windows(e, g, [&](long long o, int me) {
            if (index[o] == T(me)) acc += gy[o];
        });
        gx[e] = acc;
    });
}

template <typename T>
__device__ void avg_fwd(const T* x, T* y, Geo g) {
    const T scale = T(1) / T(g.kh * g.kw);
    grid_stride((long long)g.planes * g.oh * g.ow, [&](long long e) {
        T acc = T(0);
        window_taps(e, g, [&](long long at, int) { acc += x[at]; });
        y[e] = acc * scale;
    });
}

template <typename T>
__device__ void avg_bwd(const T* gy, T* gx, Geo g) {
    const T scale = T(1) / T(g.kh * g.kw);
    grid_stride((long long)g.planes * g.h * g.w, [&](long long e) {
        T acc = T(0);
        containing_windows(e, g, [&](long long o, int) { acc += gy[o]; });
        gx[e] = acc * scale;
    });
}

}  // namespace pool

#define POOL_GEO_PARAMS int planes, int h, int w, int oh, int ow, int kh, int kw, int sh, int sw, \
    int ph, int pw
#define POOL_GEO pool::Geo{planes, h, w, oh, ow, kh, kw, sh, sw, ph, pw}

extern "C" {

__global__ void __launch_bounds__(THREADS) max_pool_fwd_f32(const float* x, float* y, float* index,
                                                            POOL_GEO_PARAMS) {
    pool::max_fwd<float>(x, y, index, POOL_GEO);
}
__global__ void __launch_bounds__(THREADS) max_pool_fwd_f64(const double* x, double* y, double* index,
                                                            POOL_GEO_PARAMS) {
    pool::max_fwd<double>(x, y, index, POOL_GEO);
}
__global__ void __launch_bounds__(THREADS) max_pool_bwd_f32(const float* gy, const float* index,
                                                            float* gx, POOL_GEO_PARAMS) {
    pool::max_bwd<float>(gy, index, gx, POOL_GEO);
}
__global__ void __launch_bounds__(THREADS) max_pool_bwd_f64(const double* gy, const double* index,
                                                            double* gx, POOL_GEO_PARAMS) {
    pool::max_bwd<double>(gy, index, gx, POOL_GEO);
}
__global__ void __launch_bounds__(THREADS) avg_pool_fwd_f32(const float* x, float* y,
                                                            POOL_GEO_PARAMS) {
    pool::avg_fwd<float>(x, y, POOL_GEO);
}
__global__ void __launch_bounds__(THREADS) avg_pool_fwd_f64(const double* x, double* y,
                                                            POOL_GEO_PARAMS) {
    pool::avg_fwd<double>(x, y, POOL_GEO);
}
__global__ void __launch_bounds__(THREADS) avg_pool_bwd_f32(const float* gy, float* gx,
                                                            POOL_GEO_PARAMS) {
    pool::avg_bwd<float>(gy, gx, POOL_GEO);
}
__global__ void __launch_bounds__(THREADS) avg_pool_bwd_f64(const double* gy, double* gx,
                                                            POOL_GEO_PARAMS) {
    pool::avg_bwd<double>(gy, gx, POOL_GEO);
}

}  // extern "C"
