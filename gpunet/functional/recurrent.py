"""Whole-sequence recurrent layers (RNN, LSTM, GRU): one Function per layer and direction.

``forward`` projects every timestep's input with one GEMM (``x @ W_ih.T + b_ih``), then loops
over time: one GEMM ``h_prev @ W_hh.T`` and one fused *step* (``gpunet.functional.cells``, or
its GPU kernel through ``gpunet.cuda.dispatch``). ``backward`` (BPTT) loops back over time with
the step-backward op and one GEMM per step, then forms ``dW_ih``, ``dW_hh``, the biases and
``dx`` with single GEMMs/reductions over all ``T*B`` rows.

Variable lengths: ``lengths`` (B,) gives each sequence's length in a padded ``(T, B, I)`` batch.
Past its end a sequence's state is carried unchanged, so its final state is the state at its own
last step; the reverse direction runs from ``T-1`` down to ``0`` and, by the same carry, starts at
each sequence's own last element. Outputs past the end are zero. Padding never affects gradients.
"""

from __future__ import annotations

from typing import Any

import numpy

from gpunet import backend
from gpunet.autograd import Function, OpError, Tensor
from gpunet.cuda.dispatch import lookup
from gpunet.functional import recurrent_cpu

Array = Any
GATES = {"rnn": 1, "lstm": 4, "gru": 3}
FAST_CPU = True  # NumPy arrays take recurrent_cpu's in-place loops; False: the step ops as on the GPU


def length_mask(lengths: Any, steps: int, batch: int, xp: Any, dtype: Any) -> Array:
    """``(T, B)`` mask of ``dtype``: 1 where ``t < lengths[b]``; all ones when ``lengths`` is None."""
    if lengths is None:
        return xp.ones((steps, batch), dtype=dtype)
    host = numpy.asarray(backend.to_numpy(lengths.data if isinstance(lengths, Tensor) else lengths))
    if host.shape != (batch,) or host.dtype.kind not in "iu":
        raise OpError(f"recurrent: expected integer lengths of shape ({batch},), got {host.dtype} {host.shape}")
    if host.size and (host.min() < 0 or host.max() > steps):
        raise OpError(f"recurrent: lengths must lie in [0, {steps}], got [{host.min()}, {host.max()}]")
    return xp.asarray((numpy.arange(steps)[:, None] < host[None, :]).astype(dtype))


class Recurrent(Function):
    """One layer, one direction. Inputs ``x, h0, [c0], w_ih, w_hh, [b_ih, b_hh]``.

    Outputs ``y`` (T, B, H) (zero past each length), ``h_n`` (B, H) and, for LSTM, ``c_n``.
    """

    accepts_none_grads = True

    def __init__(self, mode: str, mask: Array, reverse: bool = False, nonlinearity: str = "tanh",
                 bias: bool = True) -> None:
        self.mode, self.mask, self.reverse, self.bias = mode, mask, reverse, bias
        self.nonlinearity = nonlinearity

    # ----- helpers ---------------------------------------------------------------------------
    def _unpack(self, arrays: tuple[Array, ...]) -> tuple[Array, ...]:
        x, h0, *rest = arrays
        c0 = rest.pop(0) if self.mode == "lstm" else None
        w_ih, w_hh, *bias = rest
        b_ih, b_hh = bias if bias else (None, None)
        return x, h0, c0, w_ih, w_hh, b_ih, b_hh

    def _check(self, x: Array, h0: Array, c0: Array, w_ih: Array, w_hh: Array, b_ih: Array,
               b_hh: Array) -> None:
        name = self.mode
        if x.ndim != 3 or x.shape[0] < 1:
            raise OpError(f"{name}: expected input (T, B, I) with T >= 1, got {x.shape}")
        steps, batch, size = x.shape
        hidden = w_hh.shape[-1] if w_hh.ndim == 2 else -1
        gates = GATES[name] * hidden
        if w_ih.shape != (gates, size) or w_hh.shape != (gates, hidden):
            raise OpError(f"{name}: expected weight_ih ({gates}, {size}) and weight_hh ({gates}, {hidden}), "
                          f"got {w_ih.shape} and {w_hh.shape}")
        for label, state in (("h0", h0), ("c0", c0)):
            if state is not None and state.shape != (batch, hidden):
                raise OpError(f"{name}: expected {label} of shape ({batch}, {hidden}), got {state.shape}")
        for label, b in (("bias_ih", b_ih), ("bias_hh", b_hh)):
            if b is not None and b.shape != (gates,):
                raise OpError(f"{name}: expected {label} of shape ({gates},), got {b.shape}")
        if self.mask.shape != (steps, batch):
            raise OpError(f"{name}: expected a ({steps}, {batch}) mask, got {self.mask.shape}")

    def _order(self, steps: int) -> range:
        return range(steps - 1, -1, -1) if self.reverse else range(steps)

    def _split(self, buf: Array) -> tuple[Array, Array]:
        """``(inputs, outputs)`` views of a ``(T+1, B, H)`` state buffer in time order."""
        return (buf[1:], buf[:-1]) if self.reverse else (buf[:-1], buf[1:])

    # ----- forward ---------------------------------------------------------------------------
    def forward(self, *arrays):
        x, h0, c0, w_ih, w_hh, b_ih, b_hh = self._unpack(arrays)
        self._check(x, h0, c0, w_ih, w_hh, b_ih, b_hh)
        steps, batch, _ = x.shape
        gates = w_hh.shape[0]
        xg = (x.reshape(steps * batch, -1) @ w_ih.T).reshape(steps, batch, gates)
        if b_ih is not None:
            xg += b_ih
        self.mask = mask = self.mask.astype(x.dtype, copy=False)
        self.fast = self.xp is numpy and FAST_CPU
        running = mask.all(axis=1) if self.xp is numpy else None  # no device sync on the GPU
        self.all_running = running is not None and bool(running.all())
        if self.fast:
            self.finished = [None if run else (mask[t] == 0)[:, None] for t, run in enumerate(running)]
            self.h_buf, self.c_buf, self.saved = recurrent_cpu.forward(
                self.mode, xg, w_hh, b_hh, h0, c0, self.finished, self.reverse, self.nonlinearity)
        else:
            self._steps_forward(xg, w_hh, b_hh, h0, c0)
        self.x, self.w_ih, self.w_hh = x, w_ih, w_hh
        last = 0 if self.reverse else steps
        h_out = self._split(self.h_buf)[1]
        y = h_out.copy() if self.all_running else h_out * mask[:, :, None]
        if self.mode == "lstm":
            return y, self.h_buf[last].copy(), self.c_buf[last].copy()
        return y, self.h_buf[last].copy()

    def _steps_forward(self, xg: Array, w_hh: Array, b_hh: Array | None, h0: Array, c0: Array | None) -> None:
        """The loop over the dispatched step ops (the GPU kernels on CuPy arrays)."""
        xp, mode, mask = self.xp, self.mode, self.mask
        steps, batch, gates = xg.shape
        hidden = w_hh.shape[1]
        b_hh = b_hh if b_hh is not None else xp.zeros(gates, dtype=xg.dtype)
        h_buf = xp.empty((steps + 1, batch, hidden), dtype=xg.dtype)
        c_buf = xp.empty_like(h_buf) if mode == "lstm" else None
        first = steps if self.reverse else 0
        h_buf[first] = h0
        if c_buf is not None:
            c_buf[first] = c0
        saved = xp.empty((steps, batch, gates if mode == "lstm" else 4 * hidden), dtype=xg.dtype)
        hg = xp.empty((batch, gates), dtype=xg.dtype)
        w_hh_t = w_hh.T
        step = lookup(f"{mode}_step_forward", xp is not numpy)
        d = -1 if self.reverse else 1
        for t in self._order(steps):
            src = t + 1 if self.reverse else t
            xp.matmul(h_buf[src], w_hh_t, out=hg)
            if mode == "rnn":
                h_buf[src + d] = step(xg[t], hg, b_hh, h_buf[src], mask[t], self.nonlinearity)
            elif mode == "lstm":
                h_buf[src + d], c_buf[src + d], saved[t] = step(xg[t], hg, b_hh, h_buf[src], c_buf[src], mask[t])
            else:
                h_buf[src + d], saved[t] = step(xg[t], hg, b_hh, h_buf[src], mask[t])
        self.h_buf, self.c_buf, self.saved = h_buf, c_buf, saved

    # ----- backward --------------------------------------------------------------------------
    def backward(self, *grads):
        gy, gh = grads[0], grads[1]
        gc = grads[2] if self.mode == "lstm" else None
        xp, mode = self.xp, self.mode
        steps, batch, _ = self.x.shape
        hidden, gates = self.w_hh.shape[1], self.w_hh.shape[0]
        dtype = self.x.dtype
        gym = gy
        if gy is not None and not self.all_running:
            gym = gy * self.mask[:, :, None]
        dh = gh.astype(dtype, copy=True) if gh is not None else xp.zeros((batch, hidden), dtype=dtype)
        dc = None
        if mode == "lstm":
            dc = gc.astype(dtype, copy=True) if gc is not None else xp.zeros((batch, hidden), dtype=dtype)
        if self.fast:
            dxg, dhg, dh, dc = recurrent_cpu.backward(mode, self.w_hh, self.h_buf, self.c_buf, self.saved, gym,
                                                      dh, dc, self.finished, self.reverse, self.nonlinearity)
        else:
            dxg, dhg, dh, dc = self._steps_backward(gym, dh, dc)
        rows = steps * batch
        dxg2, dhg2 = dxg.reshape(rows, gates), dhg.reshape(rows, gates)
        h_in = self._split(self.h_buf)[0]
        gx = (dxg2 @ self.w_ih).reshape(self.x.shape) if self.needs_grad[0] else None
        gw_ih = dxg2.T @ self.x.reshape(rows, -1)
        gw_hh = dhg2.T @ h_in.reshape(rows, hidden)
        out = [gx, dh] + ([dc] if mode == "lstm" else []) + [gw_ih, gw_hh]
        if self.bias:
            db_ih = dxg2.sum(axis=0)
            out += [db_ih, db_ih.copy() if dhg is dxg else dhg2.sum(axis=0)]
        return tuple(out)

    def _steps_backward(self, gym: Array | None, dh: Array, dc: Array | None) -> tuple[Array, ...]:
        """BPTT over the dispatched step-backward ops; returns ``dxg, dhg, dh0, dc0``."""
        xp, mode, mask, w_hh = self.xp, self.mode, self.mask, self.w_hh
        steps, batch, _ = self.x.shape
        dxg = xp.empty((steps, batch, w_hh.shape[0]), dtype=dh.dtype)
        dhg = dxg if mode != "gru" else xp.empty_like(dxg)
        h_in, h_out = self._split(self.h_buf)
        back = lookup(f"{mode}_step_backward", xp is not numpy)
        rec = xp.empty_like(dh)
        if mode == "lstm":
            c_in, c_out = self._split(self.c_buf)
        for t in reversed(self._order(steps)):
            if gym is not None:
                dh += gym[t]
            if mode == "rnn":
                dxg[t], _, carry = back(h_out[t], dh, mask[t], self.nonlinearity)
            elif mode == "lstm":
                dxg[t], _, carry, dc = back(self.saved[t], c_in[t], c_out[t], dh, dc, mask[t])
            else:
                dxg[t], dhg[t], carry = back(self.saved[t], h_in[t], dh, mask[t])
            xp.matmul(dhg[t], w_hh, out=rec)
            dh = carry + rec
        return dxg, dhg, dh, dc


def _run(mode: str, x: Tensor, states: list[Tensor], weights: tuple[Tensor | None, ...], lengths: Any,
         reverse: bool, nonlinearity: str = "tanh") -> tuple[Tensor, ...]:
    if nonlinearity not in ("tanh", "relu"):
        raise OpError(f"rnn: expected nonlinearity 'tanh' or 'relu', got {nonlinearity!r}")
    w_ih, w_hh, b_ih, b_hh = weights
    if (b_ih is None) != (b_hh is None):
        raise OpError(f"{mode}: give both biases or neither")
    if x.ndim != 3:
        raise OpError(f"{mode}: expected input (T, B, I), got {x.shape}")
    mask = length_mask(lengths, x.shape[0], x.shape[1], x.xp, x.dtype)
    inputs = [x, *states, w_ih, w_hh] + ([b_ih, b_hh] if b_ih is not None else [])
    return Recurrent(mode, mask, reverse, nonlinearity, bias=b_ih is not None)(*inputs)


def rnn(x: Tensor, h0: Tensor, w_ih: Tensor, w_hh: Tensor, b_ih: Tensor | None = None,
        b_hh: Tensor | None = None, *, nonlinearity: str = "tanh", lengths: Any = None,
        reverse: bool = False) -> tuple[Tensor, Tensor]:
    """Elman RNN over a whole sequence ``x`` (T, B, I): returns ``(y, h_n)``."""
    return _run("rnn", x, [h0], (w_ih, w_hh, b_ih, b_hh), lengths, reverse, nonlinearity)


def lstm(x: Tensor, h0: Tensor, c0: Tensor, w_ih: Tensor, w_hh: Tensor, b_ih: Tensor | None = None,
         b_hh: Tensor | None = None, *, lengths: Any = None, reverse: bool = False
         ) -> tuple[Tensor, Tensor, Tensor]:
    """LSTM (gates i, f, g, o) over ``x`` (T, B, I): returns ``(y, h_n, c_n)``."""
    return _run("lstm", x, [h0, c0], (w_ih, w_hh, b_ih, b_hh), lengths, reverse)


def gru(x: Tensor, h0: Tensor, w_ih: Tensor, w_hh: Tensor, b_ih: Tensor | None = None,
        b_hh: Tensor | None = None, *, lengths: Any = None, reverse: bool = False) -> tuple[Tensor, Tensor]:
    """GRU (gates r, z, n; PyTorch's form) over ``x`` (T, B, I): returns ``(y, h_n)``."""
    return _run("gru", x, [h0], (w_ih, w_hh, b_ih, b_hh), lengths, reverse)
