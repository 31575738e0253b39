"""Test cases and comparisons shared by the emulated, mutation and GPU tests of raw_ops.

Each ``check_*`` runs kernel ops on inputs placed by ``put`` (guarded NumPy arrays in the
emulator, CuPy arrays on a GPU), brings results back with ``get`` and asserts they match the
NumPy reference (``conv_impl`` / ``cells``); a mismatch raises AssertionError.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy

from gpunet.ops import cells
from gpunet.ops import conv2d as conv_impl

Put = Callable[[numpy.ndarray], Any]
Get = Callable[[Any], numpy.ndarray]


class Conv(NamedTuple):
    x: tuple[int, int, int, int]
    w: tuple[int, int, int, int]
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    dilation: tuple[int, int] = (1, 1)


# Tile is 64 (m) x 64 (n) x 16 (k): the cases cover partial tiles in every dimension.
CONV_CASES = {
    "3x3_pad1_edge_m_k": Conv((2, 3, 7, 6), (5, 3, 3, 3), (1, 1), (1, 1)),
    "stride_asym_pad": Conv((1, 2, 9, 8), (4, 2, 3, 2), (2, 3), (1, 0)),
    "dilation_pad": Conv((2, 2, 8, 9), (3, 2, 3, 3), (1, 2), (2, 1), (2, 3)),
    "cout_over_tile": Conv((1, 2, 4, 5), (70, 2, 1, 1)),
    "cin_over_tile": Conv((1, 66, 3, 3), (3, 66, 2, 2), (1, 1), (1, 0)),
    "stride_gt_kernel": Conv((1, 3, 10, 10), (2, 3, 2, 2), (3, 3)),
    "1x1_stride2": Conv((3, 4, 5, 5), (6, 4, 1, 1), (2, 2)),
    "long_reduction": Conv((4, 2, 12, 11), (3, 2, 3, 3), (1, 1), (1, 1)),
}

CELL_SHAPES = {"small": (5, 7), "two_blocks": (3, 100)}


def tolerances(dtype: Any) -> dict[str, float]:
    return {"rtol": 1e-10, "atol": 1e-12} if numpy.dtype(dtype) == numpy.float64 else \
        {"rtol": 2e-5, "atol": 2e-5}


def _close(name: str, got: numpy.ndarray, want: numpy.ndarray, dtype: Any, scale: float = 1.0
           ) -> None:
    assert got.dtype == want.dtype, f"{name}: dtype {got.dtype} != {want.dtype}"
    tol = {k: v * scale for k, v in tolerances(dtype).items()}
    numpy.testing.assert_allclose(got, want, err_msg=name, **tol)


def check_conv(ops: dict[str, Any], case: Conv, dtype: Any, put: Put, get: Get,
               seed: int = 0) -> None:
    """conv2d forward, backward-input and backward-weight against conv_impl."""
    rng = numpy.random.default_rng(seed)
    x = rng.standard_normal(case.x).astype(dtype)
    w = rng.standard_normal(case.w).astype(dtype)
    geo = (case.stride, case.padding, case.dilation)
    y_ref = conv_impl.conv2d_forward(x, w, *geo)
    gy = rng.standard_normal(y_ref.shape).astype(dtype)
    _close("conv2d_forward", get(ops["conv2d_forward"](put(x), put(w), *geo)), y_ref, dtype)
    gx = ops["conv2d_backward_input"](put(gy), put(w), x.shape, *geo)
    _close("conv2d_backward_input", get(gx),
           conv_impl.conv2d_backward_input(gy, w, x.shape, *geo), dtype)
    gw = ops["conv2d_backward_weight"](put(x), put(gy), w.shape, *geo)
    _close("conv2d_backward_weight", get(gw),
           conv_impl.conv2d_backward_weight(x, gy, w.shape, *geo), dtype)


def _mask(batch: int, dtype: Any) -> numpy.ndarray:
    """Mixed 0/1 mask with both values present."""
    return (numpy.arange(batch) % 3 != 1).astype(dtype)


def _rand(rng: numpy.random.Generator, shape: tuple[int, ...], dtype: Any) -> numpy.ndarray:
    return (1.5 * rng.standard_normal(shape)).astype(dtype)


def _compare(name: str, got: tuple, want: tuple, dtype: Any, get: Get) -> None:
    assert len(got) == len(want), name
    for k, (g, r) in enumerate(zip(got, want)):
        _close(f"{name}[{k}]", get(g), r, dtype)


def check_rnn(ops: dict[str, Any], batch: int, hidden: int, nonlinearity: str, dtype: Any,
              put: Put, get: Get, seed: int = 0) -> None:
    """rnn_step_forward / rnn_step_backward against cells."""
    rng = numpy.random.default_rng(seed)
    xg, hg = _rand(rng, (batch, hidden), dtype), _rand(rng, (batch, hidden), dtype)
    b, hp = _rand(rng, (hidden,), dtype), _rand(rng, (batch, hidden), dtype)
    m = _mask(batch, dtype)
    h_ref = cells.rnn_step_forward(xg, hg, b, hp, m, nonlinearity)
    h = ops["rnn_step_forward"](put(xg), put(hg), put(b), put(hp), put(m), nonlinearity)
    _close("rnn_step_forward", get(h), h_ref, dtype)
    dh = _rand(rng, (batch, hidden), dtype)
    got = ops["rnn_step_backward"](put(h_ref), put(dh), put(m), nonlinearity)
    assert got[0] is got[1], "rnn_step_backward: dxg must be dhg, as in the reference"
    _compare("rnn_step_backward", got, cells.rnn_step_backward(h_ref, dh, m, nonlinearity),
             dtype, get)


def check_lstm(ops: dict[str, Any], batch: int, hidden: int, dtype: Any, put: Put, get: Get,
               seed: int = 0) -> None:
    """lstm_step_forward / lstm_step_backward against cells."""
    rng = numpy.random.default_rng(seed)
    g4 = (batch, 4 * hidden)
    xg, hg, b = _rand(rng, g4, dtype), _rand(rng, g4, dtype), _rand(rng, (4 * hidden,), dtype)
    hp, cp = _rand(rng, (batch, hidden), dtype), _rand(rng, (batch, hidden), dtype)
    m = _mask(batch, dtype)
    want = cells.lstm_step_forward(xg, hg, b, hp, cp, m)
    got = ops["lstm_step_forward"](put(xg), put(hg), put(b), put(hp), put(cp), put(m))
    _compare("lstm_step_forward", got, want, dtype, get)
    _, c, gates = want
    dh, dc = _rand(rng, (batch, hidden), dtype), _rand(rng, (batch, hidden), dtype)
    got = ops["lstm_step_backward"](put(gates), put(cp), put(c), put(dh), put(dc), put(m))
    assert got[0] is got[1], "lstm_step_backward: dxg must be dhg, as in the reference"
    _compare("lstm_step_backward", got, cells.lstm_step_backward(gates, cp, c, dh, dc, m),
             dtype, get)


def check_gru(ops: dict[str, Any], batch: int, hidden: int, dtype: Any, put: Put, get: Get,
              seed: int = 0) -> None:
    """gru_step_forward / gru_step_backward against cells."""
    rng = numpy.random.default_rng(seed)
    g3 = (batch, 3 * hidden)
    xg, hg, b = _rand(rng, g3, dtype), _rand(rng, g3, dtype), _rand(rng, (3 * hidden,), dtype)
    hp, m = _rand(rng, (batch, hidden), dtype), _mask(batch, dtype)
    want = cells.gru_step_forward(xg, hg, b, hp, m)
    got = ops["gru_step_forward"](put(xg), put(hg), put(b), put(hp), put(m))
    _compare("gru_step_forward", got, want, dtype, get)
    dh = _rand(rng, (batch, hidden), dtype)
    got = ops["gru_step_backward"](put(want[1]), put(hp), put(dh), put(m))
    _compare("gru_step_backward", got, cells.gru_step_backward(want[1], hp, dh, m), dtype, get)


SEQ_GATES = {"rnn_tanh": 1, "rnn_relu": 1, "lstm": 4, "gru": 3}


def check_sequence(raw: Any, cell: str, steps: int, batch: int, hidden: int, dtype: Any,
                   put: Put, get: Get, seed: int = 0) -> None:
    """``raw.<cell>_sequence_forward`` against a loop of cells steps with ``hg = h @ W_hh.T``."""
    rng = numpy.random.default_rng(seed)
    gh = SEQ_GATES[cell] * hidden
    xg = _rand(rng, (steps, batch, gh), dtype)
    w = (rng.standard_normal((gh, hidden)) / numpy.sqrt(hidden)).astype(dtype)
    b, h0, c0 = _rand(rng, (gh,), dtype), _rand(rng, (batch, hidden), dtype), \
        _rand(rng, (batch, hidden), dtype)
    lengths = (steps - 2 * numpy.arange(batch)) % (steps + 1)  # full, shorter, 0: mixed
    mask = (numpy.arange(steps)[:, None] < lengths[None, :]).astype(dtype)
    h, c, want = h0, c0, []
    for t in range(steps):
        hg = h @ w.T
        if cell.startswith("rnn"):
            h = cells.rnn_step_forward(xg[t], hg, b, h, mask[t], cell[4:])
        elif cell == "lstm":
            h, c, _ = cells.lstm_step_forward(xg[t], hg, b, h, c, mask[t])
        else:
            h, _ = cells.gru_step_forward(xg[t], hg, b, h, mask[t])
        want.append(h)
    want_hs = numpy.stack(want) if want else numpy.empty((0, batch, hidden), dtype)
    if cell.startswith("rnn"):
        got = raw.rnn_sequence_forward(put(xg), put(w), put(b), put(h0), put(mask), cell[4:])
    elif cell == "lstm":
        got, c_last = raw.lstm_sequence_forward(put(xg), put(w), put(b), put(h0), put(c0),
                                                put(mask))
        _close("lstm_sequence_forward c_last", get(c_last), c, dtype, scale=5)
    else:
        got = raw.gru_sequence_forward(put(xg), put(w), put(b), put(h0), put(mask))
    # scale: H-term dot products summed in another order than BLAS, over several steps
    _close(f"{cell}_sequence_forward", get(got), want_hs, dtype, scale=5)
