"""Whole-layer recurrent loops (RNN, LSTM, GRU) on raw arrays: the implementations of the
``recurrent`` op (training) and the ``recurrent_inference`` op (forward only, under ``no_grad``).

A layer's input projection ``xg = x @ W_ih.T + b_ih`` (T, B, G) is formed by the caller; the
loop adds ``h_prev @ W_hh.T`` per step and applies the fused cell step of :mod:`gpunet.ops.cells`,
whose functions define the semantics **and the saved-buffer layout** every implementation
keeps: ``h_buf``/``c_buf`` are ``(T+1, B, H)`` state buffers in time order (``h_buf[0]`` is the
initial state of the forward direction, ``h_buf[T]`` of the reverse one) and ``saved`` is
``(T, B, S)``: nothing for RNN (``None``), LSTM the activated gates ``i, f, g, o`` (S = 4H), GRU
``r, z, n, hn + b_hn`` (S = 4H).

``recurrent`` implementations have
``forward(mode, xg, w_hh, b_hh, h0, c0, mask, reverse, nonlinearity) -> (h_buf, c_buf, saved)``
(``xg`` may be modified) and ``backward(mode, w_hh, h_buf, c_buf, saved, gym, dh, dc, mask,
reverse, nonlinearity) -> (dxg, dhg, dh0, dc0)``, where ``dxg`` is the gradient w.r.t. ``xg`` and
``dhg`` w.r.t. ``h_prev @ W_hh.T + b_hh`` (the same array for RNN and LSTM); ``dh``/``dc`` are the
final states' gradients (owned, may be modified); ``gym`` the masked output gradient or None.
``recurrent_inference`` implementations have ``forward`` with the same arguments returning
``(h_out, h_n, c_n)``: the (T, B, H) outputs in time order (not yet masked) and final states.
"""

from __future__ import annotations

from typing import Any

from gpunet.autograd import OpError
from gpunet.backend import get_array_module
from gpunet.ops import recurrent_cpu, registry

Array = Any
GATES = {"rnn": 1, "lstm": 4, "gru": 3}


def check_recurrent_inputs(mode: str, x: Array, h0: Array, c0: Array | None, w_ih: Array, w_hh: Array,
                           b_ih: Array | None, b_hh: Array | None, mask: Array) -> None:
    """Raise OpError naming what is wrong with one recurrent layer's inputs (expected vs got)."""
    if x.ndim != 3 or x.shape[0] < 1:
        raise OpError(f"{mode}: expected input (T, B, I) with T >= 1, got {x.shape}")
    steps, batch, size = x.shape
    hidden = w_hh.shape[-1] if w_hh.ndim == 2 else -1
    gates = GATES[mode] * hidden
    if w_ih.shape != (gates, size) or w_hh.shape != (gates, hidden):
        raise OpError(f"{mode}: expected weight_ih ({gates}, {size}) and weight_hh ({gates}, {hidden}), "
                      f"got {w_ih.shape} and {w_hh.shape}")
    for label, state in (("h0", h0), ("c0", c0)):
        if state is not None and state.shape != (batch, hidden):
            raise OpError(f"{mode}: expected {label} of shape ({batch}, {hidden}), got {state.shape}")
    for label, b in (("bias_ih", b_ih), ("bias_hh", b_hh)):
        if b is not None and b.shape != (gates,):
            raise OpError(f"{mode}: expected {label} of shape ({gates},), got {b.shape}")
    if mask.shape != (steps, batch):
        raise OpError(f"{mode}: expected a ({steps}, {batch}) mask, got {mask.shape}")


def order(steps: int, reverse: bool) -> range:
    """Timesteps in processing order."""
    return range(steps - 1, -1, -1) if reverse else range(steps)


def split(buf: Array, reverse: bool) -> tuple[Array, Array]:
    """``(inputs, outputs)`` views of a ``(T+1, B, H)`` state buffer in time order."""
    return (buf[1:], buf[:-1]) if reverse else (buf[:-1], buf[1:])


def finished_rows(mask: Array) -> list[Array | None]:
    """Per step ``None`` when every sequence runs, else the ``(B, 1)`` bool of finished rows (NumPy)."""
    running = mask.all(axis=1)
    return [None if run else (mask[t] == 0)[:, None] for t, run in enumerate(running)]


class StepLoop:
    """The loop over the cell-step hot ops of implementation ``impl`` (found in the registry):
    the reference on NumPy and CuPy arrays, and the raw / numba kernels on CuPy arrays."""

    def __init__(self, impl: str) -> None:
        self.impl = impl

    def _step(self, name: str) -> Any:
        return registry.get(name, self.impl).load()

    def forward(self, mode: str, xg: Array, w_hh: Array, b_hh: Array | None, h0: Array, c0: Array | None,
                mask: Array, reverse: bool, nonlinearity: str) -> tuple[Array, Array | None, Array | None]:
        xp = get_array_module(xg)
        steps, batch, gates = xg.shape
        hidden = w_hh.shape[1]
        b_hh = b_hh if b_hh is not None else xp.zeros(gates, dtype=xg.dtype)
        h_buf = xp.empty((steps + 1, batch, hidden), dtype=xg.dtype)
        c_buf = xp.empty_like(h_buf) if mode == "lstm" else None
        first = steps if reverse else 0
        h_buf[first] = h0
        if c_buf is not None:
            c_buf[first] = c0
        saved = xp.empty((steps, batch, 4 * hidden), dtype=xg.dtype) if mode != "rnn" else None
        hg = xp.empty((batch, gates), dtype=xg.dtype)
        w_hh_t = w_hh.T
        step = self._step(f"{mode}_step_forward")
        d = -1 if reverse else 1
        for t in order(steps, reverse):
            src = t + 1 if reverse else t
            xp.matmul(h_buf[src], w_hh_t, out=hg)
            # out=: the kernels write straight into the buffers (no copy op per step)
            if mode == "rnn":
                step(xg[t], hg, b_hh, h_buf[src], mask[t], nonlinearity, out=(h_buf[src + d],))
            elif mode == "lstm":
                step(xg[t], hg, b_hh, h_buf[src], c_buf[src], mask[t],
                     out=(h_buf[src + d], c_buf[src + d], saved[t]))
            else:
                step(xg[t], hg, b_hh, h_buf[src], mask[t], out=(h_buf[src + d], saved[t]))
        return h_buf, c_buf, saved

    def backward(self, mode: str, w_hh: Array, h_buf: Array, c_buf: Array | None, saved: Array | None,
                 gym: Array | None, dh: Array, dc: Array | None, mask: Array, reverse: bool, nonlinearity: str
                 ) -> tuple[Array, Array, Array, Array | None]:
        xp = get_array_module(h_buf)
        steps, batch = h_buf.shape[0] - 1, h_buf.shape[1]
        dxg = xp.empty((steps, batch, w_hh.shape[0]), dtype=dh.dtype)
        dhg = dxg if mode != "gru" else xp.empty_like(dxg)
        h_in, h_out = split(h_buf, reverse)
        back = self._step(f"{mode}_step_backward")
        rec = xp.empty_like(dh)
        if mode == "lstm":
            c_in, c_out = split(c_buf, reverse)
        for t in reversed(order(steps, reverse)):
            if gym is not None:
                dh += gym[t]
            if mode == "rnn":
                carry = back(h_out[t], dh, mask[t], nonlinearity, out=(dxg[t],))[2]
            elif mode == "lstm":
                _, _, carry, dc = back(saved[t], c_in[t], c_out[t], dh, dc, mask[t], out=(dxg[t],))
            else:
                carry = back(saved[t], h_in[t], dh, mask[t], out=(dxg[t], dhg[t]))[2]
            xp.matmul(dhg[t], w_hh, out=rec)
            dh = carry + rec
        return dxg, dhg, dh, dc


class CompiledLoop:
    """The NumPy fast path: :mod:`gpunet.ops.recurrent_cpu`'s in-place loops."""

    def forward(self, mode: str, xg: Array, w_hh: Array, b_hh: Array | None, h0: Array, c0: Array | None,
                mask: Array, reverse: bool, nonlinearity: str) -> tuple[Array, Array | None, Array | None]:
        return recurrent_cpu.forward(mode, xg, w_hh, b_hh, h0, c0, finished_rows(mask), reverse, nonlinearity)

    def backward(self, mode: str, w_hh: Array, h_buf: Array, c_buf: Array | None, saved: Array | None,
                 gym: Array | None, dh: Array, dc: Array | None, mask: Array, reverse: bool, nonlinearity: str
                 ) -> tuple[Array, Array, Array, Array | None]:
        return recurrent_cpu.backward(mode, w_hh, h_buf, c_buf, saved, gym, dh, dc, finished_rows(mask),
                                      reverse, nonlinearity)


class TrainingForward:
    """Inference through the training forward of ``recurrent`` implementation ``impl``."""

    def __init__(self, impl: str) -> None:
        self.impl = impl

    def forward(self, mode: str, xg: Array, w_hh: Array, b_hh: Array | None, h0: Array, c0: Array | None,
                mask: Array, reverse: bool, nonlinearity: str) -> tuple[Array, Array, Array | None]:
        loop = registry.get("recurrent", self.impl).load()
        h_buf, c_buf, _ = loop.forward(mode, xg, w_hh, b_hh, h0, c0, mask, reverse, nonlinearity)
        last = 0 if reverse else xg.shape[0]
        return split(h_buf, reverse)[1], h_buf[last], (c_buf[last] if c_buf is not None else None)


class SequenceKernels:
    """Inference with the whole-sequence kernels of implementation ``impl`` (one launch per layer:
    ``{mode}_sequence_forward``), where their limits allow; else the step loop of ``impl``."""

    def __init__(self, impl: str, max_hidden: int) -> None:
        self.impl, self.max_hidden = impl, max_hidden

    def forward(self, mode: str, xg: Array, w_hh: Array, b_hh: Array | None, h0: Array, c0: Array | None,
                mask: Array, reverse: bool, nonlinearity: str) -> tuple[Array, Array, Array | None]:
        if w_hh.shape[1] > self.max_hidden:
            return TrainingForward(self.impl).forward(mode, xg, w_hh, b_hh, h0, c0, mask, reverse, nonlinearity)
        xp = get_array_module(xg)
        kernel = registry.get(f"{mode}_sequence_forward", self.impl).load()
        b_hh = b_hh if b_hh is not None else xp.zeros(w_hh.shape[0], dtype=xg.dtype)
        if reverse:  # the kernels run forward in time: run on the time-reversed sequence
            xg, mask = xp.ascontiguousarray(xg[::-1]), xp.ascontiguousarray(mask[::-1])
        c_n = None
        if mode == "lstm":
            hs, c_n = kernel(xg, w_hh, b_hh, h0, c0, mask)
        elif mode == "rnn":
            hs = kernel(xg, w_hh, b_hh, h0, mask, nonlinearity)
        else:
            hs = kernel(xg, w_hh, b_hh, h0, mask)
        h_n = hs[-1].copy()  # the kernels carry finished rows through, as the step ops do
        return (hs[::-1] if reverse else hs), h_n, c_n


REFERENCE_LOOP, CUPY_LOOP, RAW_LOOP, NUMBA_LOOP = (StepLoop(n) for n in ("numpy-ref", "cupy", "raw", "numba"))
COMPILED_LOOP = CompiledLoop()
REFERENCE_INFERENCE, COMPILED_INFERENCE, CUPY_INFERENCE, NUMBA_INFERENCE = (
    TrainingForward(n) for n in ("numpy-ref", "numpy-fast", "cupy", "numba"))
