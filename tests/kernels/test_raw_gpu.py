"""raw_ops on a real CUDA device (CuPy RawModule) against the NumPy reference.

Marked ``gpu``: deselected on the CPU with ``-m "not gpu"``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from emulator import cases  # noqa: E402

from gpunet.cuda import raw_ops  # noqa: E402
from gpunet.ops import catalog, registry  # noqa: E402
from gpunet.ops import conv2d as conv_impl  # noqa: E402

pytestmark = pytest.mark.gpu

DTYPES = [numpy.float32, numpy.float64]


@pytest.fixture(scope="module")
def cupy():
    return pytest.importorskip("cupy")


@pytest.fixture(scope="module")
def ops(cupy):
    table = raw_ops.available()
    assert set(table) == set(catalog.HOT_OPS + catalog.SEQUENCE_OPS), "a usable GPU must expose every hot op"
    return table


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", cases.CONV_CASES.values(), ids=list(cases.CONV_CASES))
def test_conv2d(ops, cupy, case, dtype):
    cases.check_conv(ops, case, dtype, cupy.asarray, cupy.asnumpy)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [*cases.CELL_SHAPES.values(), (64, 512)])
def test_cells(ops, cupy, shape, dtype):
    for nonlinearity in ("tanh", "relu"):
        cases.check_rnn(ops, *shape, nonlinearity, dtype, cupy.asarray, cupy.asnumpy)
    cases.check_lstm(ops, *shape, dtype, cupy.asarray, cupy.asnumpy)
    cases.check_gru(ops, *shape, dtype, cupy.asarray, cupy.asnumpy)


def test_conv2d_realistic_size(ops, cupy):
    """Many tiles in every dimension (float64 keeps the comparison tight)."""
    rng = numpy.random.default_rng(3)
    x, w = rng.standard_normal((8, 32, 30, 29)), rng.standard_normal((96, 32, 3, 3))
    geo = ((2, 1), (1, 1), (1, 2))
    y = conv_impl.conv2d_forward(x, w, *geo)
    gy = rng.standard_normal(y.shape)
    tol = {"rtol": 1e-10, "atol": 1e-10}
    got = ops["conv2d_forward"](cupy.asarray(x), cupy.asarray(w), *geo)
    numpy.testing.assert_allclose(cupy.asnumpy(got), y, **tol)
    got = ops["conv2d_backward_input"](cupy.asarray(gy), cupy.asarray(w), x.shape, *geo)
    numpy.testing.assert_allclose(cupy.asnumpy(got),
                                  conv_impl.conv2d_backward_input(gy, w, x.shape, *geo), **tol)
    got = ops["conv2d_backward_weight"](cupy.asarray(x), cupy.asarray(gy), w.shape, *geo)
    numpy.testing.assert_allclose(cupy.asnumpy(got),
                                  conv_impl.conv2d_backward_weight(x, gy, w.shape, *geo), **tol)


def test_numpy_array_is_a_type_error(ops, cupy):
    with pytest.raises(TypeError, match=r"lstm_step_forward.*cupy.*numpy\.ndarray"):
        h = cupy.zeros((2, 3))
        ops["lstm_step_forward"](numpy.zeros((2, 12)), cupy.zeros((2, 12)), cupy.zeros(12), h, h,
                                 cupy.ones(2))


def test_registry_picks_raw(ops):
    from gpunet import config

    with config.set_kernels("raw"):
        assert registry.lookup("conv2d_forward", "cupy") is ops["conv2d_forward"]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cell", list(cases.SEQ_GATES))
@pytest.mark.parametrize("shape", [(4, 3, 5), (16, 8, 300), (5, 2, 1024)])
def test_sequence_forward(cupy, cell, shape, dtype):
    raw = raw_ops.RawOps(raw_ops.CupyRuntime())
    cases.check_sequence(raw, cell, *shape, dtype, cupy.asarray, cupy.asnumpy)
