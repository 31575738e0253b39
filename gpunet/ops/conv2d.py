"""conv2d on raw ``xp`` arrays (NCHW, weight ``(C_out, C_in, kh, kw)``): the spec.

The reference implementation, the shared argument check, and the two implementation objects the
``conv2d`` Function runs (registered in :mod:`gpunet.ops.catalog`):

- :data:`IM2COL` (``numpy-ref`` and ``cupy``): im2col + GEMM, the columns kept for the weight
  gradient;
- :class:`KernelConv2d` (``raw``, ``numba``): the three hot ops ``conv2d_forward``,
  ``conv2d_backward_input`` and ``conv2d_backward_weight`` of one kernel implementation, which
  have exactly the signatures of the reference functions below.

``stride``, ``padding`` and ``dilation`` are ``(h, w)`` pairs of ints. NumPy runs the reference
on the CPU and CuPy runs the same code on the GPU (the ``kernels="cupy"`` reference).

Method: im2col into a contiguous ``(C_in*kh*kw, columns)`` matrix, then one 2-D GEMM. The input
is first copied to a zero-padded channel-first ``(C, N, Hp, Wp)`` array. With stride 1 the
columns are *wide*: output rows are computed ``Wp`` long (the extra ``Wp - out_w`` entries are
discarded), so every kernel tap is one contiguous run of ``out_h * Wp`` values per image and
both im2col and col2im move long contiguous blocks. Other strides use short strided rows (so
does the conv2d Function when no input gradient, hence no col2im, is needed: the GEMMs on
``out_w``-long rows are then cheaper than the faster wide copy saves).
"""

from __future__ import annotations

import numbers
from typing import Any, NamedTuple

from gpunet.autograd import OpError
from gpunet.backend import get_array_module
from gpunet.ops import registry

Array = Any
Pair = tuple[int, int]


def pair(value: int | tuple[int, int] | list[int], name: str, op: str, minimum: int = 1) -> Pair:
    """``value`` as an ``(h, w)`` pair of ints ``>= minimum`` (OpError otherwise)."""
    if type(value) is tuple and len(value) == 2 and type(value[0]) is int and type(value[1]) is int \
            and value[0] >= minimum and value[1] >= minimum:
        return value  # the common case, already checked (a layer's stored pair)
    if type(value) is int and value >= minimum:
        return value, value
    items = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    if len(items) != 2 or not all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in items):
        raise OpError(f"{op}: expected {name} as an int or a pair of ints, got {value!r}")
    items = (int(items[0]), int(items[1]))
    if any(v < minimum for v in items):
        raise OpError(f"{op}: expected {name} >= {minimum}, got {value!r}")
    return items  # type: ignore[return-value]


def output_size(size: int, kernel: int, stride: int, padding: int, dilation: int) -> int:
    """Length of one spatial output dimension."""
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


class ConvShape(NamedTuple):
    """A validated convolution: the ``(h, w)`` pairs and every size a launcher needs."""

    n: int
    c_in: int
    h: int
    w: int
    c_out: int
    kh: int
    kw: int
    out_h: int
    out_w: int
    stride: Pair
    padding: Pair
    dilation: Pair


def _shape4(op: str, name: str, shape: Any, layout: str) -> tuple[int, int, int, int]:
    try:
        dims = tuple(int(s) for s in shape)
    except (TypeError, ValueError):
        raise OpError(f"{op}: expected {name} of 4 dimensions {layout}, got shape {shape!r}") from None
    if len(dims) != 4:
        raise OpError(f"{op}: expected {name} of 4 dimensions {layout}, got shape {dims}")
    return dims  # type: ignore[return-value]


def check_conv2d_geometry(op: str, x_shape: Any, w_shape: Any, stride: Any, padding: Any, dilation: Any,
                          gy_shape: Any = None) -> ConvShape:
    """The one shape/geometry check of a convolution, shared by the ``conv2d`` Function and every
    kernel launcher (which keep only their own array-type and dtype checks).

    ``stride``/``dilation`` (``>= 1``) and ``padding`` (``>= 0``) are ints or ``(h, w)`` pairs;
    ``gy_shape``, when given, must be the output's shape. Raises :class:`OpError` (a ValueError)
    naming ``op``, what was expected and what it got.
    """
    n, c_in, h, w = _shape4(op, "input", x_shape, "(N, C, H, W)")
    c_out, c_w, kh, kw = _shape4(op, "weight", w_shape, "(C_out, C_in, kh, kw)")
    stride, padding, dilation = (pair(stride, "stride", op), pair(padding, "padding", op, 0),
                                 pair(dilation, "dilation", op))
    if c_w != c_in:
        raise OpError(f"{op}: weight {(c_out, c_w, kh, kw)} expects {c_w} input channels, got input "
                      f"{(n, c_in, h, w)} with {c_in}")
    out = (output_size(h, kh, stride[0], padding[0], dilation[0]),
           output_size(w, kw, stride[1], padding[1], dilation[1]))
    for name, size in (("output channels (weight dim 0)", c_out), ("input channels", c_w),
                       ("kernel height", kh), ("kernel width", kw)):
        if size <= 0:
            raise OpError(f"{op}: expected {name} >= 1, got {size} (weight {(c_out, c_w, kh, kw)})")
    if min(out) <= 0:
        raise OpError(f"{op}: output size must be positive, got {out} for input {(n, c_in, h, w)}, "
                      f"weight {(c_out, c_w, kh, kw)}, stride {stride}, padding {padding}, dilation {dilation}")
    if gy_shape is not None and tuple(int(s) for s in gy_shape) != (n, c_out, *out):
        raise OpError(f"{op}: expected 'gy' of shape {(n, c_out, *out)} (the output's), got "
                      f"{tuple(int(s) for s in gy_shape)}")
    return ConvShape(n, c_in, h, w, c_out, kh, kw, out[0], out[1], stride, padding, dilation)


def check_conv2d_inputs(x: Any, w: Any, b: Any, stride: Pair, padding: Pair, dilation: Pair) -> tuple[int, int]:
    """Raise OpError naming what is wrong with a conv2d call (expected vs got); return ``(out_h, out_w)``."""
    if x.ndim != 4:
        raise OpError(f"conv2d: expected input of 4 dimensions (N, C, H, W), got shape {x.shape}")
    if w.ndim != 4:
        raise OpError(f"conv2d: expected weight of 4 dimensions (C_out, C_in, kh, kw), got shape {w.shape}")
    if x.dtype.kind != "f" or w.dtype != x.dtype:
        raise OpError(f"conv2d: expected floating input and weight of the same dtype, got input "
                      f"{x.dtype} and weight {w.dtype}")
    geometry = check_conv2d_geometry("conv2d", x.shape, w.shape, stride, padding, dilation)
    if b is not None and (b.shape != (w.shape[0],) or b.dtype != x.dtype):
        raise OpError(f"conv2d: expected bias of shape ({w.shape[0]},) and dtype {x.dtype}, got "
                      f"{b.shape} {b.dtype}")
    return geometry.out_h, geometry.out_w


class Geometry:
    """Shapes of one convolution and the layout of its columns."""

    def __init__(self, x_shape: tuple[int, ...], kernel: Pair, stride: Pair, padding: Pair,
                 dilation: Pair, wide: bool = True) -> None:
        self.n, self.c, self.h, self.w = x_shape
        self.kernel, self.stride, self.padding, self.dilation = kernel, stride, padding, dilation
        self.hp, self.wp = self.h + 2 * padding[0], self.w + 2 * padding[1]
        self.out_h = output_size(self.h, kernel[0], stride[0], padding[0], dilation[0])
        self.out_w = output_size(self.w, kernel[1], stride[1], padding[1], dilation[1])
        self.wide = wide and tuple(stride) == (1, 1)
        self.row = self.wp if self.wide else self.out_w  # length of one output row in the columns
        self.slack = (kernel[1] - 1) * dilation[1] if self.wide else 0  # the last tap reads past Hp*Wp

    @property
    def taps(self) -> list[tuple[int, int, int]]:
        """``(p, q, offset)`` per kernel tap; ``offset`` is its start in the flattened image."""
        (dh, dw), wp = self.dilation, self.wp
        return [(p, q, p * dh * wp + q * dw) for p in range(self.kernel[0]) for q in range(self.kernel[1])]


def _padded_cnhw(x: Array, g: Geometry) -> Array:
    """``x`` as a zero-padded ``(C, N, Hp*Wp + slack)`` array."""
    xp = get_array_module(x)
    ph, pw = g.padding
    flat = xp.empty((g.c, g.n, g.hp * g.wp + g.slack), dtype=x.dtype)
    if ph or pw or g.slack:
        flat[...] = 0
    flat[:, :, :g.hp * g.wp].reshape(g.c, g.n, g.hp, g.wp)[:, :, ph:ph + g.h, pw:pw + g.w] = \
        x.transpose(1, 0, 2, 3)
    return flat


def im2col(x: Array, g: Geometry) -> Array:
    """Columns ``(C*kh*kw, N*out_h*row)`` (C-contiguous) of the padded input windows."""
    xp = get_array_module(x)
    flat = _padded_cnhw(x, g)
    (kh, kw), (dh, dw), (sh, sw) = g.kernel, g.dilation, g.stride
    s_c, s_n, item = flat.strides
    if g.wide:
        shape = (g.c, kh, kw, g.n, g.out_h * g.wp)
        strides = (s_c, dh * g.wp * item, dw * item, s_n, item)
    else:
        shape = (g.c, kh, kw, g.n, g.out_h, g.out_w)
        strides = (s_c, dh * g.wp * item, dw * item, s_n, sh * g.wp * item, sw * item)
    cols = xp.empty(shape, dtype=x.dtype)
    cols[...] = xp.lib.stride_tricks.as_strided(flat, shape=shape, strides=strides)
    return cols.reshape(g.c * kh * kw, g.n * g.out_h * g.row)


def col2im(cols: Array, g: Geometry) -> Array:
    """Scatter-add columns from :func:`im2col`'s layout back to an NCHW input-shaped array."""
    xp = get_array_module(cols)
    (kh, kw), (sh, sw), (ph, pw) = g.kernel, g.stride, g.padding
    flat = xp.zeros((g.c, g.n, g.hp * g.wp + g.slack), dtype=cols.dtype)
    taps = cols.reshape(g.c, kh, kw, g.n, g.out_h * g.row)
    image = flat[:, :, :g.hp * g.wp].reshape(g.c, g.n, g.hp, g.wp)
    for p, q, offset in g.taps:
        if g.wide:
            flat[:, :, offset:offset + g.out_h * g.wp] += taps[:, p, q]
        else:
            r0, c0 = p * g.dilation[0], q * g.dilation[1]
            image[:, :, r0:r0 + sh * (g.out_h - 1) + 1:sh, c0:c0 + sw * (g.out_w - 1) + 1:sw] += \
                taps[:, p, q].reshape(g.c, g.n, g.out_h, g.out_w)
    return xp.ascontiguousarray(image[:, :, ph:ph + g.h, pw:pw + g.w].transpose(1, 0, 2, 3))


def gy_rows(gy: Array, g: Geometry) -> Array:
    """``gy`` (N, C_out, out_h, out_w) as ``(C_out, N*out_h*row)`` in the columns' layout
    (zeros in the discarded entries of wide rows)."""
    xp = get_array_module(gy)
    c_out = gy.shape[1]
    rows = xp.empty((c_out, g.n, g.out_h, g.row), dtype=gy.dtype)
    if g.row != g.out_w:
        rows[:, :, :, g.out_w:] = 0
    rows[:, :, :, :g.out_w] = gy.transpose(1, 0, 2, 3)
    return rows.reshape(c_out, -1)


def forward_from_cols(cols: Array, w: Array, g: Geometry, bias: Array | None = None) -> Array:
    """The convolution output (NCHW, contiguous) from :func:`im2col` columns, plus ``bias``
    (added while the output is copied to NCHW)."""
    xp = get_array_module(cols, w)
    c_out = w.shape[0]
    y = xp.matmul(xp.ascontiguousarray(w).reshape(c_out, -1), cols)
    y = y.reshape(c_out, g.n, g.out_h, g.row)[:, :, :, :g.out_w].transpose(1, 0, 2, 3)
    if bias is None:
        return xp.ascontiguousarray(y)
    out = xp.empty((g.n, c_out, g.out_h, g.out_w), dtype=y.dtype)
    return xp.add(y, bias.reshape(1, c_out, 1, 1), out=out)


def backward_weight_from_cols(cols: Array, rows: Array, w_shape: tuple[int, ...]) -> Array:
    """The weight gradient ``(C_out, C_in, kh, kw)`` from :func:`im2col` columns and
    :func:`gy_rows` of the output gradient."""
    return get_array_module(cols, rows).matmul(rows, cols.T).reshape(tuple(w_shape))


def backward_input_from_rows(rows: Array, w: Array, g: Geometry) -> Array:
    """The input gradient (NCHW) from :func:`gy_rows` of the output gradient."""
    xp = get_array_module(rows, w)
    return col2im(xp.matmul(xp.ascontiguousarray(w).reshape(w.shape[0], -1).T, rows), g)


def conv2d_forward(x: Array, w: Array, stride: Pair, padding: Pair, dilation: Pair) -> Array:
    """``y[n, o, i, j] = sum_{c,p,q} x_pad[n, c, i*s0 + p*d0, j*s1 + q*d1] * w[o, c, p, q]``."""
    g = Geometry(x.shape, w.shape[2:], stride, padding, dilation)
    return forward_from_cols(im2col(x, g), w, g)


def conv2d_backward_weight(x: Array, gy: Array, w_shape: tuple[int, ...], stride: Pair,
                           padding: Pair, dilation: Pair) -> Array:
    """Gradient w.r.t. the weight: ``(C_out, C_in, kh, kw)``."""
    g = Geometry(x.shape, tuple(w_shape[2:]), stride, padding, dilation)
    return backward_weight_from_cols(im2col(x, g), gy_rows(gy, g), w_shape)


def conv2d_backward_input(gy: Array, w: Array, x_shape: tuple[int, ...], stride: Pair,
                          padding: Pair, dilation: Pair) -> Array:
    """Gradient w.r.t. the input: ``x_shape``; scatters each kernel tap back (col2im)."""
    g = Geometry(tuple(x_shape), w.shape[2:], stride, padding, dilation)
    return backward_input_from_rows(gy_rows(gy, g), w, g)


# ----------------------------------------------------------------- implementation objects
Needs = tuple[bool, bool, bool]


class Im2colConv2d:
    """The reference as the Function runs it: the im2col columns of the forward pass are kept
    for the weight gradient, and the output gradient is laid out once for both gradients.
    Wide columns (see :class:`Geometry`) only when an input gradient (col2im) will be needed."""

    def forward(self, x: Array, w: Array, b: Array | None, stride: Pair, padding: Pair, dilation: Pair,
                save: bool, need_x_grad: bool) -> tuple[Array, Any]:
        g = Geometry(x.shape, w.shape[2:], stride, padding, dilation, wide=save and need_x_grad)
        cols = im2col(x, g)
        return forward_from_cols(cols, w, g, b), ((cols, w, g) if save else None)

    def backward(self, gy: Array, state: Any, needs: Needs) -> tuple[Array | None, Array | None, Array | None]:
        cols, w, g = state
        rows = gy_rows(gy, g)
        gx = backward_input_from_rows(rows, w, g) if needs[0] else None
        gw = backward_weight_from_cols(cols, rows, w.shape) if needs[1] else None
        return gx, gw, (rows.sum(axis=1) if needs[2] else None)


class KernelConv2d:
    """conv2d over the three hot ops of kernel implementation ``impl`` (found in the registry)."""

    def __init__(self, impl: str) -> None:
        self.impl = impl

    def _op(self, name: str) -> Any:
        return registry.get(name, self.impl).load()

    def forward(self, x: Array, w: Array, b: Array | None, stride: Pair, padding: Pair, dilation: Pair,
                save: bool, need_x_grad: bool) -> tuple[Array, Any]:
        y = self._op("conv2d_forward")(x, w, stride, padding, dilation)
        if b is not None:
            y += b.reshape(1, -1, 1, 1)
        return y, ((x, w, (stride, padding, dilation)) if save else None)

    def backward(self, gy: Array, state: Any, needs: Needs) -> tuple[Array | None, Array | None, Array | None]:
        x, w, args = state
        gx = self._op("conv2d_backward_input")(gy, w, x.shape, *args) if needs[0] else None
        gw = self._op("conv2d_backward_weight")(x, gy, w.shape, *args) if needs[1] else None
        return gx, gw, (gy.sum(axis=(0, 2, 3)) if needs[2] else None)


IM2COL = Im2colConv2d()
RAW = KernelConv2d("raw")
NUMBA = KernelConv2d("numba")
