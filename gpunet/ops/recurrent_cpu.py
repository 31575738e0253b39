"""The NumPy fast path (``numpy-fast``) of the recurrent loops: ``cells.py``'s equations, in place.

Per timestep: one GEMM written straight into a preallocated buffer and one numba kernel
(:mod:`gpunet.ops.cells_cpu`: activations with their exponentials, state update, mask, saved
buffers in one pass); the whole loop runs in numba, the batch rows split over threads
(:mod:`gpunet.ops.sequence_cpu`). Biases that only shift a pre-activation are folded into the input
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

from gpunet.ops import scratch_cpu, sequence_cpu
from gpunet.ops.regions_cpu import in_parts

Array = Any
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
    h_buf = scratch_cpu.empty((steps + 1, batch, hidden), xg.dtype)
    h_buf[steps if reverse else 0] = h0
    order = sequence_cpu.step_order(steps, reverse)
    carry, masked = sequence_cpu.masks(finished, batch)
    parts = sequence_cpu.parts_for(batch, xg.size * hidden)
    if mode == "rnn":
        if b_hh is not None:
            xg += b_hh
        in_parts(sequence_cpu.rnn_forward_parts, parts, xg, np.ascontiguousarray(w_hh.T), h_buf,
                 nonlinearity == "relu", carry, masked, order)
        return h_buf, None, None
    if mode == "lstm":
        return _lstm_forward(xg, w_hh, b_hh, h_buf, c0, carry, masked, order, parts)
    return _gru_forward(xg, w_hh, b_hh, h_buf, carry, masked, order, parts)


def _lstm_forward(xg: Array, w_hh: Array, b_hh: Array | None, h_buf: Array, c0: Array, carry: Array,
                  masked: Array, order: Array, parts: int) -> tuple[Array, Array, Array]:
    steps, batch, gates = xg.shape
    hidden = gates // 4
    scale = _exp_scale(hidden, "ssts", xg.dtype)
    if b_hh is not None:
        xg += b_hh
    xg *= scale
    w_t = np.ascontiguousarray((w_hh * scale[:, None]).T)
    c_buf = scratch_cpu.empty(h_buf.shape, h_buf.dtype)
    c_buf[order[0, 1]] = c0
    acts = scratch_cpu.empty((steps, batch, gates), xg.dtype)  # i, f, g, o: the spec's saved layout
    in_parts(sequence_cpu.lstm_forward_parts, parts, acts, xg, w_t, c_buf, h_buf, carry, masked, order)
    return h_buf, c_buf, acts


def _gru_forward(xg: Array, w_hh: Array, b_hh: Array | None, h_buf: Array, carry: Array, masked: Array,
                 order: Array, parts: int) -> tuple[Array, None, Array]:
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
    in_parts(sequence_cpu.gru_forward_parts, parts, saved, xg, w_t, hg, np.ascontiguousarray(b_hn), h_buf,
             carry, masked, order)
    return h_buf, None, saved


def backward(mode: str, w_hh: Array, h_buf: Array, c_buf: Array | None, saved: Array | None, gym: Array | None,
             dh: Array, dc: Array | None, finished: list[Array | None], reverse: bool, nonlinearity: str
             ) -> tuple[Array, Array, Array, Array | None]:
    """BPTT through the loop. ``dh``/``dc`` (owned, modified) are the final states' gradients.

    Returns ``dxg, dhg, dh0, dc0`` (``dhg`` is ``dxg`` for RNN and LSTM).
    """
    steps, batch, hidden = h_buf.shape[0] - 1, h_buf.shape[1], h_buf.shape[2]
    order = sequence_cpu.step_order(steps, reverse, backward=True)
    carry, masked = sequence_cpu.masks(finished, batch)
    parts = sequence_cpu.parts_for(batch, steps * w_hh.size * batch)
    has_gym = gym is not None
    gym = np.ascontiguousarray(gym) if has_gym else np.zeros((1, 1, 1), dtype=dh.dtype)
    dh = np.ascontiguousarray(dh)
    spare = np.empty_like(dh)
    h_in, h_out = (h_buf[1:], h_buf[:-1]) if reverse else (h_buf[:-1], h_buf[1:])
    if mode == "rnn":
        deriv = 1 - h_out * h_out if nonlinearity == "tanh" else (h_out > 0).astype(h_buf.dtype)
        dxg = scratch_cpu.empty(deriv.shape, deriv.dtype)
        in_parts(sequence_cpu.rnn_backward_parts, parts, deriv, np.ascontiguousarray(w_hh), gym, has_gym, dh, spare,
                 dxg, carry, masked, order)
        return dxg, dxg, sequence_cpu.final(steps, dh, spare), None
    if mode == "lstm":
        acts = saved
        c_in, c_out = (c_buf[1:], c_buf[:-1]) if reverse else (c_buf[:-1], c_buf[1:])
        dc = np.ascontiguousarray(dc)
        spare_c = np.empty_like(dc)
        dxg = scratch_cpu.empty(acts.shape, acts.dtype)
        in_parts(sequence_cpu.lstm_backward_parts, parts, acts, c_in, c_out, np.ascontiguousarray(w_hh), gym,
                 has_gym, dh, dc, spare, spare_c, dxg, carry, masked, order)
        return dxg, dxg, sequence_cpu.final(steps, dh, spare), sequence_cpu.final(steps, dc, spare_c)
    two = 2 * hidden
    dn_all = scratch_cpu.empty(h_in.shape, h_in.dtype)
    dhg = scratch_cpu.empty(saved.shape[:2] + (3 * hidden,), saved.dtype)
    carry_h = np.empty_like(dh)
    in_parts(sequence_cpu.gru_backward_parts, parts, saved, h_in, np.ascontiguousarray(w_hh), gym, has_gym, dh,
             spare, carry_h, dn_all, dhg, carry, masked, order)
    dxg = scratch_cpu.empty(dhg.shape, dhg.dtype)
    dxg[:, :, :two] = dhg[:, :, :two]
    dxg[:, :, two:] = dn_all
    return dxg, dhg, sequence_cpu.final(steps, dh, spare), None
