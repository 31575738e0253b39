"""The kernel constants Python relies on (gpunet/cuda/kernel_constants.py) equal the values in
kernels/*.cu, and the check notices when one of them changes."""

from __future__ import annotations

import pytest

from gpunet.cuda import kernel_constants, raw_ops
from gpunet.cuda.sources import read_kernel


@pytest.mark.parametrize("source", list(kernel_constants.SOURCE_CONSTANTS))
def test_python_constants_match_the_sources(source):
    assert kernel_constants.mismatches(source, read_kernel(source)) == []


def test_every_kernel_source_is_checked():
    assert set(kernel_constants.SOURCE_CONSTANTS) == set(raw_ops.KERNELS)


def test_raw_ops_uses_the_shared_constants():
    for name in ("THREADS", "TILE", "TILE_K", "MAX_SPLITS", "SEQ_MAX_H", "CELL_BLOCKS", "MAX_INT"):
        assert getattr(raw_ops, name) is getattr(kernel_constants, name), name


def test_parser_reads_constexpr_define_and_expressions():
    text = """
    #define WIDTH 32
    #define CONV_GEOM_ARGS {n, c_in}   // not an integer: ignored
    constexpr int BM = 64;       // tile rows
    static constexpr int TM = 4; /* micro */
    constexpr int TX = BM / TM;
    __shared__ float As[BM];
    """
    assert kernel_constants.parse_constants(text) == {"WIDTH": 32, "BM": 64, "TM": 4, "TX": 16}


@pytest.mark.parametrize("source, original, changed, message", [
    ("conv2d.cu", "constexpr int BK = 16;", "constexpr int BK = 32;", "BK = 32 in the source, Python assumes 16"),
    ("conv2d.cu", "constexpr int BM = 64;", "constexpr int BM = 128;", "BM = 128"),
    ("conv2d.cu", "constexpr int THREADS = 256;", "constexpr int NTHREADS = 256;", "THREADS not found"),
    ("rnn_cells.cu", "constexpr int SEQ_MAX_H = 1024;", "constexpr int SEQ_MAX_H = 512;",
     "SEQ_MAX_H = 512 in the source, Python assumes 1024"),
])
def test_a_changed_value_is_caught(source, original, changed, message):
    """Self-test: edit one constant of the real source and the check must report it."""
    text = read_kernel(source)
    assert text.count(original) == 1, f"{original!r} not found exactly once in {source}"
    problems = kernel_constants.mismatches(source, text.replace(original, changed))
    assert len(problems) == 1 and message in problems[0], problems
