"""The NumPy fast path (``numpy-fast``) of the recurrent loops: ``cells.py``'s equations, in place.

Per timestep: one GEMM written straight into a preallocated buffer and one numba kernel
(:mod:`gpunet.ops.cells_cpu`: activations with their exponentials, state update, mask, saved
buffers in one pass). Biases that only shift a pre-activation are folded into the input
projection beforehand. Gate activations are ``sigmoid(x) = 1 / (1 + exp(-x))`` and
``tanh(x) = 1 - 2 / (1 + exp(2x))``, with the ``-1`` and ``2`` folded into the gates' weights,
so a kernel computes one exponential per gate (:mod:`gpunet.ops.exp_cpu`, vectorised for
float32). The backward runs one kernel per step as well (LSTM's ``tanh(c)`` is recomputed there
from the saved ``c``). Length masks are the kernels' ``carry`` rows, plus a
``copyto(..., where=finished)`` after the GEMM, on the steps with finished rows only.

``finished[t]`` is ``None`` when every sequence runs at step ``t``, else a ``(B, 1)`` bool array.
State buffers are ``(T+1, B, H)`` in time order and ``saved`` has the layout of
:mod:`gpunet.ops.cells` (see :mod:`gpunet.ops.recurrent`). Every per-sequence buffer comes from
:mod:`gpunet.ops.scratch_cpu` (recycled memory: fresh ones cost more in page faults than the GEMMs).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gpunet import parallel
from gpunet.ops import cells_cpu, scratch_cpu

Array = Any
_NO_CARRY = np.zeros(1, dtype=bool)


def _carry(finished: Array | None) -> tuple[Array, bool]:
    """The ``(carry, masked)`` arguments of the :mod:`gpunet.ops.cells_cpu` kernels for one step."""
    return (_NO_CARRY, False) if finished is None else (np.ascontiguousarray(finished[:, 0]), True)


def _steps(steps: int, reverse: bool) -> list[tuple[int, int, int]]:
    """``(t, src, dst)`` in processing order: step ``t`` reads state ``src`` and writes ``dst``."""
    if reverse:
        return [(t, t + 1, t) for t in range(steps - 1, -1, -1)]
    return [(t, t, t + 1) for t in range(steps)]


def _exp_scale(hidden: int, gates: str, dtype: Any) -> Array:
    """Pre-activation scale before one ``exp`` over all gates: -1 on sigmoid gates, 2 on tanh gates
    (the :mod:`gpunet.ops.cells_cpu` kernels finish ``1 / (1 + e)`` and ``1 - 2 / (1 + e)``)."""
    return np.concatenate([np.full(hidden, -1.0 if g == "s" else 2.0) for g in gates]).astype(dtype)


def forward(mode: str, xg: Array, w_hh: Array, b_hh: Array | None, h0: Array, c0: Array | None,
            finished: list[Array | None], reverse: bool, nonlinearity: str
            ) -> tuple[Array, Array | None, Array | None]:
    """Run the loop; ``xg`` (T, B, G) already holds ``b_ih`` and is modified. Returns ``h_buf, c_buf, saved``."""
    steps, batch, _ = xg.shape
    hidden = w_hh.shape[1]
    parallel.blas_for(xg.size * hidden)  # the loop's GEMMs together: BLAS's threads (a conv may have held it at one)
    h_buf = scratch_cpu.empty((steps + 1, batch, hidden), xg.dtype)
    h_buf[steps if reverse else 0] = h0
    order = _steps(steps, reverse)
    if mode == "rnn":
        if b_hh is not None:
            xg += b_hh
        w_t = w_hh.T
        for t, src, dst in order:
            h = h_buf[dst]
            np.matmul(h_buf[src], w_t, out=h)
            h += xg[t]
            if nonlinearity == "tanh":
                np.tanh(h, out=h)
            else:
                np.maximum(h, 0, out=h)
            if finished[t] is not None:
                np.copyto(h, h_buf[src], where=finished[t])
        return h_buf, None, None
    if mode == "lstm":
        return _lstm_forward(xg, w_hh, b_hh, h_buf, c0, finished, order)
    return _gru_forward(xg, w_hh, b_hh, h_buf, finished, order)


def _lstm_forward(xg: Array, w_hh: Array, b_hh: Array | None, h_buf: Array, c0: Array,
                  finished: list[Array | None], order: list[tuple[int, int, int]]
                  ) -> tuple[Array, Array, Array]:
    steps, batch, gates = xg.shape
    hidden = gates // 4
    scale = _exp_scale(hidden, "ssts", xg.dtype)
    if b_hh is not None:
        xg += b_hh
    xg *= scale
    w_t = np.ascontiguousarray((w_hh * scale[:, None]).T)
    c_buf = scratch_cpu.empty(h_buf.shape, h_buf.dtype)
    c_buf[order[0][1]] = c0
    acts = scratch_cpu.empty((steps, batch, gates), xg.dtype)  # i, f, g, o: the spec's saved layout
    with np.errstate(over="ignore"):
        for t, src, dst in order:
            a = acts[t]
            np.matmul(h_buf[src], w_t, out=a)
            carry, masked = _carry(finished[t])
            cells_cpu.lstm_forward_step(a, xg[t], c_buf[src], h_buf[src], c_buf[dst], h_buf[dst], carry, masked)
    return h_buf, c_buf, acts


def _gru_forward(xg: Array, w_hh: Array, b_hh: Array | None, h_buf: Array,
                 finished: list[Array | None], order: list[tuple[int, int, int]]) -> tuple[Array, None, Array]:
    steps, batch, gates = xg.shape
    hidden = gates // 3
    two = 2 * hidden
    scale = np.concatenate([_exp_scale(hidden, "ss", xg.dtype), np.ones(hidden, dtype=xg.dtype)])
    b_hn = b_hh[two:] if b_hh is not None else np.zeros(hidden, dtype=xg.dtype)
    if b_hh is not None:
        xg[:, :, :two] += b_hh[:two]
    xg[:, :, :two] *= -1
    w_t = np.ascontiguousarray((w_hh * scale[:, None]).T)
    saved = scratch_cpu.empty((steps, batch, 4 * hidden), xg.dtype)  # r, z, n, hn + b_hn (as cells.py)
    hg = np.empty((batch, gates), dtype=xg.dtype)
    with np.errstate(over="ignore"):
        for t, src, dst in order:
            np.matmul(h_buf[src], w_t, out=hg)
            carry, masked = _carry(finished[t])
            cells_cpu.gru_forward_step(saved[t], xg[t], hg, b_hn, h_buf[src], h_buf[dst], carry, masked)
    return h_buf, None, saved


def backward(mode: str, w_hh: Array, h_buf: Array, c_buf: Array | None, saved: Array | None, gym: Array | None,
             dh: Array, dc: Array | None, finished: list[Array | None], reverse: bool, nonlinearity: str
             ) -> tuple[Array, Array, Array, Array | None]:
    """BPTT through the loop. ``dh``/``dc`` (owned, modified) are the final states' gradients.

    Returns ``dxg, dhg, dh0, dc0`` (``dhg`` is ``dxg`` for RNN and LSTM).
    """
    steps = h_buf.shape[0] - 1
    parallel.blas_for(steps * w_hh.size * h_buf.shape[1])  # the loop's GEMMs together, as in forward
    order = _steps(steps, reverse)[::-1]
    h_in, h_out = (h_buf[1:], h_buf[:-1]) if reverse else (h_buf[:-1], h_buf[1:])
    if mode == "rnn":
        deriv = 1 - h_out * h_out if nonlinearity == "tanh" else (h_out > 0).astype(h_buf.dtype)
        return (*_simple_backward(deriv, w_hh, gym, dh, finished, order), None)
    if mode == "lstm":
        return _lstm_backward(w_hh, c_buf, saved, gym, dh, dc, finished, order, reverse)
    return _gru_backward(w_hh, h_in, saved, gym, dh, finished, order)


def _simple_backward(deriv: Array, w_hh: Array, gym: Array | None, dh: Array, finished: list[Array | None],
                     order: list[tuple[int, int, int]]) -> tuple[Array, Array, Array]:
    dxg = scratch_cpu.empty(deriv.shape, deriv.dtype)
    spare = np.empty_like(dh)
    for t, _, _ in order:
        if gym is not None:
            dh += gym[t]
        d = dxg[t]
        np.multiply(dh, deriv[t], out=d)
        if finished[t] is not None:
            np.copyto(d, 0, where=finished[t])
        np.matmul(d, w_hh, out=spare)
        if finished[t] is not None:
            np.copyto(spare, dh, where=finished[t])
        dh, spare = spare, dh
    return dxg, dxg, dh


def _lstm_backward(w_hh: Array, c_buf: Array, saved: Array, gym: Array | None, dh: Array,
                   dc: Array, finished: list[Array | None], order: list[tuple[int, int, int]], reverse: bool
                   ) -> tuple[Array, Array, Array, Array]:
    acts = saved
    c_in, c_out = (c_buf[1:], c_buf[:-1]) if reverse else (c_buf[:-1], c_buf[1:])
    dxg = scratch_cpu.empty(acts.shape, acts.dtype)
    spare_h, spare_c = np.empty_like(dh), np.empty_like(dh)
    for t, _, _ in order:
        carry, masked = _carry(finished[t])
        d = dxg[t]
        cells_cpu.lstm_backward_step(acts[t], c_in[t], c_out[t], dh, gym[t] if gym is not None else dh,
                                     gym is not None, dc, d, spare_c, carry, masked)
        np.matmul(d, w_hh, out=spare_h)
        if finished[t] is not None:
            np.copyto(spare_h, dh, where=finished[t])
        dh, spare_h = spare_h, dh
        dc, spare_c = spare_c, dc
    return dxg, dxg, dh, dc


def _gru_backward(w_hh: Array, h_in: Array, saved: Array, gym: Array | None, dh: Array,
                  finished: list[Array | None], order: list[tuple[int, int, int]]
                  ) -> tuple[Array, Array, Array, None]:
    hidden = h_in.shape[2]
    two = 2 * hidden
    dn_all = scratch_cpu.empty(h_in.shape, h_in.dtype)
    dhg = scratch_cpu.empty(saved.shape[:2] + (3 * hidden,), saved.dtype)
    spare, carry_h = np.empty_like(dh), np.empty_like(dh)
    for t, _, _ in order:
        carry, masked = _carry(finished[t])
        d = dhg[t]
        cells_cpu.gru_backward_step(saved[t], h_in[t], dh, gym[t] if gym is not None else dh, gym is not None,
                                    dn_all[t], d, carry_h, carry, masked)
        np.matmul(d, w_hh, out=spare)
        spare += carry_h
        if finished[t] is not None:
            np.copyto(spare, dh, where=finished[t])
        dh, spare = spare, dh
    dxg = scratch_cpu.empty(dhg.shape, dhg.dtype)
    dxg[:, :, :two] = dhg[:, :, :two]
    dxg[:, :, two:] = dn_all
    return dxg, dhg, dh, None
