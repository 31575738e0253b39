"""numba.cuda kernels for the recurrent cell steps of :mod:`gpunet.functional.cells`.

Each step is one fused elementwise kernel: thread ``e`` of a grid-stride loop owns the unit
``(b, j) = divmod(e, H)`` (a 32-bit divide) and reads/writes all of that unit's gates
(``xg[b, k*H + j]``), so consecutive threads touch consecutive addresses in every gate block. Arithmetic stays in the
array dtype: constants are dtype scalars and ``math.tanh`` maps to ``tanhf`` for float32.
Formulas follow the reference line by line, including ``m*new + (1 - m)*old`` for the mask.
"""

from __future__ import annotations

import math
from functools import cache
from typing import Any

import numpy as np
from numba import cuda, types

from gpunet.cuda.numba_conv import INDEX_LIMIT, udivmod

KERNELS = ("rnn_forward", "rnn_backward", "lstm_forward", "lstm_backward",
           "gru_forward", "gru_backward")
THREADS = 256
MAX_BLOCKS = 4096


@cache
def get_kernels(dtype: str) -> dict[str, Any]:
    """The six cell kernels for ``dtype`` (``"float32"``/``"float64"``), compiled lazily."""
    t = np.dtype(dtype).type
    zero, half, one = t(0), t(0.5), t(1)

    @cuda.jit(device=True, inline=True)
    def sigmoid(v):
        return half * (math.tanh(half * v) + one)

    @cuda.jit
    def rnn_forward(xg, hg, b_hh, h_prev, mask, relu, h):
        rows, hidden = h.shape
        for e in range(cuda.grid(1), rows * hidden, cuda.gridsize(1)):
            b, j = udivmod(e, hidden)
            pre = xg[b, j] + hg[b, j] + b_hh[j]
            act = max(pre, zero) if relu else math.tanh(pre)
            m = mask[b]
            h[b, j] = m * act + (one - m) * h_prev[b, j]

    @cuda.jit
    def rnn_backward(h, dh, mask, relu, dpre, dh_carry):
        rows, hidden = h.shape
        for e in range(cuda.grid(1), rows * hidden, cuda.gridsize(1)):
            b, j = udivmod(e, hidden)
            hv = h[b, j]
            if relu:
                deriv = one if hv > zero else zero
            else:
                deriv = one - hv * hv
            m = mask[b]
            dpre[b, j] = dh[b, j] * deriv * m
            dh_carry[b, j] = dh[b, j] * (one - m)

    @cuda.jit
    def lstm_forward(xg, hg, b_hh, h_prev, c_prev, mask, h, c, gates):
        rows, hidden = h.shape
        for e in range(cuda.grid(1), rows * hidden, cuda.gridsize(1)):
            b, j = udivmod(e, hidden)
            jf, jg, jo = j + hidden, j + 2 * hidden, j + 3 * hidden
            i = sigmoid(xg[b, j] + hg[b, j] + b_hh[j])
            f = sigmoid(xg[b, jf] + hg[b, jf] + b_hh[jf])
            g = math.tanh(xg[b, jg] + hg[b, jg] + b_hh[jg])
            o = sigmoid(xg[b, jo] + hg[b, jo] + b_hh[jo])
            gates[b, j], gates[b, jf], gates[b, jg], gates[b, jo] = i, f, g, o
            cp = c_prev[b, j]
            c_new = f * cp + i * g
            h_new = o * math.tanh(c_new)
            m = mask[b]
            h[b, j] = m * h_new + (one - m) * h_prev[b, j]
            c[b, j] = m * c_new + (one - m) * cp

    @cuda.jit
    def lstm_backward(gates, c_prev, c, dh, dc, mask, dpre, dh_carry, dc_prev):
        rows, hidden = c.shape
        for e in range(cuda.grid(1), rows * hidden, cuda.gridsize(1)):
            b, j = udivmod(e, hidden)
            jf, jg, jo = j + hidden, j + 2 * hidden, j + 3 * hidden
            i, f, g, o = gates[b, j], gates[b, jf], gates[b, jg], gates[b, jo]
            m = mask[b]
            dhv, dcv = dh[b, j], dc[b, j]
            tc = math.tanh(c[b, j])
            dct = dcv + dhv * o * (one - tc * tc)
            dpre[b, j] = dct * g * i * (one - i) * m
            dpre[b, jf] = dct * c_prev[b, j] * f * (one - f) * m
            dpre[b, jg] = dct * i * (one - g * g) * m
            dpre[b, jo] = dhv * tc * o * (one - o) * m
            dh_carry[b, j] = dhv * (one - m)
            dc_prev[b, j] = m * dct * f + (one - m) * dcv

    @cuda.jit
    def gru_forward(xg, hg, b_hh, h_prev, mask, h, saved):
        rows, hidden = h.shape
        for e in range(cuda.grid(1), rows * hidden, cuda.gridsize(1)):
            b, j = udivmod(e, hidden)
            jz, jn = j + hidden, j + 2 * hidden
            r = sigmoid(xg[b, j] + (hg[b, j] + b_hh[j]))
            z = sigmoid(xg[b, jz] + (hg[b, jz] + b_hh[jz]))
            hn = hg[b, jn] + b_hh[jn]
            n = math.tanh(xg[b, jn] + r * hn)
            hp = h_prev[b, j]
            h_new = (one - z) * n + z * hp
            m = mask[b]
            h[b, j] = m * h_new + (one - m) * hp
            saved[b, j], saved[b, jz], saved[b, jn], saved[b, j + 3 * hidden] = r, z, n, hn

    @cuda.jit
    def gru_backward(saved, h_prev, dh, mask, dxg, dhg, dh_carry):
        rows, hidden = h_prev.shape
        for e in range(cuda.grid(1), rows * hidden, cuda.gridsize(1)):
            b, j = udivmod(e, hidden)
            jz, jn = j + hidden, j + 2 * hidden
            r, z, n, hn = saved[b, j], saved[b, jz], saved[b, jn], saved[b, j + 3 * hidden]
            m = mask[b]
            dhv = dh[b, j]
            dhm = dhv * m
            dn_pre = dhm * (one - z) * (one - n * n)
            dz_pre = dhm * (h_prev[b, j] - n) * z * (one - z)
            dr_pre = dn_pre * hn * r * (one - r)
            dxg[b, j], dxg[b, jz], dxg[b, jn] = dr_pre, dz_pre, dn_pre
            dhg[b, j], dhg[b, jz], dhg[b, jn] = dr_pre, dz_pre, dn_pre * r
            dh_carry[b, j] = dhm * z + dhv * (one - m)

    return {"rnn_forward": rnn_forward, "rnn_backward": rnn_backward,
            "lstm_forward": lstm_forward, "lstm_backward": lstm_backward,
            "gru_forward": gru_forward, "gru_backward": gru_backward}


def signature(name: str, dtype: str) -> tuple:
    """Numba argument types of kernel ``name`` (for ``cuda.compile_ptx``)."""
    t = types.float32 if dtype == "float32" else types.float64
    a1, a2, flag = types.Array(t, 1, "C"), types.Array(t, 2, "C"), types.int32
    return {
        "rnn_forward": (a2, a2, a1, a2, a1, flag, a2),
        "rnn_backward": (a2, a2, a1, flag, a2, a2),
        "lstm_forward": (a2, a2, a1, a2, a2, a1, a2, a2, a2),
        "lstm_backward": (a2, a2, a2, a2, a2, a1, a2, a2, a2),
        "gru_forward": (a2, a2, a1, a2, a1, a2, a2),
        "gru_backward": (a2, a2, a2, a1, a2, a2, a2),
    }[name]


def launch(name: str, dtype: str, units: int, *args: Any, threads: int = THREADS,
           max_blocks: int = MAX_BLOCKS, stream: Any = 0) -> None:
    """Run kernel ``name`` over ``units`` = B*H elements (grid-stride loop over at most
    ``max_blocks`` blocks of ``threads``).

    Arrays are anything numba accepts (device arrays; NumPy arrays under the simulator), in the
    order of :func:`signature`; ``relu`` flags are ints. Shape checks are the caller's job.
    """
    if units == 0:
        return
    if units >= INDEX_LIMIT - threads * max_blocks:
        raise ValueError(f"numba {name}: {units} units exceed the kernels' 32-bit index range")
    blocks = min(max_blocks, -(-units // threads))
    get_kernels(dtype)[name][blocks, threads, stream](*args)
