"""gpunet.ops.exp_cpu.exp: the vectorised float32 ``exp`` of the CPU cell kernels, and float64's ``math.exp``."""

from __future__ import annotations

import numba
import numpy
import pytest

from gpunet.ops.exp_cpu import exp


@numba.njit(error_model="numpy")
def _apply(x, out):  # pragma: no cover - compiled
    for k in range(x.size):
        out[k] = exp(x[k])


def _exp(x: numpy.ndarray) -> numpy.ndarray:
    out = numpy.empty_like(x)
    _apply(x, out)
    return out


def test_float32_within_one_ulp_over_the_normal_range():
    x = numpy.linspace(-87.3, 88.3, 200_001, dtype=numpy.float32)
    want = numpy.exp(x.astype(numpy.float64))
    got = _exp(x)
    assert got.dtype == numpy.float32
    assert numpy.max(numpy.abs(got - want) / want) < 2.5e-7


def test_float32_special_values():
    x = numpy.array([numpy.nan, numpy.inf, -numpy.inf, 0.0, -0.0, 89.0, 1e4, -88.0, -1e4], dtype=numpy.float32)
    got = _exp(x)
    assert numpy.isnan(got[0])
    numpy.testing.assert_array_equal(got[1:], [numpy.inf, 0.0, 1.0, 1.0, numpy.inf, numpy.inf, 0.0, 0.0])


@pytest.mark.parametrize("value", [-700.0, -1.5, 0.0, 1e-300, 3.25, 709.0])
def test_float64_is_math_exp(value):
    numpy.testing.assert_array_equal(_exp(numpy.array([value])), numpy.exp(numpy.array([value])))
