// Fused recurrent-cell steps (RNN tanh/relu, LSTM, GRU), forward and backward.
// Semantics: gpunet/functional/cells.py, term by term. Design: kernels/README.md.
//
// One thread per hidden unit (b, j) computes all of that unit's gates, through a grid-stride
// loop over B * H. Every array is C-contiguous: xg/hg (B, G), b_hh (G,), states (B, H),
// mask (B,), with G = gates * H. Launch: block (256, 1, 1), any grid.

namespace cells {

__device__ __forceinline__ float tanh_(float v) { return tanhf(v); }
__device__ __forceinline__ double tanh_(double v) { return tanh(v); }

// Same formula as the reference (0.5 * (tanh(v / 2) + 1)): stable for large |v|.
template <typename T>
__device__ __forceinline__ T sigmoid_(T v) {
    return T(0.5) * (tanh_(T(0.5) * v) + T(1));
}

// Blend of new and carried state exactly as the reference writes it.
template <typename T>
__device__ __forceinline__ T blend(T m, T fresh, T carried) {
    return m * fresh + (T(1) - m) * carried;
}

template <typename T>
__device__ __forceinline__ void rnn_forward(const T* xg, const T* hg, const T* b_hh,
                                            const T* h_prev, const T* mask, T* h, int B, int H,
                                            int relu) {
    const long long total = (long long)B * H;
    for (long long idx = blockIdx.x * (long long)blockDim.x + threadIdx.x; idx < total;
         idx += (long long)gridDim.x * blockDim.x) {
        const int b = (int)(idx / H), j = (int)(idx - (long long)b * H);
        const T pre = xg[idx] + hg[idx] + b_hh[j];
        const T act = relu ? (pre < T(0) ? T(0) : pre) : tanh_(pre);
        h[idx] = blend(mask[b], act, h_prev[idx]);
    }
}

template <typename T>
__device__ __forceinline__ void rnn_backward(const T* h, const T* dh, const T* mask, T* dpre,
                                             T* dh_carry, int B, int H, int relu) {
    const long long total = (long long)B * H;
    for (long long idx = blockIdx.x * (long long)blockDim.x + threadIdx.x; idx < total;
         idx += (long long)gridDim.x * blockDim.x) {
        const int b = (int)(idx / H);
        const T m = mask[b], hv = h[idx];
        const T deriv = relu ? (hv > T(0) ? T(1) : T(0)) : T(1) - hv * hv;
        dpre[idx] = dh[idx] * deriv * m;
        dh_carry[idx] = dh[idx] * (T(1) - m);
    }
}

template <typename T>
__device__ __forceinline__ void lstm_forward(const T* xg, const T* hg, const T* b_hh,
                                             const T* h_prev, const T* c_prev, const T* mask,
                                             T* h, T* c, T* gates, int B, int H) {
    const long long total = (long long)B * H;
    for (long long idx = blockIdx.x * (long long)blockDim.x + threadIdx.x; idx < total;
         idx += (long long)gridDim.x * blockDim.x) {
        const int b = (int)(idx / H), j = (int)(idx - (long long)b * H);
        const long long row = (long long)b * 4 * H;
        T pre[4];
        for (int k = 0; k < 4; ++k)
            pre[k] = xg[row + k * H + j] + hg[row + k * H + j] + b_hh[k * H + j];
        const T i = sigmoid_(pre[0]), f = sigmoid_(pre[1]);
        const T g = tanh_(pre[2]), o = sigmoid_(pre[3]);
        const T c_new = f * c_prev[idx] + i * g;
        const T h_new = o * tanh_(c_new);
        const T m = mask[b];
        h[idx] = blend(m, h_new, h_prev[idx]);
        c[idx] = blend(m, c_new, c_prev[idx]);
        gates[row + j] = i;
        gates[row + H + j] = f;
        gates[row + 2 * H + j] = g;
        gates[row + 3 * H + j] = o;
    }
}

template <typename T>
__device__ __forceinline__ void lstm_backward(const T* gates, const T* c_prev, const T* c,
                                              const T* dh, const T* dc, const T* mask, T* dpre,
                                              T* dh_carry, T* dc_prev, int B, int H) {
    const long long total = (long long)B * H;
    for (long long idx = blockIdx.x * (long long)blockDim.x + threadIdx.x; idx < total;
         idx += (long long)gridDim.x * blockDim.x) {
        const int b = (int)(idx / H), j = (int)(idx - (long long)b * H);
        const long long row = (long long)b * 4 * H;
        const T i = gates[row + j], f = gates[row + H + j];
        const T g = gates[row + 2 * H + j], o = gates[row + 3 * H + j];
        const T m = mask[b], dhv = dh[idx], dcv = dc[idx];
        const T tc = tanh_(c[idx]);
        const T dct = dcv + dhv * o * (T(1) - tc * tc);
        dpre[row + j] = dct * g * i * (T(1) - i) * m;
        dpre[row + H + j] = dct * c_prev[idx] * f * (T(1) - f) * m;
        dpre[row + 2 * H + j] = dct * i * (T(1) - g * g) * m;
        dpre[row + 3 * H + j] = dhv * tc * o * (T(1) - o) * m;
        dc_prev[idx] = m * dct * f + (T(1) - m) * dcv;
        dh_carry[idx] = dhv * (T(1) - m);
    }
}

template <typename T>
__device__ __forceinline__ void gru_forward(const T* xg, const T* hg, const T* b_hh,
                                            const T* h_prev, const T* mask, T* h, T* saved,
                                            int B, int H) {
    const long long total = (long long)B * H;
    for (long long idx = blockIdx.x * (long long)blockDim.x + threadIdx.x; idx < total;
         idx += (long long)gridDim.x * blockDim.x) {
        const int b = (int)(idx / H), j = (int)(idx - (long long)b * H);
        const long long row3 = (long long)b * 3 * H, row4 = (long long)b * 4 * H;
        const T r = sigmoid_(xg[row3 + j] + (hg[row3 + j] + b_hh[j]));
        const T z = sigmoid_(xg[row3 + H + j] + (hg[row3 + H + j] + b_hh[H + j]));
        const T hn = hg[row3 + 2 * H + j] + b_hh[2 * H + j];
        const T n = tanh_(xg[row3 + 2 * H + j] + r * hn);
        const T hp = h_prev[idx];
        const T h_new = (T(1) - z) * n + z * hp;
        h[idx] = blend(mask[b], h_new, hp);
        saved[row4 + j] = r;
        saved[row4 + H + j] = z;
        saved[row4 + 2 * H + j] = n;
        saved[row4 + 3 * H + j] = hn;
    }
}

template <typename T>
__device__ __forceinline__ void gru_backward(const T* saved, const T* h_prev, const T* dh,
                                             const T* mask, T* dxg, T* dhg, T* dh_carry, int B,
                                             int H) {
    const long long total = (long long)B * H;
    for (long long idx = blockIdx.x * (long long)blockDim.x + threadIdx.x; idx < total;
         idx += (long long)gridDim.x * blockDim.x) {
        const int b = (int)(idx / H), j = (int)(idx - (long long)b * H);
        const long long row3 = (long long)b * 3 * H, row4 = (long long)b * 4 * H;
        const T r = saved[row4 + j], z = saved[row4 + H + j];
        const T n = saved[row4 + 2 * H + j], hn = saved[row4 + 3 * H + j];
        const T m = mask[b], dhv = dh[idx];
        const T dhm = dhv * m;
        const T dn = dhm * (T(1) - z) * (T(1) - n * n);
        const T dz = dhm * (h_prev[idx] - n) * z * (T(1) - z);
        const T dr = dn * hn * r * (T(1) - r);
        dxg[row3 + j] = dr;
        dxg[row3 + H + j] = dz;
        dxg[row3 + 2 * H + j] = dn;
        dhg[row3 + j] = dr;
        dhg[row3 + H + j] = dz;
        dhg[row3 + 2 * H + j] = dn * r;
        dh_carry[idx] = dhm * z + dhv * (T(1) - m);
    }
}

}  // namespace cells

// extern "C" entry points, one per dtype (suffix _f32 / _f64).
#define CELL_KERNELS(SUFFIX, T)                                                                 \
    __global__ void rnn_fwd_##SUFFIX(const T* xg, const T* hg, const T* b_hh, const T* h_prev,  \
                                     const T* mask, T* h, int B, int H, int relu) {             \
        cells::rnn_forward<T>(xg, hg, b_hh, h_prev, mask, h, B, H, relu);                      \
    }                                                                                           \
    __global__ void rnn_bwd_##SUFFIX(const T* h, const T* dh, const T* mask, T* dpre,           \
                                     T* dh_carry, int B, int H, int relu) {                     \
        cells::rnn_backward<T>(h, dh, mask, dpre, dh_carry, B, H, relu);                       \
    }                                                                                           \
    __global__ void lstm_fwd_##SUFFIX(const T* xg, const T* hg, const T* b_hh, const T* h_prev, \
                                      const T* c_prev, const T* mask, T* h, T* c, T* gates,     \
                                      int B, int H) {                                           \
        cells::lstm_forward<T>(xg, hg, b_hh, h_prev, c_prev, mask, h, c, gates, B, H);         \
    }                                                                                           \
    __global__ void lstm_bwd_##SUFFIX(const T* gates, const T* c_prev, const T* c, const T* dh, \
                                      const T* dc, const T* mask, T* dpre, T* dh_carry,         \
                                      T* dc_prev, int B, int H) {                               \
        cells::lstm_backward<T>(gates, c_prev, c, dh, dc, mask, dpre, dh_carry, dc_prev, B, H); \
    }                                                                                           \
    __global__ void gru_fwd_##SUFFIX(const T* xg, const T* hg, const T* b_hh, const T* h_prev,  \
                                     const T* mask, T* h, T* saved, int B, int H) {             \
        cells::gru_forward<T>(xg, hg, b_hh, h_prev, mask, h, saved, B, H);                     \
    }                                                                                           \
    __global__ void gru_bwd_##SUFFIX(const T* saved, const T* h_prev, const T* dh,              \
                                     const T* mask, T* dxg, T* dhg, T* dh_carry, int B, int H) { \
        cells::gru_backward<T>(saved, h_prev, dh, mask, dxg, dhg, dh_carry, B, H);             \
    }

extern "C" {
CELL_KERNELS(f32, float)
CELL_KERNELS(f64, double)
}
