// Fused elementwise and row kernels of a training step: the SGD update, ReLU forward/backward,
// and cross-entropy (log-softmax + negative log-likelihood) forward and backward.
// Semantics: gpunet/ops/fused.py (the references), term by term. Every array is C-contiguous.
//
// sgd_step: one thread per element (grid-stride); PyTorch's SGD with momentum, dampening,
//   Nesterov, weight decay and maximize; flags bit 0 nesterov, bit 1 maximize, bit 2 first step
//   (the momentum buffer is set to the direction instead of blended into).
// relu_fwd / relu_bwd: one thread per element; the backward reads the forward's output
//   (y > 0 exactly where x > 0).
// xent_fwd: one thread per row of the (M, C) logits: log-softmax written to logp, the row's loss
//   (label smoothing eps, optional class weights, ignore_index rows 0, labels outside [0, C) NaN)
//   and its weight w_row. xent_reduce: one block sums the rows in a fixed order (deterministic)
//   into out[0] (sum, or sum / sum(w_row) for mean, that denominator kept in denom[0]).
// xent_bwd: one thread per row, the gradient of the logits.
// Launch: block (THREADS, 1, 1), any grid (xent_reduce: grid (1, 1, 1)).

#define THREADS 256

namespace fused {

__device__ __forceinline__ float exp_(float v) { return expf(v); }
__device__ __forceinline__ double exp_(double v) { return exp(v); }
__device__ __forceinline__ float log_(float v) { return logf(v); }
__device__ __forceinline__ double log_(double v) { return log(v); }
__device__ __forceinline__ float nan_(float) { return nanf(""); }
__device__ __forceinline__ double nan_(double) { return nan(""); }

template <typename T>
__device__ void sgd_step(T* p, const T* grad, T* buf, int n, T lr, T momentum, T dampening,
                         T weight_decay, int flags) {
    const bool nesterov = flags & 1, maximize = flags & 2, first = flags & 4;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
        T d = maximize ? -grad[i] : grad[i];
        if (weight_decay != T(0)) d = d + weight_decay * p[i];
        if (momentum != T(0)) {
            const T b = first ? d
                              : momentum * buf[i] + (dampening == T(0) ? d : (T(1) - dampening) * d);
            buf[i] = b;
            d = nesterov ? d + momentum * b : b;
        }
        p[i] = p[i] - lr * d;
    }
}

template <typename T>
__device__ void relu_fwd(const T* x, T* y, int n) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
        const T v = x[i];
        y[i] = v > T(0) ? v : T(0);
    }
}

template <typename T>
__device__ void relu_bwd(const T* y, const T* gy, T* gx, int n) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x)
        gx[i] = y[i] > T(0) ? gy[i] : T(0);
}

// The class a row's loss reads: 0 for ignored rows (keep false), clamped for out-of-range labels.
__device__ __forceinline__ int gather_index(long long t, int c, bool keep) {
    if (!keep) return 0;
    return t < 0 ? 0 : (t >= c ? c - 1 : (int)t);
}

template <typename T>
__device__ void xent_fwd(const T* x, const long long* labels, const T* weight, T* logp, T* loss,
                         T* w_row, int m, int c, int ignore_index, int has_weight, T eps) {
    for (int row = blockIdx.x * blockDim.x + threadIdx.x; row < m; row += gridDim.x * blockDim.x) {
        const T* xr = x + (long long)row * c;
        T* lp = logp + (long long)row * c;
        T top = xr[0];
        for (int j = 1; j < c; ++j)
            if (xr[j] > top || xr[j] != xr[j]) top = xr[j];
        T total = T(0);
        for (int j = 0; j < c; ++j) total += exp_(xr[j] - top);
        const T lse = log_(total);
        T smooth = T(0);
        for (int j = 0; j < c; ++j) {
            lp[j] = (xr[j] - top) - lse;
            smooth += (has_weight ? weight[j] : T(1)) * lp[j];
        }
        const long long t = labels[row];
        const bool keep = t != (long long)ignore_index;
        const int g = gather_index(t, c, keep);
        const T wr = keep ? (has_weight ? weight[g] : T(1)) : T(0);
        T value = (T(1) - eps) * wr * -lp[g];
        if (eps != T(0)) value = value + (eps / T(c)) * -smooth * (keep ? T(1) : T(0));
        if (keep && (t < 0 || t >= c)) value = nan_(T(0));
        loss[row] = value;
        w_row[row] = wr;
    }
}

template <typename T>
__device__ void xent_reduce(const T* loss, const T* w_row, T* out, T* denom, int m, int mean) {
    __shared__ T part[2][THREADS];
    const int tid = threadIdx.x;
    T s = T(0), w = T(0);
    for (int row = tid; row < m; row += blockDim.x) {
        s += loss[row];
        w += w_row[row];
    }
    part[0][tid] = s;
    part[1][tid] = w;
    __syncthreads();
    for (int half = THREADS / 2; half > 0; half /= 2) {
        if (tid < half) {
            part[0][tid] += part[0][tid + half];
            part[1][tid] += part[1][tid + half];
        }
        __syncthreads();
    }
    if (tid == 0) {
        out[0] = mean ? part[0][0] / part[1][0] : part[0][0];
        denom[0] = part[1][0];
    }
}

// reduction: 0 none (gy per row), 1 sum, 2 mean (gy / denom[0]).
template <typename T>
__device__ void xent_bwd(const T* gy, const T* denom, const T* logp, const long long* labels,
                         const T* w_row, const T* weight, T* gx, int m, int c, int ignore_index,
                         int has_weight, int reduction, T eps) {
    for (int row = blockIdx.x * blockDim.x + threadIdx.x; row < m; row += gridDim.x * blockDim.x) {
        const T s = reduction == 0 ? gy[row] : (reduction == 2 ? gy[0] / denom[0] : gy[0]);
        const long long t = labels[row];
        const bool keep = t != (long long)ignore_index;
        const int g = gather_index(t, c, keep);
        const T spread = keep ? (eps / T(c)) * s : T(0);  // the smoothing share per unit weight
        const T hit = (T(1) - eps) * w_row[row] * s;
        T weights = T(c);
        if (has_weight) {
            weights = T(0);
            for (int j = 0; j < c; ++j) weights += weight[j];
        }
        const T row_sum = -(spread * weights + hit);  // sum over the classes of d loss / d logp
        const T* lp = logp + (long long)row * c;
        T* out = gx + (long long)row * c;
#pragma unroll 1
        for (int j = 0; j < c; ++j) {
            T d = -spread * (has_weight ? weight[j] : T(1));
            if (j == g) d -= hit;
            out[j] = d - exp_(lp[j]) * row_sum;
        }
    }
}

}  // namespace fused

#define FUSED_KERNELS(T, S)                                                                     \
    __global__ void __launch_bounds__(THREADS) sgd_step_##S(T* p, const T* grad, T* buf, int n, \
                                                            T lr, T momentum, T dampening,     \
                                                            T weight_decay, int flags) {       \
        fused::sgd_step<T>(p, grad, buf, n, lr, momentum, dampening, weight_decay, flags);      \
    }                                                                                           \
    __global__ void __launch_bounds__(THREADS) relu_fwd_##S(const T* x, T* y, int n) {          \
        fused::relu_fwd<T>(x, y, n);                                                            \
    }                                                                                           \
    __global__ void __launch_bounds__(THREADS) relu_bwd_##S(const T* y, const T* gy, T* gx,     \
                                                            int n) {                           \
        fused::relu_bwd<T>(y, gy, gx, n);                                                       \
    }                                                                                           \
    __global__ void __launch_bounds__(THREADS) xent_fwd_##S(                                    \
        const T* x, const long long* labels, const T* weight, T* logp, T* loss, T* w_row,      \
        int m, int c, int ignore_index, int has_weight, T eps) {                               \
        fused::xent_fwd<T>(x, labels, weight, logp, loss, w_row, m, c, ignore_index,           \
                           has_weight, eps);                                                    \
    }                                                                                           \
    __global__ void __launch_bounds__(THREADS) xent_reduce_##S(const T* loss, const T* w_row,  \
                                                               T* out, T* denom, int m,        \
                                                               int mean) {                     \
        fused::xent_reduce<T>(loss, w_row, out, denom, m, mean);                                \
    }                                                                                           \
    __global__ void __launch_bounds__(THREADS) xent_bwd_##S(                                    \
        const T* gy, const T* denom, const T* logp, const long long* labels, const T* w_row,   \
        const T* weight, T* gx, int m, int c, int ignore_index, int has_weight, int reduction, \
        T eps) {                                                                                \
        fused::xent_bwd<T>(gy, denom, logp, labels, w_row, weight, gx, m, c, ignore_index,     \
                           has_weight, reduction, eps);                                         \
    }

extern "C" {
FUSED_KERNELS(float, f32)
FUSED_KERNELS(double, f64)
}  // extern "C"
