"""Top-level tensor creation, dtypes and the re-exported joins."""

from __future__ import annotations

import numpy as np
import pytest

import gpunet
from gpunet import OpError


def test_filled_tensors_take_sizes_both_ways_and_the_default_dtype():
    for make, value in [(gpunet.zeros, 0.0), (gpunet.ones, 1.0), (gpunet.empty, None)]:
        a, b = make(2, 3), make((2, 3))
        assert a.shape == b.shape == (2, 3) and a.dtype == np.float32 and a.device == "numpy"
        if value is not None:
            np.testing.assert_array_equal(a.numpy(), np.full((2, 3), value))
    assert gpunet.zeros([4]).shape == (4,) and gpunet.zeros(()).shape == ()
    assert gpunet.zeros(2, dtype=gpunet.int64).dtype == np.int64
    assert gpunet.ones(2, requires_grad=True).requires_grad
    with gpunet.using(dtype="float64"):
        assert gpunet.zeros(2).dtype == np.float64


def test_full_eye_arange_linspace():
    assert gpunet.full((2, 2), 7.0).tolist() == [[7.0, 7.0], [7.0, 7.0]]
    assert gpunet.full((2,), 7.0).dtype == np.float32
    assert gpunet.full((2,), 3).dtype == np.int64 and gpunet.full((1,), True).dtype == np.bool_
    np.testing.assert_array_equal(gpunet.eye(3).numpy(), np.eye(3))
    np.testing.assert_array_equal(gpunet.eye(2, 3).numpy(), np.eye(2, 3))
    assert gpunet.arange(5).tolist() == [0, 1, 2, 3, 4] and gpunet.arange(5).dtype == np.int64
    assert gpunet.arange(1, 7, 2).tolist() == [1, 3, 5]
    np.testing.assert_allclose(gpunet.arange(0, 1, 0.25).numpy(), [0, 0.25, 0.5, 0.75])
    assert gpunet.arange(0, 1, 0.25).dtype == np.float32
    assert gpunet.arange(3, dtype=gpunet.float64).dtype == np.float64
    np.testing.assert_allclose(gpunet.linspace(0, 1, 5).numpy(), np.linspace(0, 1, 5))


def test_random_tensors_are_seeded_by_manual_seed():
    gpunet.manual_seed(3)
    a = (gpunet.rand(2, 3), gpunet.randn(4), gpunet.randint(0, 10, (5,)), gpunet.randperm(6))
    gpunet.manual_seed(3)
    b = (gpunet.rand(2, 3), gpunet.randn(4), gpunet.randint(0, 10, (5,)), gpunet.randperm(6))
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x.numpy(), y.numpy())
    rand, randn, ints, perm = a
    assert rand.dtype == np.float32 and ((rand.numpy() >= 0) & (rand.numpy() < 1)).all()
    assert randn.shape == (4,) and ints.dtype == np.int64 and ints.numpy().max() < 10
    assert sorted(perm.tolist()) == list(range(6))
    # drawn on the host with the library generator, as the weights are
    gpunet.manual_seed(5)
    expected = np.random.default_rng(5).standard_normal((3, 2)).astype(np.float32)
    np.testing.assert_array_equal(gpunet.randn(3, 2).numpy(), expected)


def test_randint_signatures():
    gpunet.manual_seed(0)
    high_only = gpunet.randint(3, (100,))
    assert set(high_only.tolist()) <= {0, 1, 2}
    ranged = gpunet.randint(5, 8, size=(2, 50))
    assert ranged.shape == (2, 50) and set(ranged.numpy().ravel().tolist()) <= {5, 6, 7}
    assert gpunet.randint(0, 2, (3,), dtype=gpunet.int32).dtype == np.int32


def test_like_forms_follow_the_model_tensor():
    x = gpunet.tensor([[1, 2, 3]], dtype=gpunet.int32)
    assert gpunet.zeros_like(x).dtype == np.int32 and gpunet.zeros_like(x).shape == (1, 3)
    assert gpunet.ones_like(x, dtype=gpunet.float64).dtype == np.float64
    assert gpunet.full_like(x, 4).tolist() == [[4, 4, 4]]
    assert gpunet.empty_like(x).shape == (1, 3)
    f = gpunet.zeros(2, 2)
    assert gpunet.rand_like(f).shape == (2, 2) and gpunet.randn_like(f).dtype == np.float32
    assert gpunet.randint_like(f, 5).dtype == np.float32 and gpunet.randint_like(x, 2, 4).numpy().min() >= 2
    with pytest.raises(OpError, match="rand_like: expected a floating dtype, got int32"):
        gpunet.rand_like(x)


def test_from_numpy_shares_memory_and_keeps_dtype():
    a = np.arange(4, dtype=np.int16)
    t = gpunet.from_numpy(a)
    a[0] = 9
    assert t.dtype == np.int16 and t.tolist() == [9, 1, 2, 3] and t.device == "numpy"
    with pytest.raises(OpError, match="from_numpy: expected a numpy.ndarray, got list"):
        gpunet.from_numpy([1, 2])


def test_dtypes_are_numpy_dtypes_with_pytorch_names():
    assert gpunet.float32 == np.float32 and gpunet.float == gpunet.float32
    assert gpunet.float64 == gpunet.double and gpunet.float16 == gpunet.half
    assert gpunet.int64 == gpunet.long and gpunet.int == gpunet.int32 and gpunet.bool == np.bool_
    assert gpunet.tensor([1.0]).dtype == gpunet.float32
    assert gpunet.tensor([1, 0]).to(gpunet.bool).dtype == gpunet.bool
    assert gpunet.get_default_dtype() == gpunet.float32


def test_top_level_joins_and_where():
    a, b = gpunet.ones(2, 3), gpunet.zeros(2, 3)
    assert gpunet.cat([a, b]).shape == (4, 3) and gpunet.cat([a, b], dim=1).shape == (2, 6)
    assert gpunet.concat((a, b), 1).shape == (2, 6)
    assert gpunet.stack([a, b]).shape == (2, 2, 3) and gpunet.stack([a, b], dim=2).shape == (2, 3, 2)
    x = gpunet.tensor([-1.0, 2.0, -3.0])
    assert gpunet.where(x > 0, x, gpunet.zeros(3)).tolist() == [0.0, 2.0, 0.0]
    assert gpunet.where(x > 0, 1.0, 0.0).tolist() == [0.0, 1.0, 0.0]
    idx, = gpunet.where(x < 0)
    assert idx.tolist() == [0, 2] and gpunet.is_tensor(idx) and not gpunet.is_tensor(idx.numpy())


@pytest.mark.parametrize("call, message", [
    (lambda: gpunet.zeros(2, -1), r"zeros: expected the size as non-negative ints, got \(2, -1\)"),
    (lambda: gpunet.ones(2.5), r"ones: expected the size as non-negative ints, got \(2.5,\)"),
    (lambda: gpunet.full((2,), "x"), "full: expected a number fill_value, got str"),
    (lambda: gpunet.arange(0, 5, 0), "arange: expected a non-zero step, got 0"),
    (lambda: gpunet.arange("a"), "arange: expected numbers for start, end and step"),
    (lambda: gpunet.randint(5, 5, (2,)), "randint: expected low < high, got low=5, high=5"),
    (lambda: gpunet.randint(5), "randint: expected a size tuple"),
    (lambda: gpunet.randint(0.5, 3, (2,)), "randint: expected int bounds"),
    (lambda: gpunet.randn(2, dtype=gpunet.int64), "randn: expected a floating dtype, got int64"),
    (lambda: gpunet.zeros(2, requires_grad=True, dtype=gpunet.int64), "requires_grad_: expected a floating"),
    (lambda: gpunet.zeros_like(np.zeros(2)), "zeros_like: expected a Tensor, got ndarray"),
])
def test_creation_errors_name_the_op(call, message):
    with pytest.raises(OpError, match=message):
        call()


def test_unknown_device_is_a_backend_error():
    with pytest.raises(gpunet.BackendError, match="zeros: expected a device 'cpu', 'cuda'"):
        gpunet.zeros(2, device="tpu")
    assert gpunet.zeros(2, device="cpu").device == "numpy"
