"""raw_ops on a real CUDA device (CuPy RawModule): availability, host-array errors, the registry.

Marked ``gpu``: deselected on the CPU with ``-m "not gpu"``. The comparisons of every raw hot op
and whole-sequence forward with the reference run in tests/ops (the ``raw`` implementation of
the ``impl`` fixture, on the shared case tables, large cases included).
"""

from __future__ import annotations

import numpy
import pytest

from gpunet.cuda import raw_ops
from gpunet.ops import catalog, registry

pytestmark = [pytest.mark.gpu, pytest.mark.standin]  # standin: also run by tests/test_on_standin.py


@pytest.fixture(scope="module")
def cupy():
    return pytest.importorskip("cupy")


@pytest.fixture(scope="module")
def ops(cupy):
    table = raw_ops.available()
    want = set(catalog.HOT_OPS + catalog.SEQUENCE_OPS + catalog.POOL_OPS) | set(catalog.FUSED_OPS)
    assert set(table) == want, "a usable GPU must expose every raw op (hot, sequence, pooling, fused)"
    return table


def test_every_hot_op_is_available(ops):
    assert raw_ops.unavailable_reason() is None


def test_numpy_array_is_a_type_error(ops, cupy):
    with pytest.raises(TypeError, match=r"lstm_step_forward.*cupy.*numpy\.ndarray"):
        h = cupy.zeros((2, 3))
        ops["lstm_step_forward"](numpy.zeros((2, 12)), cupy.zeros((2, 12)), cupy.zeros(12), h, h,
                                 cupy.ones(2))


def test_registry_picks_raw(ops):
    from gpunet import config

    with config.set_kernels("raw"):
        assert registry.lookup("conv2d_forward", "cupy") is ops["conv2d_forward"]
