"""One case table per hot op, and the comparisons every implementation is held to.

The tables here are the only conv / cell / sequence / recurrent / pooling case tables of the
test suite: ``tests/ops`` runs them on every implementation through the ``impl`` fixture, and
the kernel-specific tests (``tests/kernels``: emulator schedules and split-K, mutation tests,
numba tile shapes) and ``tests/functional/test_conv.py`` import them (put ``tests/ops`` on
``sys.path`` and ``import cases``).

Each ``check_*`` runs one implementation's ops (``ops[name]`` is the op's callable) on inputs
placed by ``put`` (guarded NumPy arrays in the emulator, CuPy arrays on a GPU, plain copies on
the CPU), brings results back with ``get`` and asserts they equal the NumPy reference
(``numpy-ref``: :mod:`gpunet.ops.conv2d`, :mod:`gpunet.ops.cells`, ...), saved buffers included;
a mismatch raises AssertionError (the mutation tests rely on that).

**Tiers.** Every case has a tier: ``tiny`` runs on every implementation (the numba CUDA
simulator runs 256 Python threads per block, so it only gets these), ``small`` also skips the
simulator but runs on the raw-kernel CPU emulator, ``large`` runs only on NumPy and real GPUs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import numpy

from gpunet.ops import cells, pool
from gpunet.ops import conv2d as conv_impl
from gpunet.ops import recurrent as rec

Put = Callable[[numpy.ndarray], Any]
Get = Callable[[Any], numpy.ndarray]
Ops = Mapping[str, Callable[..., Any]]

TIERS = ("tiny", "small", "large")
DTYPES = (numpy.float32, numpy.float64)


def up_to(table: Mapping[str, Any], tier: str) -> dict[str, Any]:
    """The cases of ``table`` whose tier is at most ``tier``."""
    limit = TIERS.index(tier)
    return {name: case for name, case in table.items() if TIERS.index(case.tier) <= limit}


# ------------------------------------------------------------------------------ comparisons
def tolerances(dtype: Any) -> dict[str, float]:
    return {"rtol": 1e-10, "atol": 1e-12} if numpy.dtype(dtype) == numpy.float64 else \
        {"rtol": 2e-5, "atol": 2e-5}


def assert_close(name: str, got: numpy.ndarray, want: numpy.ndarray, dtype: Any, scale: float = 1.0,
                 contiguous: bool = False) -> None:
    """``got`` equals ``want`` in dtype and shape, and in value to the dtype's tolerance
    (``atol`` relative to the largest ``|want|`` when that exceeds 1: long reductions);
    ``contiguous``: ``got`` is C-contiguous too (hot-op outputs, which the loops write into)."""
    assert got.dtype == want.dtype, f"{name}: dtype {got.dtype} != {want.dtype}"
    assert not contiguous or got.flags.c_contiguous, f"{name}: output not C-contiguous"
    assert got.shape == want.shape, f"{name}: shape {got.shape} != {want.shape}"
    tol = {k: v * scale for k, v in tolerances(dtype).items()}
    tol["atol"] *= max(1.0, float(numpy.abs(want).max(initial=0.0)))
    numpy.testing.assert_allclose(got, want, err_msg=name, **tol)


def _compare(name: str, got: tuple, want: tuple, dtype: Any, get: Get, contiguous: bool = False) -> None:
    assert len(got) == len(want), name
    for k, (g, r) in enumerate(zip(got, want)):
        assert (g is None) == (r is None), f"{name}[{k}]: None where the reference has an array or back"
        if r is not None:
            assert_close(f"{name}[{k}]", get(g), r, dtype, contiguous=contiguous)


def _rand(rng: numpy.random.Generator, shape: tuple[int, ...], dtype: Any, scale: float = 1.5) -> numpy.ndarray:
    return (scale * rng.standard_normal(shape)).astype(dtype)


# -------------------------------------------------------------------------------- conv2d
class Conv(NamedTuple):
    x: tuple[int, int, int, int]          # (N, C_in, H, W)
    w: tuple[int, int, int, int]          # (C_out, C_in, kh, kw)
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    dilation: tuple[int, int] = (1, 1)
    tier: str = "small"

    @property
    def geometry(self) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int]]:
        return self.stride, self.padding, self.dilation


# The raw tile is 64 (m) x 64 (n) x 16 (k), numba's 64 x 64 x 8 (the simulator tests also use
# 8 x 8 x 4 and 16 x 8 x 2): the cases cover partial tiles in every dimension, strides larger
# than the kernel, asymmetric stride/padding/dilation, 1x1 and whole-image kernels.
CONV_CASES: dict[str, Conv] = {
    # edge tiles of the raw kernels (also the mutation tests' cases)
    "3x3_pad1_edge_m_k": Conv((2, 3, 7, 6), (5, 3, 3, 3), (1, 1), (1, 1)),
    "stride_asym_pad": Conv((1, 2, 9, 8), (4, 2, 3, 2), (2, 3), (1, 0)),
    "dilation_pad": Conv((2, 2, 8, 9), (3, 2, 3, 3), (1, 2), (2, 1), (2, 3)),
    "cout_over_tile": Conv((1, 2, 4, 5), (70, 2, 1, 1)),
    "cin_over_tile": Conv((1, 66, 3, 3), (3, 66, 2, 2), (1, 1), (1, 0)),
    "stride_gt_kernel": Conv((1, 3, 10, 10), (2, 3, 2, 2), (3, 3)),
    "1x1_stride2": Conv((3, 4, 5, 5), (6, 4, 1, 1), (2, 2)),
    "long_reduction": Conv((4, 2, 12, 11), (3, 2, 3, 3), (1, 1), (1, 1)),
    # the numba kernels' tile edges (test_numba_sim runs these with small tile shapes)
    "ragged_k3x2_s12_d12": Conv((2, 3, 5, 6), (5, 3, 3, 2), (1, 2), (1, 0), (1, 2), "tiny"),
    "s2_p1_k3": Conv((1, 2, 7, 7), (3, 2, 3, 3), (2, 2), (1, 1), (1, 1), "tiny"),
    "s23_p21_d21": Conv((2, 2, 7, 8), (3, 2, 2, 3), (2, 3), (2, 1), (2, 1)),
    "1x1_s2_k_not_tile": Conv((3, 5, 3, 4), (2, 5, 1, 1), (2, 2)),
    "k3_p1": Conv((2, 3, 5, 5), (4, 3, 3, 3), (1, 1), (1, 1), (1, 1)),
    "s21_p01_d23": Conv((1, 2, 9, 6), (3, 2, 2, 2), (2, 1), (0, 1), (2, 3)),
    # the Function's cases (test_conv.py checks the Function against the direct definition)
    "valid_3x3": Conv((2, 3, 7, 7), (4, 3, 3, 3)),
    "same_3x3": Conv((2, 3, 7, 9), (4, 3, 3, 3), (1, 1), (1, 1)),
    "s2_k3x2_p10": Conv((1, 2, 8, 8), (3, 2, 3, 2), (2, 2), (1, 0)),
    "s21_k2x3_p02": Conv((3, 1, 9, 7), (2, 1, 2, 3), (2, 1), (0, 2)),
    "d2_p2": Conv((2, 2, 10, 10), (2, 2, 3, 3), (1, 1), (2, 2), (2, 2)),
    "s32_p1_d23": Conv((2, 2, 11, 9), (3, 2, 3, 2), (3, 2), (1, 1), (2, 3)),
    "1x1": Conv((1, 4, 5, 5), (5, 4, 1, 1)),
    "kernel_is_image": Conv((2, 1, 6, 6), (1, 1, 6, 6)),
    "5x5_pad2": Conv((2, 3, 6, 6), (2, 3, 5, 5), (1, 1), (2, 2)),
    "lenet_c1_32": Conv((4, 1, 32, 32), (6, 1, 5, 5), tier="large"),
    # many tiles in every dimension (real GPUs)
    "lenet_c1": Conv((8, 1, 28, 28), (6, 1, 5, 5), (1, 1), (2, 2), tier="large"),
    "ragged_tiles": Conv((3, 7, 13, 11), (65, 7, 3, 3), (1, 1), (1, 1), tier="large"),
    "stride2_dil2": Conv((2, 5, 17, 19), (9, 5, 3, 2), (2, 3), (1, 2), (2, 1), "large"),
    "1x1_stride2_wide": Conv((4, 33, 9, 9), (17, 33, 1, 1), (2, 2), tier="large"),
    "big_k_reduction": Conv((2, 64, 8, 8), (70, 64, 3, 3), (1, 1), (1, 1), tier="large"),
    "realistic": Conv((8, 32, 30, 29), (96, 32, 3, 3), (2, 1), (1, 1), (1, 2), "large"),
}


def conv2d_definition(x, w, b, stride, padding, dilation):
    """Direct definition: y[n,o,i,j] = b[o] + sum x_pad[n,c,i*s+p*d, j*s+q*d] w[o,c,p,q]."""
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    n, c, h, wd = x.shape
    c_out, _, kh, kw = w.shape
    xp = numpy.zeros((n, c, h + 2 * ph, wd + 2 * pw))
    xp[:, :, ph:ph + h, pw:pw + wd] = x
    oh = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    ow = (wd + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    y = numpy.zeros((n, c_out, oh, ow))
    for i in range(oh):
        for j in range(ow):
            for p in range(kh):
                for q in range(kw):
                    patch = xp[:, :, i * sh + p * dh, j * sw + q * dw]  # (n, c)
                    y[:, :, i, j] += patch @ w[:, :, p, q].T
    if b is not None:
        y += b[None, :, None, None]
    return y


def check_conv(ops: Ops, case: Conv, dtype: Any, put: Put, get: Get, seed: int = 0) -> None:
    """conv2d forward, backward-input and backward-weight against the reference."""
    rng = numpy.random.default_rng(seed)
    x = rng.standard_normal(case.x).astype(dtype)
    w = rng.standard_normal(case.w).astype(dtype)
    geo = case.geometry
    y_ref = conv_impl.conv2d_forward(x, w, *geo)
    gy = rng.standard_normal(y_ref.shape).astype(dtype)
    assert_close("conv2d_forward", get(ops["conv2d_forward"](put(x), put(w), *geo)), y_ref, dtype, contiguous=True)
    gx = ops["conv2d_backward_input"](put(gy), put(w), x.shape, *geo)
    assert_close("conv2d_backward_input", get(gx), conv_impl.conv2d_backward_input(gy, w, x.shape, *geo), dtype,
                 contiguous=True)
    gw = ops["conv2d_backward_weight"](put(x), put(gy), w.shape, *geo)
    assert_close("conv2d_backward_weight", get(gw), conv_impl.conv2d_backward_weight(x, gy, w.shape, *geo), dtype,
                 contiguous=True)


# -------------------------------------------------------------------------- recurrent cells
class Cell(NamedTuple):
    batch: int
    hidden: int
    tier: str = "small"


CELL_CASES: dict[str, Cell] = {
    "tiny": Cell(3, 5, "tiny"),              # rows running, finished, running
    "small": Cell(5, 7, "tiny"),
    "two_blocks": Cell(3, 100),              # B*H over one 256-thread block
    "ragged": Cell(37, 70, "large"),         # B*H not a multiple of the block size
    "wide": Cell(64, 512, "large"),
}
CELLS = ("rnn_tanh", "rnn_relu", "lstm", "gru")


def mask_with_finished_rows(batch: int, dtype: Any) -> numpy.ndarray:
    """Mixed 0/1 step mask (1 running, 0 finished), both values present when ``batch >= 2``."""
    return (numpy.arange(batch) % 3 != 1).astype(dtype)


def check_rnn(ops: Ops, batch: int, hidden: int, nonlinearity: str, dtype: Any, put: Put, get: Get,
              seed: int = 0) -> None:
    """rnn_step_forward / rnn_step_backward against cells."""
    rng = numpy.random.default_rng(seed)
    xg, hg = _rand(rng, (batch, hidden), dtype), _rand(rng, (batch, hidden), dtype)
    b, hp = _rand(rng, (hidden,), dtype), _rand(rng, (batch, hidden), dtype)
    m = mask_with_finished_rows(batch, dtype)
    h_ref = cells.rnn_step_forward(xg, hg, b, hp, m, nonlinearity)
    h = ops["rnn_step_forward"](put(xg), put(hg), put(b), put(hp), put(m), nonlinearity)
    assert_close("rnn_step_forward", get(h), h_ref, dtype, contiguous=True)
    dh = _rand(rng, (batch, hidden), dtype)
    got = ops["rnn_step_backward"](put(h_ref), put(dh), put(m), nonlinearity)
    assert got[0] is got[1], "rnn_step_backward: dxg must be dhg, as in the reference"
    _compare("rnn_step_backward", got, cells.rnn_step_backward(h_ref, dh, m, nonlinearity), dtype, get, True)


def check_lstm(ops: Ops, batch: int, hidden: int, dtype: Any, put: Put, get: Get, seed: int = 0) -> None:
    """lstm_step_forward (h, c and the saved gates) / lstm_step_backward against cells."""
    rng = numpy.random.default_rng(seed)
    g4 = (batch, 4 * hidden)
    xg, hg, b = _rand(rng, g4, dtype), _rand(rng, g4, dtype), _rand(rng, (4 * hidden,), dtype)
    hp, cp = _rand(rng, (batch, hidden), dtype), _rand(rng, (batch, hidden), dtype)
    m = mask_with_finished_rows(batch, dtype)
    want = cells.lstm_step_forward(xg, hg, b, hp, cp, m)
    got = ops["lstm_step_forward"](put(xg), put(hg), put(b), put(hp), put(cp), put(m))
    _compare("lstm_step_forward", got, want, dtype, get, True)
    _, c, gates = want
    dh, dc = _rand(rng, (batch, hidden), dtype), _rand(rng, (batch, hidden), dtype)
    got = ops["lstm_step_backward"](put(gates), put(cp), put(c), put(dh), put(dc), put(m))
    assert got[0] is got[1], "lstm_step_backward: dxg must be dhg, as in the reference"
    _compare("lstm_step_backward", got, cells.lstm_step_backward(gates, cp, c, dh, dc, m), dtype, get, True)


def check_gru(ops: Ops, batch: int, hidden: int, dtype: Any, put: Put, get: Get, seed: int = 0) -> None:
    """gru_step_forward (h and the saved r, z, n, hn) / gru_step_backward against cells."""
    rng = numpy.random.default_rng(seed)
    g3 = (batch, 3 * hidden)
    xg, hg, b = _rand(rng, g3, dtype), _rand(rng, g3, dtype), _rand(rng, (3 * hidden,), dtype)
    hp, m = _rand(rng, (batch, hidden), dtype), mask_with_finished_rows(batch, dtype)
    want = cells.gru_step_forward(xg, hg, b, hp, m)
    got = ops["gru_step_forward"](put(xg), put(hg), put(b), put(hp), put(m))
    _compare("gru_step_forward", got, want, dtype, get, True)
    dh = _rand(rng, (batch, hidden), dtype)
    got = ops["gru_step_backward"](put(want[1]), put(hp), put(dh), put(m))
    _compare("gru_step_backward", got, cells.gru_step_backward(want[1], hp, dh, m), dtype, get, True)


def check_cell(ops: Ops, cell: str, case: Cell, dtype: Any, put: Put, get: Get) -> None:
    if cell.startswith("rnn"):
        check_rnn(ops, case.batch, case.hidden, cell[4:], dtype, put, get)
    elif cell == "lstm":
        check_lstm(ops, case.batch, case.hidden, dtype, put, get)
    else:
        check_gru(ops, case.batch, case.hidden, dtype, put, get)


# -------------------------------------------------------------- whole-sequence forward (raw)
class Sequence(NamedTuple):
    steps: int
    batch: int
    hidden: int
    tier: str = "small"


SEQUENCE_CASES: dict[str, Sequence] = {
    "small": Sequence(4, 3, 5),
    "units_over_block": Sequence(3, 2, 300),   # H > 256 threads: two units per thread
    "long": Sequence(16, 8, 300, "large"),
    "max_hidden": Sequence(5, 2, 1024, "large"),
}
SEQ_GATES = {"rnn_tanh": 1, "rnn_relu": 1, "lstm": 4, "gru": 3}


def sequence_lengths(steps: int, batch: int) -> numpy.ndarray:
    """Full, shorter, ..., 0: rows that finish at different steps (and one that never runs)."""
    return (steps - 2 * numpy.arange(batch)) % (steps + 1)


def check_sequence(ops: Ops, cell: str, steps: int, batch: int, hidden: int, dtype: Any, put: Put, get: Get,
                   seed: int = 0) -> None:
    """``ops["<mode>_sequence_forward"]`` against a loop of the reference step ops with ``hg = h @ W_hh.T``."""
    rng = numpy.random.default_rng(seed)
    gh = SEQ_GATES[cell] * hidden
    xg = _rand(rng, (steps, batch, gh), dtype)
    w = (rng.standard_normal((gh, hidden)) / numpy.sqrt(hidden)).astype(dtype)
    b, h0, c0 = _rand(rng, (gh,), dtype), _rand(rng, (batch, hidden), dtype), \
        _rand(rng, (batch, hidden), dtype)
    lengths = sequence_lengths(steps, batch)
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
        got = ops["rnn_sequence_forward"](put(xg), put(w), put(b), put(h0), put(mask), cell[4:])
    elif cell == "lstm":
        got, c_last = ops["lstm_sequence_forward"](put(xg), put(w), put(b), put(h0), put(c0), put(mask))
        assert_close("lstm_sequence_forward c_last", get(c_last), c, dtype, scale=5)
    else:
        got = ops["gru_sequence_forward"](put(xg), put(w), put(b), put(h0), put(mask))
    # scale: H-term dot products summed in another order than BLAS, over several steps
    assert_close(f"{cell}_sequence_forward", get(got), want_hs, dtype, scale=5)


# ------------------------------------------------------------------- whole-layer loops
class Recurrent(NamedTuple):
    mode: str                 # rnn, lstm, gru
    steps: int
    batch: int
    hidden: int
    reverse: bool = False
    finished: bool = True     # rows of different lengths (else every row runs every step)
    bias: bool = True
    nonlinearity: str = "tanh"
    tier: str = "tiny"


RECURRENT_CASES: dict[str, Recurrent] = {
    "rnn_tanh": Recurrent("rnn", 4, 3, 5),
    "rnn_relu_reverse": Recurrent("rnn", 4, 3, 5, reverse=True, nonlinearity="relu"),
    "rnn_all_running_no_bias": Recurrent("rnn", 3, 2, 4, finished=False, bias=False),
    "lstm": Recurrent("lstm", 4, 3, 5),
    "lstm_reverse": Recurrent("lstm", 4, 3, 5, reverse=True),
    "lstm_all_running": Recurrent("lstm", 3, 2, 4, finished=False),
    "gru": Recurrent("gru", 4, 3, 5),
    "gru_reverse_no_bias": Recurrent("gru", 4, 3, 5, reverse=True, bias=False),
    "gru_wide": Recurrent("gru", 6, 5, 40, tier="small"),
    "lstm_wide_reverse": Recurrent("lstm", 6, 5, 40, reverse=True, tier="small"),
}


def recurrent_inputs(case: Recurrent, dtype: Any, seed: int = 0) -> dict[str, numpy.ndarray | None]:
    """``xg, w_hh, b_hh, h0, c0, mask`` (T, B) and the backward's ``gym, dh, dc``."""
    rng = numpy.random.default_rng(seed)
    t, b, h = case.steps, case.batch, case.hidden
    g = rec.GATES[case.mode] * h
    lengths = sequence_lengths(t, b) if case.finished else numpy.full(b, t)
    mask = (numpy.arange(t)[:, None] < lengths[None, :]).astype(dtype)
    lstm = case.mode == "lstm"
    return {"xg": _rand(rng, (t, b, g), dtype, 1.0),
            "w_hh": (rng.standard_normal((g, h)) / numpy.sqrt(h)).astype(dtype),
            "b_hh": _rand(rng, (g,), dtype, 0.5) if case.bias else None,
            "h0": _rand(rng, (b, h), dtype, 0.5), "c0": _rand(rng, (b, h), dtype, 0.5) if lstm else None,
            "mask": mask, "gym": _rand(rng, (t, b, h), dtype, 1.0) * mask[:, :, None],
            "dh": _rand(rng, (b, h), dtype, 1.0), "dc": _rand(rng, (b, h), dtype, 1.0) if lstm else None}


def _placed(a: dict, names: tuple[str, ...], put: Put) -> list:
    return [None if a[n] is None else put(a[n].copy()) for n in names]


FORWARD_ARGS = ("xg", "w_hh", "b_hh", "h0", "c0", "mask")


def check_recurrent(loop: Any, case: Recurrent, dtype: Any, put: Put, get: Get) -> None:
    """A ``recurrent`` implementation's forward (``h_buf``, ``c_buf`` and the ``saved`` layout of
    gpunet/ops/recurrent.py) and backward (``dxg, dhg, dh0, dc0``) against the reference loop."""
    ref = rec.REFERENCE_LOOP
    a = recurrent_inputs(case, dtype)
    flags = (case.reverse, case.nonlinearity)
    want = ref.forward(case.mode, *_placed(a, FORWARD_ARGS, numpy.array), *flags)
    got = loop.forward(case.mode, *_placed(a, FORWARD_ARGS, put), *flags)
    _compare(f"{case.mode} forward (h_buf, c_buf, saved)", got, want, dtype, get)
    if case.mode == "rnn":
        assert want[2] is None and got[2] is None, "rnn saves nothing"
    else:
        assert get(got[2]).shape == (case.steps, case.batch, 4 * case.hidden), "saved layout (T, B, 4H)"
    grads = ("gym", "dh", "dc")
    want_b = ref.backward(case.mode, a["w_hh"], *want, *_placed(a, grads, numpy.array), a["mask"], *flags)
    got_b = loop.backward(case.mode, put(a["w_hh"]), *got, *_placed(a, grads, put), put(a["mask"]), *flags)
    _compare(f"{case.mode} backward (dxg, dhg, dh0, dc0)", got_b, want_b, dtype, get)


def check_recurrent_inference(inference: Any, case: Recurrent, dtype: Any, put: Put, get: Get) -> None:
    """A ``recurrent_inference`` implementation's ``(h_out, h_n, c_n)`` against the reference's."""
    a = recurrent_inputs(case, dtype)
    flags = (case.reverse, case.nonlinearity)
    want = rec.REFERENCE_INFERENCE.forward(case.mode, *_placed(a, FORWARD_ARGS, numpy.array), *flags)
    got = inference.forward(case.mode, *_placed(a, FORWARD_ARGS, put), *flags)
    # the whole-sequence kernels sum the recurrent dot products in their own order
    for k, (g, r) in enumerate(zip(got, want)):
        assert (g is None) == (r is None), f"{case.mode} inference[{k}]"
        if r is not None:
            assert_close(f"{case.mode} inference[{k}]", get(g), r, dtype, scale=5)


# ------------------------------------------------------------------------------- pooling
class Pool(NamedTuple):
    x: tuple[int, int, int, int]
    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int] = (0, 0)
    ties: bool = False        # small integer inputs: windows with several maxima (first one wins)
    tier: str = "small"


POOL_CASES: dict[str, Pool] = {
    "2x2_tiled": Pool((2, 3, 8, 8), (2, 2), (2, 2)),
    "3x3_s2_overlap": Pool((2, 2, 9, 7), (3, 3), (2, 2)),
    "3x3_s1_pad1": Pool((1, 2, 6, 5), (3, 3), (1, 1), (1, 1), tier="tiny"),
    "asym_kernel_stride_pad": Pool((2, 1, 7, 10), (2, 3), (1, 2), (1, 1), tier="tiny"),
    "ragged_edges": Pool((1, 3, 7, 7), (2, 2), (2, 2)),
    "ties_overlap": Pool((2, 2, 6, 6), (3, 3), (1, 1), (1, 0), ties=True),
    "ties_tiled": Pool((1, 2, 4, 6), (2, 2), (2, 2), ties=True, tier="tiny"),
    "lenet": Pool((16, 6, 28, 28), (2, 2), (2, 2), tier="large"),
}
POOL_REFERENCE = {"max_pool2d": pool.MAX_REFERENCE, "avg_pool2d": pool.AVG_REFERENCE}


def check_pool(op: str, impl: Any, case: Pool, dtype: Any, put: Put, get: Get, seed: int = 0) -> None:
    """Pooling object ``impl`` of ``op``: forward and backward against the reference object."""
    rng = numpy.random.default_rng(seed)
    x = (rng.integers(-2, 3, case.x) if case.ties else rng.standard_normal(case.x)).astype(dtype)
    out_hw = pool.check_pool2d_input(op, x, case.kernel, case.stride, case.padding)
    geo = (case.kernel, case.stride, case.padding, out_hw)
    y_ref, state_ref = POOL_REFERENCE[op].forward(x, *geo, True)
    y, state = impl.forward(put(x), *geo, True)
    assert_close(f"{op} forward", get(y), y_ref, dtype)
    assert impl.forward(put(x), *geo, False)[1] is None, f"{op}: nothing saved without save"
    gy = rng.standard_normal(y_ref.shape).astype(dtype)
    gx_ref = POOL_REFERENCE[op].backward(gy, state_ref, x.shape)
    assert_close(f"{op} backward", get(impl.backward(put(gy), state, x.shape)), gx_ref, dtype)


def gradcheck_pool(op: str, obj: Any, case: Pool, put: Put, get: Get, centered: bool = False) -> None:
    """float64 central differences of ``sum(forward(x) * gy)`` against ``backward(gy)`` for a
    pooling-interface object, on distinct values (no ties within eps); ``centered``: half of them
    negative and none within eps of 0 (for a ReLU before the pool)."""
    rng = numpy.random.default_rng(1)
    size = int(numpy.prod(case.x))
    x = rng.permutation(size).reshape(case.x).astype(numpy.float64)
    x = (x - size / 2 + 0.5) * 0.01 if centered else x * 0.01
    out_hw = pool.check_pool2d_input(op, x, case.kernel, case.stride, case.padding)
    geo = (case.kernel, case.stride, case.padding, out_hw)
    y, state = obj.forward(put(x), *geo, True)
    gy = rng.standard_normal(get(y).shape)
    analytic = get(obj.backward(put(gy), state, x.shape))
    eps, numeric = 1e-4, numpy.zeros_like(x)
    for k in range(x.size):
        for sign in (1, -1):
            xs = x.copy()
            xs.flat[k] += sign * eps
            numeric.flat[k] += sign * float((get(obj.forward(put(xs), *geo, False)[0]) * gy).sum())
    numeric /= 2 * eps
    err = numpy.abs(analytic - numeric).max()
    assert err < 1e-6, f"{op} gradcheck: expected backward == central differences, got max error {err:.3g}"


# ------------------------------------------------------------------------------ linear
class Linear(NamedTuple):
    rows: int
    inputs: int
    outputs: int
    bias: bool = True
    tier: str = "small"


LINEAR_CASES: dict[str, Linear] = {
    "one_row": Linear(1, 5, 3, tier="tiny"),
    "no_bias": Linear(4, 6, 3, bias=False, tier="tiny"),
    "odd_rows_split": Linear(7, 300, 130),           # above the fast path's split size: rows in parts
    "lenet_fc1": Linear(64, 400, 120, tier="large"),
    "large": Linear(256, 1024, 512, tier="large"),  # 134M multiply-adds: split over threads like the rest
}


def linear_definition(x: numpy.ndarray, w: numpy.ndarray, b: numpy.ndarray | None) -> numpy.ndarray:
    """``y[m, o] = sum_i x[m, i] w[o, i] + b[o]``, written out with einsum (not the reference's GEMM)."""
    y = numpy.einsum("mi,oi->mo", x, w)
    return y + b if b is not None else y


def gradcheck_linear(forward: Callable[..., Any], backward: Callable[..., Any], case: Linear, get: Get) -> None:
    """float64 central differences of ``sum(forward(x, w, b) * gy)`` against
    ``backward(gy, x, w, b)`` (the three gradients), with ``forward`` returning an array."""
    rng = numpy.random.default_rng(4)
    x, w, b = rng.standard_normal((case.rows, case.inputs)), rng.standard_normal((case.outputs, case.inputs)), \
        rng.standard_normal(case.outputs)
    gy = rng.standard_normal((case.rows, case.outputs))
    analytic = [get(g) for g in backward(gy, x, w, b)]
    eps = 1e-6
    for k, a in enumerate((x, w, b)):
        numeric = numpy.zeros_like(a)
        for i in range(a.size):
            for sign in (1, -1):
                args = [x.copy(), w.copy(), b.copy()]
                args[k].flat[i] += sign * eps
                numeric.flat[i] += sign * float((get(forward(*args)) * gy).sum())
        numpy.testing.assert_allclose(analytic[k], numeric / (2 * eps), rtol=1e-6, atol=1e-8)


def check_linear(impl: Any, case: Linear, dtype: Any, put: Put, get: Get, seed: int = 0) -> None:
    """Linear object ``impl``: forward against the definition; every subset of gradients against
    their definitions (``gx = gy W``, ``gW = gy^T x``, ``gb = sum gy``)."""
    rng = numpy.random.default_rng(seed)
    x = _rand(rng, (case.rows, case.inputs), dtype)
    w = _rand(rng, (case.outputs, case.inputs), dtype, scale=0.5)
    b = _rand(rng, (case.outputs,), dtype) if case.bias else None
    y = impl.forward(put(x), put(w), put(b) if b is not None else None)
    assert_close("linear forward", get(y), linear_definition(x, w, b).astype(dtype), dtype, contiguous=True)
    gy = _rand(rng, (case.rows, case.outputs), dtype)
    want = (numpy.einsum("mo,oi->mi", gy, w), numpy.einsum("mo,mi->oi", gy, x), gy.sum(axis=0))
    for needs in ((True, True, case.bias), (True, False, False), (False, True, case.bias), (False, False, True)):
        got = impl.backward(put(gy), put(x) if needs[1] else None, put(w) if needs[0] else None, needs)
        for name, need, g, ref in zip(("gx", "gw", "gb"), needs, got, want):
            if not need:
                assert g is None, f"linear backward: {name} not asked for, got an array"
            else:
                assert_close(f"linear backward {name} (needs {needs})", get(g), ref.astype(dtype), dtype)
