"""Hot ops as CUDA C kernels (``kernels/*.cu``) loaded through ``cupy.RawModule``.

Every launcher has the exact signature of its reference in ``gpunet.ops.conv2d`` /
``gpunet.ops.cells`` and validates in Python before launching: array type (a NumPy
array reaching GPU code is a TypeError naming the op), dtype (float32 or float64, all equal),
shapes, and C-contiguity (non-contiguous inputs are copied). Launch configuration lives here,
independent of the runtime, so the CPU grid emulator in ``tests/kernels/emulator`` drives the
very same launchers with NumPy arrays.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from typing import Any

import numpy

from gpunet.cuda.kernel_constants import (
    CELL_BLOCKS,
    MAX_GRID_Y,
    MAX_INT,
    MAX_SPLITS,
    POOL_MAX_PLANE,
    SEQ_MAX_H,
    THREADS,
    TILE,
    TILE_K,
)
from gpunet.cuda.raw_runtime import COMPILE_OPTIONS, KERNELS, SUFFIX, CupyRuntime, Runtime
from gpunet.ops.catalog import HOT_OPS, POOL_OPS, SEQUENCE_OPS
from gpunet.ops.conv2d import check_conv2d_geometry
from gpunet.ops.recurrent import SequenceKernels

Array = Any
Pair = tuple[int, int]

# THREADS, TILE, TILE_K, SEQ_MAX_H, ...: gpunet.cuda.kernel_constants (checked against the .cu
# sources by tests/kernels/test_kernel_constants.py), re-exported here.


class RawOps:
    """The hot-op launchers over one :class:`Runtime`; :meth:`table` is what the registry uses."""

    def __init__(self, runtime: Runtime, *, target_blocks: int = 264, min_split_k: int = 256
                 ) -> None:
        """``target_blocks``: conv grids smaller than this split the reduction (split-K) into
        slices of at least ``min_split_k`` to fill the GPU (2 blocks per SM is a good target)."""
        self.rt = runtime
        self.target_blocks = target_blocks
        self.min_split_k = min_split_k

    def table(self) -> dict[str, Callable[..., Any]]:
        """``{op_name: launcher}`` for every hot op and whole-sequence forward (``gpunet.ops.catalog``)."""
        table: dict[str, Any] = {name: getattr(self, name) for name in HOT_OPS + SEQUENCE_OPS}
        table.update(dict(zip(POOL_OPS, (RawMaxPool(self), RawAvgPool(self)))))
        from gpunet.cuda.raw_fused import RawCrossEntropy, RawRelu, RawSgd

        table.update({"sgd_step": RawSgd(self), "relu": RawRelu(self),
                      "cross_entropy": RawCrossEntropy(self)})
        return table

    # -- validation -----------------------------------------------------------------------

    def _arrays(self, op: str, **arrays: Array) -> tuple[numpy.dtype, list[Array]]:
        """Check type and dtype of every array; return the dtype and C-contiguous arrays."""
        dtype = None
        out = []
        for name, arr in arrays.items():
            if not isinstance(arr, self.rt.array_type):
                kind = f"{type(arr).__module__}.{type(arr).__name__}"
                raise TypeError(f"{op} (raw CUDA kernel): expected {name!r} as a "
                                f"{self.rt.array_type.__module__}.{self.rt.array_type.__name__} "
                                f"on the device, got {kind}; move it with gpunet's backend "
                                f"helpers first")
            if arr.dtype not in SUFFIX:
                raise TypeError(f"{op}: expected float32 or float64 for {name!r}, got {arr.dtype}")
            if dtype is None:
                dtype = arr.dtype
            elif arr.dtype != dtype:
                raise TypeError(f"{op}: all arrays must share one dtype; {name!r} is {arr.dtype}, "
                                f"expected {dtype}")
            out.append(self.rt.xp.ascontiguousarray(arr))
        return numpy.dtype(dtype), out

    @staticmethod
    def _expect(op: str, name: str, arr: Array, shape: tuple[int, ...]) -> None:
        if tuple(arr.shape) != tuple(shape):
            raise ValueError(f"{op}: {name!r} must have shape {tuple(shape)}, got {tuple(arr.shape)}")

    # -- conv2d ---------------------------------------------------------------------------

    @staticmethod
    def _conv_geometry(op: str, x_shape: Any, w_shape: Any, stride: Any, padding: Any,
                       dilation: Any, gy: Array | None = None) -> tuple[int, ...]:
        """The shared check of :func:`gpunet.ops.conv2d.check_conv2d_geometry`, flattened to the
        kernels' geometry arguments ``n, c_in, h, w, c_out, kh, kw, ho, wo, sh, sw, ph, pw, dh, dw``."""
        g = check_conv2d_geometry(op, x_shape, w_shape, stride, padding, dilation,
                                  None if gy is None else gy.shape)
        return (*g[:9], *g.stride, *g.padding, *g.dilation)

    def split_k(self, tiles: int, k: int) -> tuple[int, int]:
        """``(splits, k_chunk)``: how many grid z-slices share a reduction of length ``k``."""
        splits = 1
        if tiles < self.target_blocks:
            splits = min(math.ceil(self.target_blocks / tiles), k // self.min_split_k, MAX_SPLITS)
        splits = max(splits, 1)
        chunk = math.ceil(math.ceil(k / splits) / TILE_K) * TILE_K if k else TILE_K
        return (math.ceil(k / chunk) if k else 1), chunk

    def _conv_launch(self, op: str, kernel: str, m: int, n_cols: int, k: int,
                     inputs: tuple[Array, Array], out: Array, geom: tuple[int, ...]) -> None:
        if max(m, n_cols, k, out.size, *(a.size for a in inputs)) > MAX_INT:
            raise ValueError(f"{op}: problem too large for 32-bit tile indexing")
        tiles_m, tiles_n = math.ceil(m / TILE), math.ceil(n_cols / TILE)
        if tiles_n > MAX_GRID_Y:
            raise ValueError(f"{op}: too many output channels for one launch ({n_cols})")
        if not (m and n_cols):
            return
        splits, chunk = self.split_k(tiles_m * tiles_n, k)
        suffix = SUFFIX[out.dtype]
        target = out if splits == 1 else self.rt.empty((splits, out.size), out.dtype)
        if target.size > MAX_INT:
            raise ValueError(f"{op}: split-K workspace too large for 32-bit indexing")
        args = (*inputs, target, *(numpy.int32(v) for v in geom), numpy.int32(chunk))
        self.rt.launch("conv2d.cu", f"{kernel}_{suffix}", (tiles_m, tiles_n, splits),
                       (THREADS, 1, 1), args)
        if splits > 1:
            blocks = min(math.ceil(out.size / THREADS), CELL_BLOCKS)
            self.rt.launch("conv2d.cu", f"conv2d_split_sum_{suffix}", (blocks, 1, 1),
                           (THREADS, 1, 1), (target, out, numpy.int32(splits), numpy.int32(out.size)))

    def conv2d_forward(self, x: Array, w: Array, stride: Pair, padding: Pair, dilation: Pair
                       ) -> Array:
        """Kernel version of ``gpunet.ops.conv2d.conv2d_forward``."""
        op = "conv2d_forward"
        dtype, (x, w) = self._arrays(op, x=x, w=w)
        geom = self._conv_geometry(op, x.shape, w.shape, stride, padding, dilation)
        n, c_in, _, _, c_out, kh, kw, ho, wo = geom[:9]
        y = self.rt.empty((n, c_out, ho, wo), dtype)
        self._conv_launch(op, "conv2d_fwd", n * ho * wo, c_out, c_in * kh * kw, (x, w), y, geom)
        return y

    def conv2d_backward_input(self, gy: Array, w: Array, x_shape: tuple[int, ...], stride: Pair,
                              padding: Pair, dilation: Pair) -> Array:
        """Kernel version of ``gpunet.ops.conv2d.conv2d_backward_input``."""
        op = "conv2d_backward_input"
        dtype, (gy, w) = self._arrays(op, gy=gy, w=w)
        geom = self._conv_geometry(op, x_shape, w.shape, stride, padding, dilation, gy)
        n, c_in, h, wd, c_out, kh, kw, ho, wo = geom[:9]
        gx = self.rt.empty((n, c_in, h, wd), dtype)
        self._conv_launch(op, "conv2d_bwd_input", n * h * wd, c_in, c_out * kh * kw, (gy, w), gx,
                          geom)
        return gx

    def conv2d_backward_weight(self, x: Array, gy: Array, w_shape: tuple[int, ...], stride: Pair,
                               padding: Pair, dilation: Pair) -> Array:
        """Kernel version of ``gpunet.ops.conv2d.conv2d_backward_weight``."""
        op = "conv2d_backward_weight"
        dtype, (x, gy) = self._arrays(op, x=x, gy=gy)
        geom = self._conv_geometry(op, x.shape, w_shape, stride, padding, dilation, gy)
        n, c_in, _, _, c_out, kh, kw, ho, wo = geom[:9]
        gw = self.rt.empty((c_out, c_in, kh, kw), dtype)
        self._conv_launch(op, "conv2d_bwd_weight", c_in * kh * kw, c_out, n * ho * wo,
                          (x, gy), gw, geom)
        return gw

    # -- recurrent cells ------------------------------------------------------------------

    def _cell_launch(self, kernel: str, batch: int, hidden: int, arrays: tuple[Array, ...],
                     *extra: int) -> None:
        total = batch * hidden
        if total == 0:
            return
        if max(total, *(a.size for a in arrays)) > MAX_INT:
            raise ValueError(f"{kernel}: batch x hidden too large for one launch")
        grid = (min(math.ceil(total / THREADS), CELL_BLOCKS), 1, 1)
        args = (*arrays, numpy.int32(batch), numpy.int32(hidden), *(numpy.int32(e) for e in extra))
        self.rt.launch("rnn_cells.cu", f"{kernel}_{SUFFIX[arrays[0].dtype]}", grid,
                       (THREADS, 1, 1), args)

    def _step_inputs(self, op: str, gates: int, xg: Array, hg: Array, b_hh: Array,
                     h_prev: Array, mask: Array) -> tuple[int, int]:
        if h_prev.ndim != 2:
            raise ValueError(f"{op}: 'h_prev' must be (B, H), got shape {tuple(h_prev.shape)}")
        batch, hidden = h_prev.shape
        for name, arr, shape in (("xg", xg, (batch, gates * hidden)),
                                 ("hg", hg, (batch, gates * hidden)),
                                 ("b_hh", b_hh, (gates * hidden,)), ("mask", mask, (batch,))):
            self._expect(op, name, arr, shape)
        return batch, hidden

    def _outputs(self, op: str, out: tuple[Array, ...] | None, dtype: numpy.dtype,
                 *shapes: tuple[int, ...]) -> tuple[Array, ...]:
        """The caller's ``out`` arrays (checked: device array, dtype, shape, C-contiguous), or
        fresh ones."""
        if out is None:
            return tuple(self.rt.empty(shape, dtype) for shape in shapes)
        for k, (arr, shape) in enumerate(zip(out, shapes)):
            self._expect(op, f"out[{k}]", arr, shape)
            if not isinstance(arr, self.rt.array_type) or arr.dtype != dtype or not arr.flags.c_contiguous:
                raise ValueError(f"{op}: out[{k}] must be a C-contiguous {dtype} device array, got "
                                 f"{type(arr).__name__} {getattr(arr, 'dtype', '?')}")
        return tuple(out)

    @staticmethod
    def _relu_flag(op: str, nonlinearity: str) -> int:
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"{op}: nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        return int(nonlinearity == "relu")

    def rnn_step_forward(self, xg: Array, hg: Array, b_hh: Array, h_prev: Array, mask: Array,
                         nonlinearity: str = "tanh", out: tuple[Array] | None = None) -> Array:
        """Kernel version of ``cells.rnn_step_forward``."""
        op = "rnn_step_forward"
        relu = self._relu_flag(op, nonlinearity)
        dtype, arrays = self._arrays(op, xg=xg, hg=hg, b_hh=b_hh, h_prev=h_prev, mask=mask)
        batch, hidden = self._step_inputs(op, 1, *arrays)
        (h,) = self._outputs(op, out, dtype, (batch, hidden))
        self._cell_launch("rnn_fwd", batch, hidden, (*arrays, h), relu)
        return h

    def rnn_step_backward(self, h: Array, dh: Array, mask: Array, nonlinearity: str = "tanh",
                          out: tuple[Array] | None = None) -> tuple[Array, Array, Array]:
        """Kernel version of ``cells.rnn_step_backward`` (``dxg is dhg``)."""
        op = "rnn_step_backward"
        relu = self._relu_flag(op, nonlinearity)
        dtype, (h, dh, mask) = self._arrays(op, h=h, dh=dh, mask=mask)
        if h.ndim != 2:
            raise ValueError(f"{op}: 'h' must be (B, H), got shape {tuple(h.shape)}")
        batch, hidden = h.shape
        self._expect(op, "dh", dh, h.shape)
        self._expect(op, "mask", mask, (batch,))
        (dpre,) = self._outputs(op, out, dtype, tuple(h.shape))
        carry = self.rt.empty(h.shape, dtype)
        self._cell_launch("rnn_bwd", batch, hidden, (h, dh, mask, dpre, carry), relu)
        return dpre, dpre, carry

    def lstm_step_forward(self, xg: Array, hg: Array, b_hh: Array, h_prev: Array, c_prev: Array,
                          mask: Array, out: tuple[Array, Array, Array] | None = None
                          ) -> tuple[Array, Array, Array]:
        """Kernel version of ``cells.lstm_step_forward``: ``h, c, gates``."""
        op = "lstm_step_forward"
        dtype, arrays = self._arrays(op, xg=xg, hg=hg, b_hh=b_hh, h_prev=h_prev, c_prev=c_prev,
                                     mask=mask)
        xg, hg, b_hh, h_prev, c_prev, mask = arrays
        batch, hidden = self._step_inputs(op, 4, xg, hg, b_hh, h_prev, mask)
        self._expect(op, "c_prev", c_prev, (batch, hidden))
        h, c, gates = self._outputs(op, out, dtype, (batch, hidden), (batch, hidden),
                                    (batch, 4 * hidden))
        self._cell_launch("lstm_fwd", batch, hidden, (*arrays, h, c, gates))
        return h, c, gates

    def lstm_step_backward(self, gates: Array, c_prev: Array, c: Array, dh: Array, dc: Array,
                           mask: Array, out: tuple[Array] | None = None
                           ) -> tuple[Array, Array, Array, Array]:
        """Kernel version of ``cells.lstm_step_backward``: ``dxg, dhg (same), dh_carry, dc_prev``."""
        op = "lstm_step_backward"
        dtype, arrays = self._arrays(op, gates=gates, c_prev=c_prev, c=c, dh=dh, dc=dc, mask=mask)
        gates, c_prev, c, dh, dc, mask = arrays
        if c.ndim != 2:
            raise ValueError(f"{op}: 'c' must be (B, H), got shape {tuple(c.shape)}")
        batch, hidden = c.shape
        self._expect(op, "gates", gates, (batch, 4 * hidden))
        for name, arr in (("c_prev", c_prev), ("dh", dh), ("dc", dc)):
            self._expect(op, name, arr, (batch, hidden))
        self._expect(op, "mask", mask, (batch,))
        (dpre,) = self._outputs(op, out, dtype, (batch, 4 * hidden))
        carry, dc_prev = self.rt.empty(c.shape, dtype), self.rt.empty(c.shape, dtype)
        self._cell_launch("lstm_bwd", batch, hidden, (*arrays, dpre, carry, dc_prev))
        return dpre, dpre, carry, dc_prev

    def gru_step_forward(self, xg: Array, hg: Array, b_hh: Array, h_prev: Array, mask: Array,
                         out: tuple[Array, Array] | None = None) -> tuple[Array, Array]:
        """Kernel version of ``cells.gru_step_forward``: ``h`` and saved ``r, z, n, hn``."""
        op = "gru_step_forward"
        dtype, arrays = self._arrays(op, xg=xg, hg=hg, b_hh=b_hh, h_prev=h_prev, mask=mask)
        batch, hidden = self._step_inputs(op, 3, *arrays)
        h, saved = self._outputs(op, out, dtype, (batch, hidden), (batch, 4 * hidden))
        self._cell_launch("gru_fwd", batch, hidden, (*arrays, h, saved))
        return h, saved

    def gru_step_backward(self, saved: Array, h_prev: Array, dh: Array, mask: Array,
                          out: tuple[Array, Array] | None = None) -> tuple[Array, Array, Array]:
        """Kernel version of ``cells.gru_step_backward``: ``dxg, dhg, dh_carry``."""
        op = "gru_step_backward"
        dtype, arrays = self._arrays(op, saved=saved, h_prev=h_prev, dh=dh, mask=mask)
        saved, h_prev, dh, mask = arrays
        if h_prev.ndim != 2:
            raise ValueError(f"{op}: 'h_prev' must be (B, H), got shape {tuple(h_prev.shape)}")
        batch, hidden = h_prev.shape
        self._expect(op, "saved", saved, (batch, 4 * hidden))
        self._expect(op, "dh", dh, (batch, hidden))
        self._expect(op, "mask", mask, (batch,))
        dxg, dhg = self._outputs(op, out, dtype, (batch, 3 * hidden), (batch, 3 * hidden))
        carry = self.rt.empty((batch, hidden), dtype)
        self._cell_launch("gru_bwd", batch, hidden, (*arrays, dxg, dhg, carry))
        return dxg, dhg, carry

    # -- whole-sequence forward (persistent over time; the inference implementation) --------

    def _sequence(self, op: str, kernel: str, gates: int, xg: Array, w_hh: Array, b_hh: Array,
                  h0: Array, mask: Array, c0: Array | None = None, *extra: int
                  ) -> tuple[Array, Array | None]:
        named = {"xg": xg, "w_hh": w_hh, "b_hh": b_hh, "h0": h0, "mask": mask}
        if c0 is not None:
            named["c0"] = c0
        dtype, arrays = self._arrays(op, **named)
        xg, w_hh, b_hh, h0, mask = arrays[:5]
        if h0.ndim != 2 or xg.ndim != 3:
            raise ValueError(f"{op}: expected xg (T, B, G) and h0 (B, H), got {tuple(xg.shape)} "
                             f"and {tuple(h0.shape)}")
        batch, hidden = h0.shape
        steps = xg.shape[0]
        if hidden > SEQ_MAX_H:
            raise ValueError(f"{op}: hidden size {hidden} > {SEQ_MAX_H} (use the step kernels)")
        for name, arr, shape in (("xg", xg, (steps, batch, gates * hidden)),
                                 ("w_hh", w_hh, (gates * hidden, hidden)),
                                 ("b_hh", b_hh, (gates * hidden,)), ("mask", mask, (steps, batch))):
            self._expect(op, name, arr, shape)
        if max(xg.size, w_hh.size) > MAX_INT:
            raise ValueError(f"{op}: sequence too large for one launch")
        wt = self.rt.xp.ascontiguousarray(w_hh.T)
        hs = self.rt.empty((steps, batch, hidden), dtype)
        c_last = None
        inputs = [xg, wt, b_hh, h0]
        outputs = [hs]
        if c0 is not None:
            self._expect(op, "c0", arrays[5], (batch, hidden))
            c_last = self.rt.empty((batch, hidden), dtype)
            inputs.append(arrays[5])
            outputs.append(c_last)
        if batch:
            args = (*inputs, mask, *outputs, numpy.int32(steps), numpy.int32(batch),
                    numpy.int32(hidden), *(numpy.int32(e) for e in extra))
            self.rt.launch("rnn_cells.cu", f"{kernel}_{SUFFIX[dtype]}", (batch, 1, 1),
                           (THREADS, 1, 1), args)
        return hs, c_last

    def rnn_sequence_forward(self, xg: Array, w_hh: Array, b_hh: Array, h0: Array, mask: Array,
                             nonlinearity: str = "tanh") -> Array:
        """All ``T`` steps of an RNN layer in one launch: ``hs`` (T, B, H).

        Same result as looping ``cells.rnn_step_forward`` with ``hg = h_prev @ w_hh.T``;
        ``xg`` (T, B, H) includes ``b_ih``, ``mask`` is (T, B).
        """
        op = "rnn_sequence_forward"
        relu = self._relu_flag(op, nonlinearity)
        return self._sequence(op, "rnn_seq_fwd", 1, xg, w_hh, b_hh, h0, mask, None, relu)[0]

    def lstm_sequence_forward(self, xg: Array, w_hh: Array, b_hh: Array, h0: Array, c0: Array,
                              mask: Array) -> tuple[Array, Array]:
        """All steps of an LSTM layer in one launch: ``hs`` (T, B, H) and the last ``c`` (B, H)."""
        hs, c_last = self._sequence("lstm_sequence_forward", "lstm_seq_fwd", 4, xg, w_hh, b_hh,
                                    h0, mask, c0)
        return hs, c_last

    def gru_sequence_forward(self, xg: Array, w_hh: Array, b_hh: Array, h0: Array, mask: Array
                             ) -> Array:
        """All steps of a GRU layer in one launch: ``hs`` (T, B, H)."""
        return self._sequence("gru_sequence_forward", "gru_seq_fwd", 3, xg, w_hh, b_hh, h0,
                              mask)[0]


    # -- pooling (kernels/pool.cu: one launch per pass) -------------------------------------

    def pool_launch(self, kernel: str, arrays: tuple[Array, ...], x_shape: tuple[int, ...],
                    kernel_hw: Pair, stride: Pair, padding: Pair, out_hw: Pair, per_input: bool
                    ) -> None:
        """Launch ``kernel`` over every output (forward) or input (backward) element."""
        n, c, h, w = x_shape
        if h * w >= POOL_MAX_PLANE or max(a.size for a in arrays) > MAX_INT:
            raise ValueError(f"{kernel}: input {tuple(x_shape)} too large for the pooling kernels")
        total = n * c * (h * w if per_input else out_hw[0] * out_hw[1])
        if total == 0:
            return
        geom = (n * c, h, w, *out_hw, *kernel_hw, *stride, *padding)
        grid = (min(math.ceil(total / THREADS), CELL_BLOCKS), 1, 1)
        self.rt.launch("pool.cu", f"{kernel}_{SUFFIX[arrays[0].dtype]}", grid, (THREADS, 1, 1),
                       (*arrays, *(numpy.int32(v) for v in geom)))


class RawMaxPool:
    """``max_pool2d`` on kernels/pool.cu; the state is each window's flat argmax (array dtype)."""

    def __init__(self, ops: RawOps) -> None:
        self.ops = ops

    def forward(self, x: Array, kernel: Pair, stride: Pair, padding: Pair, out_hw: Pair, save: bool
                ) -> tuple[Array, Any]:
        dtype, (x,) = self.ops._arrays("max_pool2d", x=x)
        shape = (x.shape[0], x.shape[1], *out_hw)
        y, index = self.ops.rt.empty(shape, dtype), self.ops.rt.empty(shape, dtype)
        self.ops.pool_launch("max_pool_fwd", (x, y, index), x.shape, kernel, stride, padding,
                             out_hw, False)
        return y, ((index, kernel, stride, padding, out_hw) if save else None)

    def backward(self, gy: Array, state: Any, x_shape: tuple[int, ...]) -> Array:
        index, kernel, stride, padding, out_hw = state
        dtype, (gy, index) = self.ops._arrays("max_pool2d backward", gy=gy, index=index)
        gx = self.ops.rt.empty(tuple(x_shape), dtype)
        self.ops.pool_launch("max_pool_bwd", (gy, index, gx), tuple(x_shape), kernel, stride,
                             padding, out_hw, True)
        return gx


class RawAvgPool:
    """``avg_pool2d`` on kernels/pool.cu (zero padding counted, as the reference)."""

    def __init__(self, ops: RawOps) -> None:
        self.ops = ops

    def forward(self, x: Array, kernel: Pair, stride: Pair, padding: Pair, out_hw: Pair, save: bool
                ) -> tuple[Array, Any]:
        dtype, (x,) = self.ops._arrays("avg_pool2d", x=x)
        y = self.ops.rt.empty((x.shape[0], x.shape[1], *out_hw), dtype)
        self.ops.pool_launch("avg_pool_fwd", (x, y), x.shape, kernel, stride, padding, out_hw,
                             False)
        return y, ((kernel, stride, padding, out_hw) if save else None)

    def backward(self, gy: Array, state: Any, x_shape: tuple[int, ...]) -> Array:
        kernel, stride, padding, out_hw = state
        dtype, (gy,) = self.ops._arrays("avg_pool2d backward", gy=gy)
        gx = self.ops.rt.empty(tuple(x_shape), dtype)
        self.ops.pool_launch("avg_pool_bwd", (gy, gx), tuple(x_shape), kernel, stride, padding,
                             out_hw, True)
        return gx


_table: dict[str, Callable[..., Any]] | None = None
#: The probe's result (``None``: usable, else the reason) and the runtime it compiled, once per process.
_probe: dict[str, Any] = {}


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:200] if text else ''}".rstrip(": ")


def _sync_allowed(rt: Runtime) -> contextlib.AbstractContextManager[Any]:
    """``cupyx.allow_synchronize(True)`` on CuPy (the probe reads its result back), else nothing."""
    if not isinstance(rt, CupyRuntime):
        return contextlib.nullcontext()
    import cupyx

    return cupyx.allow_synchronize(True)


def probe(runtime: Runtime | None = None) -> str | None:
    """Compile every ``kernels/*.cu`` source and launch one tiny kernel (ReLU of 4 values),
    checking its result: ``None`` when that works, else why not (a compile or launch error)."""
    rt = runtime if runtime is not None else CupyRuntime()
    for source, kernels in KERNELS.items():
        try:
            if isinstance(rt, CupyRuntime):
                rt._function(source, f"{kernels[0]}_f32")
        except Exception as exc:  # NVRTC's CompileException, a missing symbol, a driver error
            return f"compiling kernels/{source} failed ({_first_line(exc)})"
    try:  # the one-time probe may sync even when it first runs inside cupyx.allow_synchronize(False)
        with _sync_allowed(rt):
            x = rt.xp.asarray(numpy.array([-1.0, 0.0, 1.0, 2.0], numpy.float32))
            y = RawOps(rt).table()["relu"].forward(x)[0]
            got = numpy.asarray(y.get() if hasattr(y, "get") else y)
    except Exception as exc:
        return f"launching a probe kernel failed ({_first_line(exc)})"
    if not numpy.array_equal(got, [0.0, 0.0, 1.0, 2.0]):
        return f"a probe kernel computed wrong values (relu([-1, 0, 1, 2]) gave {got.tolist()})"
    _probe["runtime"] = rt
    return None


def reset_probe() -> None:
    """Forget the probe and the launcher table (after the environment changed, in tests)."""
    global _table
    _probe.clear()
    _table = None


def unavailable_reason() -> str | None:
    """Why the raw CUDA kernels cannot run here, or None when they can: CuPy sees a GPU, the
    sources are found, and they compile and run (:func:`probe`, once per process)."""
    from gpunet.backend import gpu_status

    ok, why = gpu_status()
    if not ok:
        return why
    from gpunet.cuda.sources import kernel_path

    try:
        for source in KERNELS:
            kernel_path(source)
    except FileNotFoundError as exc:
        return str(exc)
    if "reason" not in _probe:
        _probe["reason"] = probe()
    return _probe["reason"]


def available() -> dict[str, Callable[..., Any]]:
    """``{op_name: launcher}`` when the kernels passed :func:`unavailable_reason`, else ``{}``."""
    global _table
    if unavailable_reason() is not None:
        return {}
    if _table is None:
        import cupy

        sms = cupy.cuda.Device().attributes["MultiProcessorCount"]
        _table = RawOps(_probe.get("runtime") or CupyRuntime(), target_blocks=2 * sms).table()
    return _table


def launcher(op: str) -> Callable[..., Any]:
    """The launcher of hot op ``op`` (the registry's entry; RuntimeError when unusable)."""
    table = available()
    if op not in table:
        raise RuntimeError(f"raw CUDA kernels: no usable launcher for {op}: {unavailable_reason()}")
    return table[op]


#: ``recurrent_inference`` on the raw kernels: one launch per layer while H <= SEQ_MAX_H.
SEQUENCE_INFERENCE = SequenceKernels("raw", SEQ_MAX_H)

__all__ = ["CELL_BLOCKS", "COMPILE_OPTIONS", "KERNELS", "MAX_GRID_Y", "MAX_INT", "MAX_SPLITS",
           "SEQ_MAX_H", "SUFFIX", "THREADS", "TILE", "TILE_K", "CupyRuntime", "RawOps",
           "Runtime", "available", "launcher", "probe", "reset_probe", "unavailable_reason"]
