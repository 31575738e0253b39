"""The emulated comparisons can fail: a deliberately broken copy of each kernel source must be
caught by the same checks that pass on the real source (mutation testing, one bug at a time)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "ops"))

import cases  # noqa: E402
from emulator import grid  # noqa: E402

from gpunet.cuda import raw_ops  # noqa: E402
from gpunet.cuda.sources import read_kernel  # noqa: E402

pytestmark = pytest.mark.skipif(not grid.have_compiler(), reason="no C++ compiler for the emulator")

CONV = cases.CONV_CASES
SPLIT = {"target_blocks": 64, "min_split_k": 32}
SERIAL = {"serial": True}  # deterministic schedule: a missing barrier always shows


def _conv(case: str, dtype: type) -> object:
    return lambda raw, put: cases.check_conv(raw.table(), CONV[case], dtype, put, numpy.asarray)


# name: (source, original text, mutated text, check that must now fail, options: RawOps
# keywords, plus "serial" for the emulator schedule)
MUTANTS = {
    "conv_tile_loop_off_by_one": (
        "conv2d.cu", "k0 < k_end; k0 += BK", "k0 + BK < k_end; k0 += BK",
        _conv("3x3_pad1_edge_m_k", numpy.float64), {}),
    "conv_edge_store_guard": (
        "conv2d.cu", "if (m < op.M && nn < op.N)", "if (m <= op.M && nn < op.N)",
        _conv("3x3_pad1_edge_m_k", numpy.float32), {}),
    "conv_input_bounds": (
        "conv2d.cu", "iw = r.iw0 + t.dw;\n        if (!r.ok || !t.ok || ih < 0 || ih >= g.h",
        "iw = r.iw0 + t.dw;\n        if (!r.ok || !t.ok || ih < 0 || ih > g.h",
        _conv("3x3_pad1_edge_m_k", numpy.float64), {}),
    "conv_bwd_input_stride_divisibility": (
        "conv2d.cu", "if (vh % g.sh != 0) return T(0);", "",
        _conv("stride_asym_pad", numpy.float64), {}),
    "conv_split_sum_drops_a_slice": (
        "conv2d.cu", "z < splits; ++z", "z < splits - 1; ++z",
        _conv("long_reduction", numpy.float64), SPLIT),
    "lstm_gate_order": (
        "rnn_cells.cu", "const T g = tanh_(pre_g), o = sigmoid_(pre_o);",
        "const T g = tanh_(pre_o), o = sigmoid_(pre_g);",
        lambda raw, put: cases.check_lstm(raw.table(), 5, 7, numpy.float64, put, numpy.asarray),
        {}),
    "gru_mask_ignored": (
        "rnn_cells.cu", "return {blend(m, h_new, hp), r, z, n, hbn};", "return {h_new, r, z, n, hbn};",
        lambda raw, put: cases.check_gru(raw.table(), 5, 7, numpy.float32, put, numpy.asarray),
        {}),
    "conv_missing_barrier_after_loads": (
        "conv2d.cu", "op.tap(k0 + BK + tid, k_end);\n        __syncthreads();\n",
        "op.tap(k0 + BK + tid, k_end);\n", _conv("3x3_pad1_edge_m_k", numpy.float64), SERIAL),
    "conv_missing_barrier_after_compute": (
        "conv2d.cu", "        __syncthreads();\n        buf ^= 1;", "        buf ^= 1;",
        _conv("cin_over_tile", numpy.float64), SERIAL),
    "conv_divergent_barrier": (
        "conv2d.cu", "    __syncthreads();\n    int buf = 0;",
        "    if (tid < BK) __syncthreads();\n    int buf = 0;",
        _conv("3x3_pad1_edge_m_k", numpy.float32), SERIAL),
    "lstm_sequence_missing_barrier": (
        "rnn_cells.cu", "hs[row * H + j] = u.h;\n        }\n        __syncthreads();\n    }\n    for",
        "hs[row * H + j] = u.h;\n        }\n    }\n    for",
        lambda raw, put: cases.check_sequence(raw.table(), "lstm", 3, 2, 300, numpy.float64, put,
                                              numpy.asarray), SERIAL),
    "sequence_recurrent_dot_off_by_one": (
        "rnn_cells.cu", "for (int k = 0; k < H; ++k) {", "for (int k = 1; k < H; ++k) {",
        lambda raw, put: cases.check_sequence(raw.table(), "lstm", 3, 2, 5, numpy.float64, put,
                                              numpy.asarray), {}),
}


@pytest.mark.parametrize("name", list(MUTANTS))
def test_mutant_is_caught(name):
    source, original, mutated, check, options = MUTANTS[name]
    options = dict(options)
    serial = options.pop("serial", False)
    text = read_kernel(source)
    assert text.count(original) == 1, f"mutation site for {name} not found exactly once"
    good = grid.EmulatorRuntime(grid.build({source: text}), serial=serial)
    check(raw_ops.RawOps(good, **options), good.guarded)  # the real kernel passes
    bad = grid.EmulatorRuntime(grid.build({source: text.replace(original, mutated)}), serial=serial)
    with pytest.raises(AssertionError):
        check(raw_ops.RawOps(bad, **options), bad.guarded)
