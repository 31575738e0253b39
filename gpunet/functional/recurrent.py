"""Whole-sequence recurrent layers (RNN, LSTM, GRU): one Function per layer and direction.

``forward`` projects every timestep's input with one GEMM (``x @ W_ih.T + b_ih``), then runs the
loop over time of the ``recurrent`` op (``recurrent_inference`` when no graph is recorded) that
the registry picks (:mod:`gpunet.ops.recurrent`). ``backward`` runs the loop's BPTT, then forms
``dW_ih``, ``dW_hh``, the biases and ``dx`` with single GEMMs/reductions over all ``T*B`` rows.

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
from gpunet.ops import gemm_cpu, registry, scratch_cpu
from gpunet.ops.recurrent import GATES, check_recurrent_inputs, split

__all__ = ["GATES", "Recurrent", "gru", "length_mask", "lstm", "rnn"]

Array = Any


def _matmul(xp: Any, a: Array, b: Array) -> Array:
    """``a @ b``; on NumPy into a :mod:`gpunet.ops.scratch_cpu` block (recycled memory: a fresh
    multi-MiB result page-faults on every first touch)."""
    if xp is not numpy:
        return a @ b
    out = scratch_cpu.empty((a.shape[0], b.shape[1]), numpy.result_type(a, b))
    return gemm_cpu.matmul(a, b, out)  # split over our threads, not BLAS's: see gpunet.ops.gemm_cpu


def _copy(xp: Any, a: Array) -> Array:
    """``a.copy()`` (C order); on NumPy into a :mod:`gpunet.ops.scratch_cpu` block."""
    if xp is not numpy:
        return a.copy()
    out = scratch_cpu.empty(a.shape, a.dtype)
    numpy.copyto(out, a)
    return out


def length_mask(lengths: Any, steps: int, batch: int, xp: Any, dtype: Any) -> Array:
    """``(T, B)`` mask of ``dtype``: 1 where ``t < lengths[b]``; all ones when ``lengths`` is None."""
    if lengths is None:
        return xp.ones((steps, batch), dtype=dtype)
    raw = lengths.data if isinstance(lengths, Tensor) else lengths
    if not (backend.is_cupy_array(raw) and xp is not numpy):
        raw = numpy.asarray(backend.to_numpy(raw))
    if raw.shape != (batch,) or raw.dtype.kind not in "iu":
        raise OpError(f"recurrent: expected integer lengths of shape ({batch},), got {raw.dtype} {raw.shape}")
    if isinstance(raw, numpy.ndarray):
        if raw.size and (raw.min() < 0 or raw.max() > steps):
            raise OpError(f"recurrent: lengths must lie in [0, {steps}], got [{raw.min()}, {raw.max()}]")
        return xp.asarray((numpy.arange(steps)[:, None] < raw[None, :]).astype(dtype))
    # device lengths: the mask is built on the device, without the range check (it would sync);
    # a length above ``steps`` acts as ``steps``, a negative one as 0
    return (xp.arange(steps)[:, None] < raw[None, :]).astype(dtype)


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

    # ----- forward ---------------------------------------------------------------------------
    def forward(self, *arrays):
        x, h0, c0, w_ih, w_hh, b_ih, b_hh = self._unpack(arrays)
        check_recurrent_inputs(self.mode, x, h0, c0, w_ih, w_hh, b_ih, b_hh, self.mask)
        steps, batch, _ = x.shape
        gates = w_hh.shape[0]
        xg = _matmul(self.xp, x.reshape(steps * batch, -1), w_ih.T).reshape(steps, batch, gates)
        if b_ih is not None:
            xg += b_ih
        mask = self.mask = self.mask.astype(x.dtype, copy=False)
        device = registry.device_of(x)
        all_running = device == "numpy" and bool(mask.all())  # no device sync on the GPU
        args = (self.mode, xg, w_hh, b_hh, h0, c0, mask, self.reverse, self.nonlinearity)
        if not self.recording:
            h_out, h_n, c_n = registry.lookup("recurrent_inference", device).forward(*args)
        else:
            self.loop = registry.lookup("recurrent", device)
            h_buf, c_buf, saved = self.loop.forward(*args)
            self.save_for_backward(x, w_ih, w_hh, h_buf, c_buf, saved, all_running)
            last = 0 if self.reverse else steps
            h_out, h_n = split(h_buf, self.reverse)[1], h_buf[last].copy()
            c_n = c_buf[last].copy() if c_buf is not None else None
        y = _copy(self.xp, h_out) if all_running else h_out * mask[:, :, None]
        return (y, h_n, c_n) if self.mode == "lstm" else (y, h_n)

    # ----- backward --------------------------------------------------------------------------
    def backward(self, *grads):
        x, w_ih, w_hh, h_buf, c_buf, saved, all_running = self.saved
        gy, gh = grads[0], grads[1]
        gc = grads[2] if self.mode == "lstm" else None
        xp, mode = self.xp, self.mode
        steps, batch, _ = x.shape
        hidden, gates = w_hh.shape[1], w_hh.shape[0]
        dtype = x.dtype
        gym = gy
        if gy is not None and not all_running:
            gym = gy * self.mask[:, :, None]
        dh = gh.astype(dtype, copy=True) if gh is not None else xp.zeros((batch, hidden), dtype=dtype)
        dc = None
        if mode == "lstm":
            dc = gc.astype(dtype, copy=True) if gc is not None else xp.zeros((batch, hidden), dtype=dtype)
        dxg, dhg, dh, dc = self.loop.backward(mode, w_hh, h_buf, c_buf, saved, gym, dh, dc, self.mask,
                                              self.reverse, self.nonlinearity)
        rows = steps * batch
        dxg2, dhg2 = dxg.reshape(rows, gates), dhg.reshape(rows, gates)
        h_in = split(h_buf, self.reverse)[0]
        gx = _matmul(xp, dxg2, w_ih).reshape(x.shape) if self.needs_input_grad[0] else None
        gw_ih = _matmul(xp, dxg2.T, x.reshape(rows, -1))
        gw_hh = _matmul(xp, dhg2.T, h_in.reshape(rows, hidden))
        out = [gx, dh] + ([dc] if mode == "lstm" else []) + [gw_ih, gw_hh]
        if self.bias:
            db_ih = dxg2.sum(axis=0)
            out += [db_ih, db_ih.copy() if dhg is dxg else dhg2.sum(axis=0)]
        return tuple(out)


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
