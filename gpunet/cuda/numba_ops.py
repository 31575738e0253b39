"""numba.cuda implementations of the hot ops, on CuPy arrays, with the reference signatures.

Each launcher validates its arguments in Python (CuPy arrays, float32/float64 and matching,
consistent shapes: conv geometry by the shared :func:`gpunet.ops.conv2d.check_conv2d_geometry`),
copies non-contiguous inputs (as the raw launchers do), allocates outputs with CuPy, hands the buffers to numba
through ``__cuda_array_interface__`` and launches on CuPy's current stream. The kernels live in
:mod:`gpunet.cuda.numba_conv` and :mod:`gpunet.cuda.numba_cells`, whose ``launch`` functions
are the lower-level entry the simulator tests drive with NumPy arrays.

numba.cuda is imported only when a launcher runs or :func:`available` finds a GPU, so importing
this module is cheap and never selects numba's simulator or real target by itself.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from gpunet.backend import gpu_status, is_cupy_array
from gpunet.ops.conv2d import check_conv2d_geometry

Array = Any
Pair = tuple[int, int]
_DTYPES = ("float32", "float64")


# ------------------------------------------------------------------------------- validation
def _check(op: str, arrays: dict[str, Array]) -> str:
    """Validate kind and dtype of ``arrays`` for ``op`` and make each C-contiguous *in place in
    the dict* (a non-contiguous view, e.g. the zero-stride gradient of ``y.sum()``, is copied,
    as the raw launchers do); return their common dtype name."""
    dtype = None
    for name, a in arrays.items():
        if not is_cupy_array(a):
            raise TypeError(f"numba_ops.{op}: {name!r} must be a cupy.ndarray on the GPU, got "
                            f"{type(a).__module__}.{type(a).__name__} (move it with "
                            f"gpunet.backend.to_backend(a, 'cupy'))")
        if str(a.dtype) not in _DTYPES:
            raise TypeError(f"numba_ops.{op}: {name!r} must be float32 or float64, got {a.dtype}")
        if dtype is None:
            dtype = str(a.dtype)
        elif str(a.dtype) != dtype:
            raise TypeError(f"numba_ops.{op}: {name!r} is {a.dtype} but the other inputs are "
                            f"{dtype}; expected one dtype")
        if not a.flags.c_contiguous:
            arrays[name] = _cupy().ascontiguousarray(a)
    if dtype is None:
        raise ValueError(f"numba_ops.{op}: no arrays given")
    return dtype


def _shapes(op: str, arrays: dict[str, Array], want: dict[str, tuple[int, ...]]) -> None:
    """Raise unless ``arrays[name].shape == want[name]`` for every name in ``want``."""
    for name, shape in want.items():
        got = tuple(arrays[name].shape)
        if got != tuple(shape):
            raise ValueError(f"numba_ops.{op}: {name!r} has shape {got}, expected {tuple(shape)}")


def _dev(a: Array) -> Any:
    """A numba view of CuPy array ``a``. No stream sync: kernels run on CuPy's current stream,
    which already orders them after the work that produced ``a``."""
    from numba import cuda

    return cuda.as_cuda_array(a, sync=False)


def _stream() -> Any:
    import cupy
    from numba import cuda

    ptr = cupy.cuda.get_current_stream().ptr
    return cuda.external_stream(ptr) if ptr else cuda.default_stream()


def _cupy() -> Any:
    import cupy

    return cupy


# -------------------------------------------------------------------------------- convolution
def _conv_geometry(op: str, x_shape: tuple[int, ...], w_shape: tuple[int, ...], stride: Any,
                   padding: Any, dilation: Any, gy: Array | None = None) -> tuple[Pair, Pair, Pair, Pair]:
    """The shared check of :func:`gpunet.ops.conv2d.check_conv2d_geometry`:
    ``stride, padding, dilation, (out_h, out_w)``."""
    g = check_conv2d_geometry(f"numba_ops.{op}", x_shape, w_shape, stride, padding, dilation,
                              None if gy is None else gy.shape)
    return g.stride, g.padding, g.dilation, (g.out_h, g.out_w)


def conv2d_forward(x: Array, w: Array, stride: Pair, padding: Pair, dilation: Pair) -> Array:
    """numba.cuda :func:`gpunet.ops.conv2d.conv2d_forward`."""
    from gpunet.cuda import numba_conv

    op = "conv2d_forward"
    a = {"x": x, "w": w}
    dtype = _check(op, a)
    x, w = a["x"], a["w"]
    stride, padding, dilation, (ho, wo) = _conv_geometry(op, x.shape, w.shape, stride, padding,
                                                         dilation)
    y = _cupy().empty((x.shape[0], w.shape[0], ho, wo), dtype=dtype)
    g = numba_conv.geometry(x.shape, w.shape, (ho, wo), stride, padding, dilation, "forward")
    w2 = w.reshape(w.shape[0], math.prod(w.shape[1:]))
    numba_conv.launch("forward", _dev(x), _dev(w2), _dev(y), g, dtype, stream=_stream())
    return y


def conv2d_backward_input(gy: Array, w: Array, x_shape: tuple[int, ...], stride: Pair,
                          padding: Pair, dilation: Pair) -> Array:
    """numba.cuda :func:`gpunet.ops.conv2d.conv2d_backward_input`."""
    from gpunet.cuda import numba_conv

    op = "conv2d_backward_input"
    a = {"gy": gy, "w": w}
    dtype = _check(op, a)
    gy, w = a["gy"], a["w"]
    stride, padding, dilation, out_hw = _conv_geometry(op, x_shape, w.shape, stride, padding,
                                                       dilation, gy)
    x_shape = tuple(int(s) for s in x_shape)
    gx = _cupy().empty(x_shape, dtype=dtype)
    g = numba_conv.geometry(x_shape, w.shape, out_hw, stride, padding, dilation, "backward_input")
    numba_conv.launch("backward_input", _dev(gy), _dev(w), _dev(gx), g, dtype, stream=_stream())
    return gx


def conv2d_backward_weight(x: Array, gy: Array, w_shape: tuple[int, ...], stride: Pair,
                           padding: Pair, dilation: Pair) -> Array:
    """numba.cuda :func:`gpunet.ops.conv2d.conv2d_backward_weight`."""
    from gpunet.cuda import numba_conv

    op = "conv2d_backward_weight"
    a = {"x": x, "gy": gy}
    dtype = _check(op, a)
    x, gy = a["x"], a["gy"]
    stride, padding, dilation, out_hw = _conv_geometry(op, x.shape, w_shape, stride, padding,
                                                       dilation, gy)
    w_shape = tuple(int(s) for s in w_shape)
    gw = _cupy().empty(w_shape, dtype=dtype)
    g = numba_conv.geometry(x.shape, w_shape, out_hw, stride, padding, dilation,
                            "backward_weight")
    gw2 = gw.reshape(w_shape[0], math.prod(w_shape[1:]))
    numba_conv.launch("backward_weight", _dev(gy), _dev(x), _dev(gw2), g, dtype,
                      stream=_stream())
    return gw


# ------------------------------------------------------------------------------ recurrent cells
def _state(op: str, name: str, a: Array) -> tuple[int, int]:
    """``(B, H)`` from the 2-D state array ``a``."""
    if a.ndim != 2:
        raise ValueError(f"numba_ops.{op}: {name!r} must be 2-D (B, H), got shape {a.shape}")
    return int(a.shape[0]), int(a.shape[1])


def _step_inputs(op: str, arrays: dict[str, Array], gates: int) -> tuple[str, int, int]:
    """Check the forward-step inputs (xg, hg, b_hh, h_prev[, c_prev], mask), made contiguous in
    ``arrays``; ``dtype, B, H``."""
    dtype = _check(op, arrays)
    b, h = _state(op, "h_prev", arrays["h_prev"])
    want = {"xg": (b, gates * h), "hg": (b, gates * h), "b_hh": (gates * h,), "h_prev": (b, h),
            "c_prev": (b, h), "mask": (b,)}
    _shapes(op, arrays, {k: v for k, v in want.items() if k in arrays})
    return dtype, b, h


def _relu_flag(op: str, nonlinearity: str) -> int:
    if nonlinearity not in ("tanh", "relu"):
        raise ValueError(f"numba_ops.{op}: nonlinearity must be 'tanh' or 'relu', "
                         f"got {nonlinearity!r}")
    return int(nonlinearity == "relu")


def _run_cell(name: str, dtype: str, units: int, *arrays: Any) -> None:
    from gpunet.cuda import numba_cells

    args = [a if isinstance(a, int) else _dev(a) for a in arrays]
    numba_cells.launch(name, dtype, units, *args, stream=_stream())


def _outputs(op: str, out: tuple[Array, ...] | None, dtype: str, *shapes: tuple[int, ...]
             ) -> tuple[Array, ...]:
    """The caller's ``out`` arrays (checked: dtype, shape, C-contiguous), or fresh ones."""
    if out is None:
        return tuple(_cupy().empty(shape, dtype=dtype) for shape in shapes)
    for k, (arr, shape) in enumerate(zip(out, shapes)):
        if tuple(arr.shape) != tuple(shape) or str(arr.dtype) != dtype or not arr.flags.c_contiguous:
            raise ValueError(f"numba_ops.{op}: out[{k}] must be a C-contiguous {dtype} array of shape "
                             f"{tuple(shape)}, got {arr.dtype} {tuple(arr.shape)}")
    return tuple(out)


def rnn_step_forward(xg: Array, hg: Array, b_hh: Array, h_prev: Array, mask: Array,
                     nonlinearity: str = "tanh", out: tuple[Array] | None = None) -> Array:
    """numba.cuda :func:`gpunet.ops.cells.rnn_step_forward`."""
    op = "rnn_step_forward"
    relu = _relu_flag(op, nonlinearity)
    a = {"xg": xg, "hg": hg, "b_hh": b_hh, "h_prev": h_prev, "mask": mask}
    dtype, b, hidden = _step_inputs(op, a, 1)
    (h,) = _outputs(op, out, dtype, (b, hidden))
    _run_cell("rnn_forward", dtype, h.size, *a.values(), relu, h)
    return h


def rnn_step_backward(h: Array, dh: Array, mask: Array, nonlinearity: str = "tanh",
                      out: tuple[Array] | None = None) -> tuple[Array, Array, Array]:
    """numba.cuda :func:`gpunet.ops.cells.rnn_step_backward`."""
    op = "rnn_step_backward"
    relu = _relu_flag(op, nonlinearity)
    a = {"h": h, "dh": dh, "mask": mask}
    dtype = _check(op, a)
    b, hidden = _state(op, "h", a["h"])
    _shapes(op, a, {"dh": (b, hidden), "mask": (b,)})
    cp = _cupy()
    (dpre,) = _outputs(op, out, dtype, (b, hidden))
    carry = cp.empty((b, hidden), dtype=dtype)
    _run_cell("rnn_backward", dtype, dpre.size, *a.values(), relu, dpre, carry)
    return dpre, dpre, carry


def lstm_step_forward(xg: Array, hg: Array, b_hh: Array, h_prev: Array, c_prev: Array,
                      mask: Array, out: tuple[Array, Array, Array] | None = None
                      ) -> tuple[Array, Array, Array]:
    """numba.cuda :func:`gpunet.ops.cells.lstm_step_forward`."""
    op = "lstm_step_forward"
    a = {"xg": xg, "hg": hg, "b_hh": b_hh, "h_prev": h_prev, "c_prev": c_prev, "mask": mask}
    dtype, b, hidden = _step_inputs(op, a, 4)
    h, c, gates = _outputs(op, out, dtype, (b, hidden), (b, hidden), (b, 4 * hidden))
    _run_cell("lstm_forward", dtype, h.size, *a.values(), h, c, gates)
    return h, c, gates


def lstm_step_backward(gates: Array, c_prev: Array, c: Array, dh: Array, dc: Array,
                       mask: Array, out: tuple[Array] | None = None) -> tuple[Array, Array, Array, Array]:
    """numba.cuda :func:`gpunet.ops.cells.lstm_step_backward`."""
    op = "lstm_step_backward"
    a = {"gates": gates, "c_prev": c_prev, "c": c, "dh": dh, "dc": dc, "mask": mask}
    dtype = _check(op, a)
    b, hidden = _state(op, "c", a["c"])
    state = (b, hidden)
    _shapes(op, a, {"gates": (b, 4 * hidden), "c_prev": state, "dh": state, "dc": state,
                    "mask": (b,)})
    cp = _cupy()
    (dpre,) = _outputs(op, out, dtype, (b, 4 * hidden))
    carry, dc_prev = cp.empty(state, dtype=dtype), cp.empty(state, dtype=dtype)
    _run_cell("lstm_backward", dtype, carry.size, *a.values(), dpre, carry, dc_prev)
    return dpre, dpre, carry, dc_prev


def gru_step_forward(xg: Array, hg: Array, b_hh: Array, h_prev: Array, mask: Array,
                     out: tuple[Array, Array] | None = None) -> tuple[Array, Array]:
    """numba.cuda :func:`gpunet.ops.cells.gru_step_forward`."""
    op = "gru_step_forward"
    a = {"xg": xg, "hg": hg, "b_hh": b_hh, "h_prev": h_prev, "mask": mask}
    dtype, b, hidden = _step_inputs(op, a, 3)
    h, saved = _outputs(op, out, dtype, (b, hidden), (b, 4 * hidden))
    _run_cell("gru_forward", dtype, h.size, *a.values(), h, saved)
    return h, saved


def gru_step_backward(saved: Array, h_prev: Array, dh: Array, mask: Array,
                      out: tuple[Array, Array] | None = None) -> tuple[Array, Array, Array]:
    """numba.cuda :func:`gpunet.ops.cells.gru_step_backward`."""
    op = "gru_step_backward"
    a = {"saved": saved, "h_prev": h_prev, "dh": dh, "mask": mask}
    dtype = _check(op, a)
    b, hidden = _state(op, "h_prev", a["h_prev"])
    _shapes(op, a, {"saved": (b, 4 * hidden), "dh": (b, hidden), "mask": (b,)})
    cp = _cupy()
    dxg, dhg = _outputs(op, out, dtype, (b, 3 * hidden), (b, 3 * hidden))
    carry = cp.empty((b, hidden), dtype=dtype)
    _run_cell("gru_backward", dtype, carry.size, *a.values(), dxg, dhg, carry)
    return dxg, dhg, carry


# -------------------------------------------------------------------------------- pooling
def _pool_launch(op: str, name: str, arrays: dict[str, Array], x_shape: tuple[int, ...],
                 out_hw: Pair, per_input: bool, geo: tuple[Pair, Pair, Pair]) -> None:
    """Launch ``numba_pool`` kernel ``name`` on (N*C, H, W) views of ``arrays`` (in order)."""
    from gpunet.cuda import numba_pool

    n, c, h, w = x_shape
    if h * w >= 2**24:
        raise ValueError(f"numba_ops.{op}: input {tuple(x_shape)} too large for the pooling kernels")
    views = [a.reshape(n * c, *a.shape[2:]) for a in arrays.values()]
    units = n * c * (h * w if per_input else out_hw[0] * out_hw[1])
    ints = [int(v) for pair in geo for v in pair]
    numba_pool.launch(name, str(views[0].dtype), units, *(_dev(v) for v in views), *ints,
                      stream=_stream())


class NumbaMaxPool:
    """``max_pool2d`` on :mod:`gpunet.cuda.numba_pool`; the state is each window's flat argmax."""

    def forward(self, x: Array, kernel: Pair, stride: Pair, padding: Pair, out_hw: Pair, save: bool
                ) -> tuple[Array, Any]:
        a = {"x": x}
        dtype = _check("max_pool2d", a)
        shape = (a["x"].shape[0], a["x"].shape[1], *out_hw)
        y, index = _cupy().empty(shape, dtype=dtype), _cupy().empty(shape, dtype=dtype)
        _pool_launch("max_pool2d", "max_forward", {"x": a["x"], "y": y, "index": index},
                     a["x"].shape, out_hw, False, (kernel, stride, padding))
        return y, ((index, kernel, stride, padding, out_hw) if save else None)

    def backward(self, gy: Array, state: Any, x_shape: tuple[int, ...]) -> Array:
        index, kernel, stride, padding, out_hw = state
        a = {"gy": gy, "index": index}
        dtype = _check("max_pool2d backward", a)
        gx = _cupy().empty(tuple(x_shape), dtype=dtype)
        _pool_launch("max_pool2d", "max_backward", {**a, "gx": gx}, tuple(x_shape), out_hw, True,
                     (kernel, stride, padding))
        return gx


class NumbaAvgPool:
    """``avg_pool2d`` on :mod:`gpunet.cuda.numba_pool` (zero padding counted)."""

    def forward(self, x: Array, kernel: Pair, stride: Pair, padding: Pair, out_hw: Pair, save: bool
                ) -> tuple[Array, Any]:
        a = {"x": x}
        dtype = _check("avg_pool2d", a)
        y = _cupy().empty((a["x"].shape[0], a["x"].shape[1], *out_hw), dtype=dtype)
        _pool_launch("avg_pool2d", "avg_forward", {"x": a["x"], "y": y}, a["x"].shape, out_hw, False,
                     (kernel, stride, padding))
        return y, ((kernel, stride, padding, out_hw) if save else None)

    def backward(self, gy: Array, state: Any, x_shape: tuple[int, ...]) -> Array:
        kernel, stride, padding, out_hw = state
        a = {"gy": gy}
        dtype = _check("avg_pool2d backward", a)
        gx = _cupy().empty(tuple(x_shape), dtype=dtype)
        _pool_launch("avg_pool2d", "avg_backward", {**a, "gx": gx}, tuple(x_shape), out_hw, True,
                     (kernel, stride, padding))
        return gx


OPS: dict[str, Any] = {
    "max_pool2d": NumbaMaxPool(),
    "avg_pool2d": NumbaAvgPool(),
    "conv2d_forward": conv2d_forward,
    "conv2d_backward_input": conv2d_backward_input,
    "conv2d_backward_weight": conv2d_backward_weight,
    "rnn_step_forward": rnn_step_forward,
    "rnn_step_backward": rnn_step_backward,
    "lstm_step_forward": lstm_step_forward,
    "lstm_step_backward": lstm_step_backward,
    "gru_step_forward": gru_step_forward,
    "gru_step_backward": gru_step_backward,
}


def environment_reason() -> str | None:
    """Why numba.cuda cannot be used with CuPy here (no GPU, numba-cuda missing, the simulator),
    or None."""
    ok, why = gpu_status()
    if not ok:
        return why
    try:
        from numba import cuda
    except Exception as exc:  # numba-cuda missing or broken
        return f"numba.cuda failed to import ({type(exc).__name__}: {exc})"
    if cuda.config.ENABLE_CUDASIM:
        return "numba's CUDA simulator is enabled (NUMBA_ENABLE_CUDASIM=1); it cannot use CuPy arrays"
    if not cuda.is_available():
        return "numba.cuda sees no usable CUDA driver/device"
    return None


#: The probe's result (``None``: usable, else the reason), once per process.
_probe: dict[str, str | None] = {}


def probe() -> str | None:
    """Compile and launch one tiny numba.cuda kernel (max pooling of 4 values) on a CuPy array and check
    its result: ``None`` when that works, else why not."""
    try:  # max pooling of one 2 x 2 window; the one-time probe may sync inside allow_synchronize(False)
        import cupyx

        with cupyx.allow_synchronize(True):
            x = _cupy().asarray(np.array([[[[-1.0, 0.0], [1.0, 2.0]]]], np.float32))
            got = _cupy().asnumpy(OPS["max_pool2d"].forward(x, (2, 2), (2, 2), (0, 0), (1, 1), False)[0])
    except Exception as exc:  # a numba compile error, a CUDA launch error, an interop failure
        text = str(exc).strip().splitlines()
        return f"compiling or launching a probe kernel failed ({type(exc).__name__}: {text[0][:200] if text else ''})"
    if got.shape != (1, 1, 1, 1) or got.item() != 2.0:
        return f"a probe kernel computed wrong values (max of [-1, 0, 1, 2] gave {got.ravel().tolist()})"
    return None


def reset_probe() -> None:
    """Forget the probe (after the environment changed, in tests)."""
    _probe.clear()


def unavailable_reason() -> str | None:
    """Why the numba kernels cannot run here, or None when they can: the environment allows it
    (:func:`environment_reason`) and a tiny kernel compiles and runs (:func:`probe`, once)."""
    why = environment_reason()
    if why is not None:
        return why
    if "reason" not in _probe:
        _probe["reason"] = probe()
    return _probe["reason"]


def available() -> dict[str, Callable[..., Any]]:
    """``{op name: launcher}`` when CuPy has a GPU and numba.cuda can use it, else ``{}``."""
    return dict(OPS) if unavailable_reason() is None else {}


def launcher(op: str) -> Callable[..., Any]:
    """The launcher of hot op ``op`` (the registry's entry)."""
    return OPS[op]
