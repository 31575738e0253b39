"""The split GEMM of the recurrent layers (gpunet/ops/gemm_cpu.py) equals np.matmul."""

from __future__ import annotations

import numba
import numpy
import pytest

import gpunet
from gpunet.ops import gemm_cpu


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64])
@pytest.mark.parametrize("rows", [1, 2, 37])
def test_every_form_equals_matmul(monkeypatch, threads, dtype, rows):
    monkeypatch.setattr(gemm_cpu, "SPLIT_MIN", 0)
    rng = numpy.random.default_rng(rows)
    m = rng.standard_normal((rows, 20)).astype(dtype)
    w = rng.standard_normal((11, 20)).astype(dtype)
    b = rng.standard_normal((rows, 9)).astype(dtype)
    c = rng.standard_normal((20, 5)).astype(dtype)
    tol = {"rtol": 1e-12, "atol": 1e-12} if dtype == numpy.float64 else {"rtol": 1e-5, "atol": 1e-5}
    with gpunet.using(threads=min(threads, numba.config.NUMBA_NUM_THREADS)):
        for a, bb in ((m, w.T), (m, c), (m.T, b)):  # an input projection, a plain product, a weight gradient
            out = numpy.empty((a.shape[0], bb.shape[1]), dtype=dtype)
            got = gemm_cpu.matmul(a, bb, out)
            assert got is out
            numpy.testing.assert_allclose(out, a @ bb, **tol)


def test_other_dtypes_and_layouts_are_one_matmul(monkeypatch):
    monkeypatch.setattr(gemm_cpu, "SPLIT_MIN", 0)
    a = numpy.arange(12, dtype=numpy.int64).reshape(3, 4)
    with gpunet.using(threads=2):
        out = gemm_cpu.matmul(a, a.T.copy(), numpy.empty((3, 3), dtype=numpy.int64))
        numpy.testing.assert_array_equal(out, a @ a.T)
        strided = numpy.ones((6, 8), dtype=numpy.float32)[::2, ::2]  # neither C nor F
        out = gemm_cpu.matmul(strided, numpy.ones((4, 2), dtype=numpy.float32), numpy.empty((3, 2), numpy.float32))
        numpy.testing.assert_array_equal(out, numpy.full((3, 2), 4.0))
