// Fused recurrent-cell steps (RNN tanh/relu, LSTM, GRU), forward and backward.
// Semantics: gpunet/functional/cells.py, term by term. Design: kernels/README.md.
//
// Step kernels: one thread per hidden unit (b, j) computes all of that unit's gates, through a
// grid-stride loop over B * H. Every array is C-contiguous: xg/hg (B, G), b_hh (G,), states
// (B, H), mask (B,), with G = gates * H. Launch: block (256, 1, 1), any grid.
// Sequence kernels (*_seq_fwd, forward only): see "Whole-sequence forward" below.

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

// Per-unit cell math, shared by the step kernels and the whole-sequence kernels below.
template <typename T>
__device__ __forceinline__ T rnn_act(T pre, int relu) {
    return relu ? (pre < T(0) ? T(0) : pre) : tanh_(pre);
}

template <typename T>
struct LstmUnit { T h, c, i, f, g, o; };

// pre_*: xg + hg + b_hh of each gate; hp, cp: carried state; m: mask.
template <typename T>
__device__ __forceinline__ LstmUnit<T> lstm_unit(T pre_i, T pre_f, T pre_g, T pre_o, T hp, T cp,
                                                 T m) {
    const T i = sigmoid_(pre_i), f = sigmoid_(pre_f);
    const T g = tanh_(pre_g), o = sigmoid_(pre_o);
    const T c_new = f * cp + i * g;
    const T h_new = o * tanh_(c_new);
    return {blend(m, h_new, hp), blend(m, c_new, cp), i, f, g, o};
}

template <typename T>
struct GruUnit { T h, r, z, n, hn; };

// x*: input projections; hb*: hg + b_hh of each gate; hp: carried state; m: mask.
template <typename T>
__device__ __forceinline__ GruUnit<T> gru_unit(T xr, T xz, T xn, T hbr, T hbz, T hbn, T hp, T m) {
    const T r = sigmoid_(xr + hbr);
    const T z = sigmoid_(xz + hbz);
    const T n = tanh_(xn + r * hbn);
    const T h_new = (T(1) - z) * n + z * hp;
    return {blend(m, h_new, hp), r, z, n, hbn};
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
        h[idx] = blend(mask[b], rnn_act(pre, relu), h_prev[idx]);
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
        const LstmUnit<T> u =
            lstm_unit(pre[0], pre[1], pre[2], pre[3], h_prev[idx], c_prev[idx], mask[b]);
        h[idx] = u.h;
        c[idx] = u.c;
        gates[row + j] = u.i;
        gates[row + H + j] = u.f;
        gates[row + 2 * H + j] = u.g;
        gates[row + 3 * H + j] = u.o;
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
        const GruUnit<T> u = gru_unit(
            xg[row3 + j], xg[row3 + H + j], xg[row3 + 2 * H + j], hg[row3 + j] + b_hh[j],
            hg[row3 + H + j] + b_hh[H + j], hg[row3 + 2 * H + j] + b_hh[2 * H + j], h_prev[idx],
            mask[b]);
        h[idx] = u.h;
        saved[row4 + j] = u.r;
        saved[row4 + H + j] = u.z;
        saved[row4 + 2 * H + j] = u.n;
        saved[row4 + 3 * H + j] = u.hn;
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

// ---- Whole-sequence forward (persistent over time): one block per sequence b ----------------
// The block keeps h (and the LSTM cell state) in shared memory for all T steps, computes the
// recurrent product h_{t-1} @ W_hh^T itself from wt = W_hh^T (H, G), coalesced along j, and
// applies the same per-unit cell math as the step kernels. One launch per sequence instead of
// 2 per step: for small batches (latency-bound inference), not for large-batch training.
// xg (T, B, G) includes b_ih; mask (T, B); outputs hs (T, B, H) and, for LSTM, c_last (B, H).

constexpr int SEQ_MAX_H = 1024;

// acc[g] = sum_k h[k] * wt[k, g*H + j] for the G gates of unit j.
template <typename T, int G>
__device__ __forceinline__ void recurrent_dots(const T* wt, const T* h, int H, int j, T* acc) {
    for (int g = 0; g < G; ++g) acc[g] = T(0);
    for (int k = 0; k < H; ++k) {
        const T hk = h[k];
        const T* row = wt + (long long)k * G * H + j;
        for (int g = 0; g < G; ++g) acc[g] += hk * row[g * H];
    }
}

template <typename T>
__device__ __forceinline__ void rnn_sequence(const T* xg, const T* wt, const T* b_hh,
                                             const T* h0, const T* mask, T* hs, int steps,
                                             int B, int H, int relu) {
    __shared__ T hbuf[2][SEQ_MAX_H];
    const int b = blockIdx.x;
    for (int j = threadIdx.x; j < H; j += blockDim.x) hbuf[0][j] = h0[(long long)b * H + j];
    __syncthreads();
    for (int t = 0; t < steps; ++t) {
        const T* hp = hbuf[t & 1];
        T* hn = hbuf[(t + 1) & 1];
        const long long row = (long long)t * B + b;
        for (int j = threadIdx.x; j < H; j += blockDim.x) {
            T acc[1];
            recurrent_dots<T, 1>(wt, hp, H, j, acc);
            const T pre = xg[row * H + j] + acc[0] + b_hh[j];
            hn[j] = blend(mask[row], rnn_act(pre, relu), hp[j]);
            hs[row * H + j] = hn[j];
        }
        __syncthreads();
    }
}

template <typename T>
__device__ __forceinline__ void lstm_sequence(const T* xg, const T* wt, const T* b_hh,
                                              const T* h0, const T* c0, const T* mask, T* hs,
                                              T* c_last, int steps, int B, int H) {
    __shared__ T hbuf[2][SEQ_MAX_H];
    __shared__ T cbuf[SEQ_MAX_H];  // each entry is only touched by the thread owning unit j
    const int b = blockIdx.x;
    for (int j = threadIdx.x; j < H; j += blockDim.x) {
        hbuf[0][j] = h0[(long long)b * H + j];
        cbuf[j] = c0[(long long)b * H + j];
    }
    __syncthreads();
    for (int t = 0; t < steps; ++t) {
        const T* hp = hbuf[t & 1];
        T* hn = hbuf[(t + 1) & 1];
        const long long row = (long long)t * B + b;
        const T* x = xg + row * 4 * H;
        for (int j = threadIdx.x; j < H; j += blockDim.x) {
            T acc[4];
            recurrent_dots<T, 4>(wt, hp, H, j, acc);
            T pre[4];
            for (int g = 0; g < 4; ++g) pre[g] = x[g * H + j] + acc[g] + b_hh[g * H + j];
            const LstmUnit<T> u = lstm_unit(pre[0], pre[1], pre[2], pre[3], hp[j], cbuf[j],
                                            mask[row]);
            hn[j] = u.h;
            cbuf[j] = u.c;
            hs[row * H + j] = u.h;
        }
        __syncthreads();
    }
    for (int j = threadIdx.x; j < H; j += blockDim.x) c_last[(long long)b * H + j] = cbuf[j];
}

template <typename T>
__device__ __forceinline__ void gru_sequence(const T* xg, const T* wt, const T* b_hh,
                                             const T* h0, const T* mask, T* hs, int steps,
                                             int B, int H) {
    __shared__ T hbuf[2][SEQ_MAX_H];
    const int b = blockIdx.x;
    for (int j = threadIdx.x; j < H; j += blockDim.x) hbuf[0][j] = h0[(long long)b * H + j];
    __syncthreads();
    for (int t = 0; t < steps; ++t) {
        const T* hp = hbuf[t & 1];
        T* hn = hbuf[(t + 1) & 1];
        const long long row = (long long)t * B + b;
        const T* x = xg + row * 3 * H;
        for (int j = threadIdx.x; j < H; j += blockDim.x) {
            T acc[3];
            recurrent_dots<T, 3>(wt, hp, H, j, acc);
            const GruUnit<T> u = gru_unit(x[j], x[H + j], x[2 * H + j], acc[0] + b_hh[j],
                                          acc[1] + b_hh[H + j], acc[2] + b_hh[2 * H + j], hp[j],
                                          mask[row]);
            hn[j] = u.h;
            hs[row * H + j] = u.h;
        }
        __syncthreads();
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
    }                                                                                           \
    __global__ void rnn_seq_fwd_##SUFFIX(const T* xg, const T* wt, const T* b_hh, const T* h0,  \
                                         const T* mask, T* hs, int steps, int B, int H,         \
                                         int relu) {                                            \
        cells::rnn_sequence<T>(xg, wt, b_hh, h0, mask, hs, steps, B, H, relu);                 \
    }                                                                                           \
    __global__ void lstm_seq_fwd_##SUFFIX(const T* xg, const T* wt, const T* b_hh, const T* h0, \
                                          const T* c0, const T* mask, T* hs, T* c_last,         \
                                          int steps, int B, int H) {                            \
        cells::lstm_sequence<T>(xg, wt, b_hh, h0, c0, mask, hs, c_last, steps, B, H);          \
    }                                                                                           \
    __global__ void gru_seq_fwd_##SUFFIX(const T* xg, const T* wt, const T* b_hh, const T* h0,  \
                                         const T* mask, T* hs, int steps, int B, int H) {       \
        cells::gru_sequence<T>(xg, wt, b_hh, h0, mask, hs, steps, B, H);                       \
    }

extern "C" {
CELL_KERNELS(f32, float)
CELL_KERNELS(f64, double)
}
