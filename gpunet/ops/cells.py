"""Recurrent cell steps on raw ``xp`` arrays: the boundary the GPU kernels replace.

One timestep of a recurrent layer is one GEMM ``hg = h_prev @ W_hh.T`` followed by one *step*
function below (fused: bias, gate nonlinearities, state update, length mask). The input
projection ``xg = x_t @ W_ih.T + b_ih`` is computed for all timesteps at once beforehand.

These functions are the reference implementation (NumPy on the CPU, plain CuPy array code on
the GPU); ``gpunet.cuda`` provides kernels with exactly these signatures and semantics.

Shapes: ``B`` batch, ``H`` hidden, ``G`` = gates x H (RNN 1, LSTM 4 in order i,f,g,o, GRU 3 in
order r,z,n). ``mask`` is ``(B,)`` of the compute dtype: 1 where the sequence is still running
at this step, 0 past its end (its state is carried through unchanged).

Backward functions take ``dh`` (and ``dc``) = gradient w.r.t. this step's new state and return
``dxg`` (w.r.t. ``xg``, which includes ``b_ih``), ``dhg`` (w.r.t. ``hg + b_hh``) and
``dh_carry``; the caller finishes ``dh_prev = dh_carry + dhg @ W_hh``.
"""

from __future__ import annotations

from typing import Any

from gpunet.backend import get_array_module

Array = Any


def _sigmoid(xp: Any, v: Array) -> Array:
    return 0.5 * (xp.tanh(0.5 * v) + 1.0)


def into(out: tuple[Array, ...] | None, results: tuple[Array, ...]) -> tuple[Array, ...]:
    """``results``, or copied into the caller's ``out`` arrays (the step ops' ``out=``: kernels
    write their outputs there directly, so a loop needs no copy per step)."""
    if out is None:
        return results
    for o, r in zip(out, results):
        o[...] = r
    return tuple(out)


def rnn_step_forward(xg: Array, hg: Array, b_hh: Array, h_prev: Array, mask: Array,
                     nonlinearity: str = "tanh", out: tuple[Array] | None = None) -> Array:
    """``h = act(xg + hg + b_hh)`` where running, else ``h_prev``. Returns ``h`` (B, H)
    (written into ``out[0]`` when given, as for every step op's ``out``)."""
    xp = get_array_module(xg)
    pre = xg + hg + b_hh
    h = xp.tanh(pre) if nonlinearity == "tanh" else xp.maximum(pre, 0)
    m = mask[:, None]
    return into(out, (m * h + (1 - m) * h_prev,))[0]


def rnn_step_backward(h: Array, dh: Array, mask: Array, nonlinearity: str = "tanh",
                      out: tuple[Array] | None = None) -> tuple[Array, Array, Array]:
    """Gradients of :func:`rnn_step_forward` given its output ``h``; ``dxg is dhg``."""
    m = mask[:, None]
    deriv = (1 - h * h) if nonlinearity == "tanh" else (h > 0).astype(h.dtype)
    (dpre,) = into(out, (dh * deriv * m,))
    return dpre, dpre, dh * (1 - m)


def lstm_step_forward(xg: Array, hg: Array, b_hh: Array, h_prev: Array, c_prev: Array,
                      mask: Array, out: tuple[Array, Array, Array] | None = None
                      ) -> tuple[Array, Array, Array]:
    """LSTM step. Returns ``h, c`` (B, H) and the activated gates ``i,f,g,o`` (B, 4H)."""
    xp = get_array_module(xg)
    hidden = h_prev.shape[1]
    pre = xg + hg + b_hh
    gates = xp.empty_like(pre)
    gates[:, : 2 * hidden] = _sigmoid(xp, pre[:, : 2 * hidden])
    gates[:, 2 * hidden: 3 * hidden] = xp.tanh(pre[:, 2 * hidden: 3 * hidden])
    gates[:, 3 * hidden:] = _sigmoid(xp, pre[:, 3 * hidden:])
    i, f, g, o = (gates[:, k * hidden: (k + 1) * hidden] for k in range(4))
    c_new = f * c_prev + i * g
    h_new = o * xp.tanh(c_new)
    m = mask[:, None]
    return into(out, (m * h_new + (1 - m) * h_prev, m * c_new + (1 - m) * c_prev, gates))  # type: ignore[return-value]


def lstm_step_backward(gates: Array, c_prev: Array, c: Array, dh: Array, dc: Array,
                       mask: Array, out: tuple[Array] | None = None) -> tuple[Array, Array, Array, Array]:
    """Gradients of :func:`lstm_step_forward`: ``dxg, dhg (same array), dh_carry, dc_prev``."""
    xp = get_array_module(gates)
    hidden = c.shape[1]
    i, f, g, o = (gates[:, k * hidden: (k + 1) * hidden] for k in range(4))
    m = mask[:, None]
    tc = xp.tanh(c)
    dct = dc + dh * o * (1 - tc * tc)
    dpre = xp.empty_like(gates)
    dpre[:, :hidden] = dct * g * i * (1 - i)
    dpre[:, hidden: 2 * hidden] = dct * c_prev * f * (1 - f)
    dpre[:, 2 * hidden: 3 * hidden] = dct * i * (1 - g * g)
    dpre[:, 3 * hidden:] = dh * tc * o * (1 - o)
    dpre *= m
    dc_prev = m * dct * f + (1 - m) * dc
    (dpre,) = into(out, (dpre,))
    return dpre, dpre, dh * (1 - m), dc_prev


def gru_step_forward(xg: Array, hg: Array, b_hh: Array, h_prev: Array, mask: Array,
                     out: tuple[Array, Array] | None = None) -> tuple[Array, Array]:
    """GRU step (PyTorch's form, ``n = tanh(xn + r * (hn + b_hn))``).

    Returns ``h`` (B, H) and the saved ``r, z, n, hn + b_hn`` (B, 4H) for the backward.
    """
    xp = get_array_module(xg)
    hidden = h_prev.shape[1]
    hb = hg + b_hh
    r = _sigmoid(xp, xg[:, :hidden] + hb[:, :hidden])
    z = _sigmoid(xp, xg[:, hidden: 2 * hidden] + hb[:, hidden: 2 * hidden])
    hn = hb[:, 2 * hidden:]
    n = xp.tanh(xg[:, 2 * hidden:] + r * hn)
    h_new = (1 - z) * n + z * h_prev
    m = mask[:, None]
    return into(out, (m * h_new + (1 - m) * h_prev, xp.concatenate([r, z, n, hn], axis=1)))  # type: ignore[return-value]


def gru_step_backward(saved: Array, h_prev: Array, dh: Array, mask: Array,
                      out: tuple[Array, Array] | None = None) -> tuple[Array, Array, Array]:
    """Gradients of :func:`gru_step_forward`: ``dxg, dhg, dh_carry`` (B,3H), (B,3H), (B,H)."""
    xp = get_array_module(saved)
    hidden = h_prev.shape[1]
    r, z, n, hn = (saved[:, k * hidden: (k + 1) * hidden] for k in range(4))
    m = mask[:, None]
    dhm = dh * m
    dn_pre = dhm * (1 - z) * (1 - n * n)
    dz_pre = dhm * (h_prev - n) * z * (1 - z)
    dr_pre = dn_pre * hn * r * (1 - r)
    dxg = xp.concatenate([dr_pre, dz_pre, dn_pre], axis=1)
    dhg = xp.concatenate([dr_pre, dz_pre, dn_pre * r], axis=1)
    dxg, dhg = into(out, (dxg, dhg))
    return dxg, dhg, dhm * z + dh * (1 - m)
