"""Every numba.cuda kernel, unchanged, on numba's CUDA simulator against the NumPy reference.

The simulator runs each block's threads as Python threads meeting at ``cuda.syncthreads``, with
``cuda.shared.array`` per block, so the tiled loops, edge guards and index maps are exercised as
written. Shapes are tiny; small tile configurations give several blocks and ragged edge tiles,
and one case per pass runs the production tile shape. Outputs start as NaN so an element a
kernel forgets to write fails. Mutated copies of the kernel sources must fail the same checks.

The launchers (``numba_ops``, the hot ops as the registry runs them) are compared with the
reference on the simulator in tests/ops (the ``numba-sim`` implementation of the ``impl`` fixture).
"""

from __future__ import annotations

import inspect
import os
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from numba import cuda

from gpunet.cuda import numba_cells, numba_conv
from gpunet.cuda.numba_conv import DEFAULT_TILES, Tiles
from gpunet.ops import cells
from gpunet.ops import conv2d as conv_impl

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "ops"))
import cases  # noqa: E402  (the shared case tables)

SIM = bool(cuda.config.ENABLE_CUDASIM)
in_sim = pytest.mark.skipif(not SIM, reason="numba.cuda is the real target in this process; "
                            "test_suite_in_simulator_subprocess runs these on the simulator")

SMALL = Tiles(bm=8, bn=8, bk=4, tm=2, tn=2, pad=0)   # 4x4 threads, many blocks on tiny shapes
SKEWED = Tiles(bm=16, bn=8, bk=2, tm=4, tn=2, pad=1)  # tm != tn, one B load per thread


def _close(got: np.ndarray, want: np.ndarray) -> bool:
    tol = 1e-5 if got.dtype == np.float32 else 1e-12
    return got.shape == want.shape and bool(np.allclose(got, want, rtol=tol, atol=tol))


def _nan(shape: tuple[int, ...], dtype: type) -> np.ndarray:
    return np.full(shape, np.nan, dtype=dtype)


# ------------------------------------------------------------------------------- convolution
# The geometries come from the shared conv table (tests/ops/cases.py); here each runs with a
# tile shape of the numba template and one dtype.
CONV_TILES = {
    "ragged_k3x2_s12_d12": (SMALL, np.float64),
    "s2_p1_k3": (SMALL, np.float32),
    "s23_p21_d21": (SKEWED, np.float64),
    "1x1_s2_k_not_tile": (SKEWED, np.float32),
    "k3_p1": (DEFAULT_TILES, np.float64),
    "s21_p01_d23": (DEFAULT_TILES, np.float32),
}
CONV_CASES = {name: (cases.CONV_CASES[name], *tiles) for name, tiles in CONV_TILES.items()}


def conv_results(mod: types.ModuleType, case: tuple) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{pass: (kernel output, reference)}`` for the three conv passes of ``mod``."""
    conv, tiles, dtype = case
    stride, padding, dilation = conv.geometry
    rng = np.random.default_rng(sum(conv.x) + conv.w[0])
    x = rng.standard_normal(conv.x).astype(dtype)
    w = rng.standard_normal(conv.w).astype(dtype)
    y_ref = conv_impl.conv2d_forward(x, w, stride, padding, dilation)
    gy = rng.standard_normal(y_ref.shape).astype(dtype)
    y, gx, gw = _nan(y_ref.shape, dtype), _nan(x.shape, dtype), _nan(w.shape, dtype)
    mod.forward(x, w, y, stride, padding, dilation, tiles)
    mod.backward_input(gy, w, gx, stride, padding, dilation, tiles)
    mod.backward_weight(x, gy, gw, stride, padding, dilation, tiles)
    return {
        "forward": (y, y_ref),
        "backward_input": (gx, conv_impl.conv2d_backward_input(gy, w, x.shape, stride, padding,
                                                                dilation)),
        "backward_weight": (gw, conv_impl.conv2d_backward_weight(x, gy, w.shape, stride, padding,
                                                                  dilation)),
    }


@in_sim
@pytest.mark.parametrize("case", CONV_CASES.values(), ids=CONV_CASES.keys())
def test_conv_matches_reference(case: tuple) -> None:
    for name, (got, want) in conv_results(numba_conv, case).items():
        assert _close(got, want), f"{name}: max error {np.nanmax(np.abs(got - want))}"


# --------------------------------------------------------------------------- recurrent cells
CELLS = ("rnn_tanh", "rnn_relu", "lstm", "gru")


def cell_results(mod: types.ModuleType, cell: str, dtype: type, threads: int = 4,
                 max_blocks: int = 2) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{output: (kernel, reference)}`` for one cell's forward and backward step.

    The default launch (2 blocks of 4 threads over 15 units) walks the grid-stride loop.
    """
    b, hidden = 3, 5
    gates = {"rnn_tanh": 1, "rnn_relu": 1, "lstm": 4, "gru": 3}[cell]
    rng = np.random.default_rng(gates)

    def rand(*shape: int) -> np.ndarray:
        return rng.standard_normal(shape).astype(dtype)

    xg, hg, b_hh = rand(b, gates * hidden), rand(b, gates * hidden), rand(gates * hidden)
    h_prev, c_prev, dh, dc = rand(b, hidden), rand(b, hidden), rand(b, hidden), rand(b, hidden)
    mask = np.array([1, 0, 1], dtype=dtype)
    units = b * hidden

    def run(name: str, *args: object) -> None:
        mod.launch(name, np.dtype(dtype).name, units, *args, threads=threads,
                   max_blocks=max_blocks)

    def new(cols: int = hidden) -> np.ndarray:
        return _nan((b, cols), dtype)

    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    if cell.startswith("rnn"):
        act = cell[4:]
        h_ref = cells.rnn_step_forward(xg, hg, b_hh, h_prev, mask, act)
        h, dpre, carry = new(), new(), new()
        run("rnn_forward", xg, hg, b_hh, h_prev, mask, int(act == "relu"), h)
        run("rnn_backward", h_ref, dh, mask, int(act == "relu"), dpre, carry)
        dpre_ref, _, carry_ref = cells.rnn_step_backward(h_ref, dh, mask, act)
        out |= {"h": (h, h_ref), "dpre": (dpre, dpre_ref), "dh_carry": (carry, carry_ref)}
    elif cell == "lstm":
        h_ref, c_ref, gates_ref = cells.lstm_step_forward(xg, hg, b_hh, h_prev, c_prev, mask)
        h, c, g = new(), new(), new(4 * hidden)
        run("lstm_forward", xg, hg, b_hh, h_prev, c_prev, mask, h, c, g)
        dpre, carry, dc_prev = new(4 * hidden), new(), new()
        run("lstm_backward", gates_ref, c_prev, c_ref, dh, dc, mask, dpre, carry, dc_prev)
        dpre_ref, _, carry_ref, dc_prev_ref = cells.lstm_step_backward(
            gates_ref, c_prev, c_ref, dh, dc, mask)
        out |= {"h": (h, h_ref), "c": (c, c_ref), "gates": (g, gates_ref),
                "dpre": (dpre, dpre_ref), "dh_carry": (carry, carry_ref),
                "dc_prev": (dc_prev, dc_prev_ref)}
    else:
        h_ref, saved_ref = cells.gru_step_forward(xg, hg, b_hh, h_prev, mask)
        h, saved = new(), new(4 * hidden)
        run("gru_forward", xg, hg, b_hh, h_prev, mask, h, saved)
        dxg, dhg, carry = new(3 * hidden), new(3 * hidden), new()
        run("gru_backward", saved_ref, h_prev, dh, mask, dxg, dhg, carry)
        dxg_ref, dhg_ref, carry_ref = cells.gru_step_backward(saved_ref, h_prev, dh, mask)
        out |= {"h": (h, h_ref), "saved": (saved, saved_ref), "dxg": (dxg, dxg_ref),
                "dhg": (dhg, dhg_ref), "dh_carry": (carry, carry_ref)}
    return out


@in_sim
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cell", CELLS)
def test_cell_matches_reference(cell: str, dtype: type) -> None:
    for name, (got, want) in cell_results(numba_cells, cell, dtype).items():
        assert _close(got, want), f"{cell} {name}: max error {np.nanmax(np.abs(got - want))}"


@in_sim
def test_cell_production_launch_shape() -> None:
    """One full default-size block (256 threads, most idle) as the launcher uses on a GPU."""
    results = cell_results(numba_cells, "lstm", np.float32, threads=numba_cells.THREADS,
                           max_blocks=numba_cells.MAX_BLOCKS)
    assert all(_close(got, want) for got, want in results.values())


# ------------------------------------------------------- the checks catch broken kernels
def _mutant(module: types.ModuleType, old: str = "", new: str = "") -> types.ModuleType:
    """A fresh copy of ``module`` compiled from its source with ``old`` replaced by ``new``."""
    source = inspect.getsource(module)
    if old:
        assert old in source, f"mutation target {old!r} not found in {module.__name__}"
        source = source.replace(old, new)
    copy = types.ModuleType(f"{module.__name__}_mutant")
    exec(compile(source, f"<mutant of {module.__name__}>", "exec"), copy.__dict__)
    return copy


CONV_MUTANTS = {
    "tile-loop-skips-last-k": ("for kk in range(BK):", "for kk in range(BK - 1):",
                               "ragged_k3x2_s12_d12"),
    "no-top-padding-guard": ("if hi < 0 or hi >= g[H]", "if hi >= g[H]", "s2_p1_k3"),
    "stride-divisibility-ignored": ("ri != 0 or ", "", "s23_p21_d21"),
    "edge-tile-row-not-stored": ("if m < g[GM] and n < g[GN]:", "if m < g[GM] - 1 and n < g[GN]:",
                                 "1x1_s2_k_not_tile"),
    "shared-tile-read-wrong-column": ("b_reg[c] = b_tile[kk, ty + c * TY]",
                                      "b_reg[c] = b_tile[kk, ty * TN + c]", "k3_p1"),
}

CELL_MUTANTS = {
    "relu-derivative-at-zero": ("deriv = one if hv > zero else zero",
                                "deriv = one if hv >= zero else zero", "rnn_relu"),
    "rnn-mask-ignored": ("h[b, j] = m * act + (one - m) * h_prev[b, j]", "h[b, j] = act",
                         "rnn_tanh"),
    "lstm-gates-g-o-swapped": ("jf, jg, jo = j + hidden, j + 2 * hidden, j + 3 * hidden",
                               "jf, jo, jg = j + hidden, j + 2 * hidden, j + 3 * hidden", "lstm"),
    "gru-dhg-n-without-r": ("dn_pre * r\n", "dn_pre\n", "gru"),
}


@in_sim
def test_unmutated_copies_pass() -> None:
    """Control: the mutation harness itself (recompiled copies) does not cause failures."""
    conv, cell = _mutant(numba_conv), _mutant(numba_cells)
    assert all(_close(*r) for r in conv_results(conv, CONV_CASES["s2_p1_k3"]).values())
    assert all(_close(*r) for r in cell_results(cell, "gru", np.float64).values())


@in_sim
@pytest.mark.parametrize("mutation", CONV_MUTANTS.values(), ids=CONV_MUTANTS.keys())
def test_broken_conv_kernel_is_caught(mutation: tuple[str, str, str]) -> None:
    old, new, case = mutation
    results = conv_results(_mutant(numba_conv, old, new), CONV_CASES[case])
    assert not all(_close(got, want) for got, want in results.values())


@in_sim
@pytest.mark.parametrize("mutation", CELL_MUTANTS.values(), ids=CELL_MUTANTS.keys())
def test_broken_cell_kernel_is_caught(mutation: tuple[str, str, str]) -> None:
    old, new, cell = mutation
    results = cell_results(_mutant(numba_cells, old, new), cell, np.float64)
    assert not all(_close(got, want) for got, want in results.values())


# ------------------------------------------------ same checks when numba.cuda is real here
@pytest.mark.skipif(SIM, reason="already running on the simulator in this process")
def test_suite_in_simulator_subprocess() -> None:
    """numba.cuda was imported for the real target first: rerun this file on the simulator."""
    env = {**os.environ, "NUMBA_ENABLE_CUDASIM": "1"}
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           str(Path(__file__).resolve())], cwd=root, env=env,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
    assert "passed, 1 skipped" in proc.stdout, proc.stdout[-2000:]  # only this test skips there
