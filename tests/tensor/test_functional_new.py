"""``one_hot``, ``pad``, ``where``, ``cat``/``stack`` and ``softmax(dim=)`` beyond the case table."""

from __future__ import annotations

import numpy as np

import gpunet
from gpunet import Tensor
from gpunet import functional as F
from gpunet.testing import gradcheck


def test_one_hot_values_shape_and_dtype():
    labels = gpunet.tensor([[0, 2], [1, 1]])
    out = F.one_hot(labels, num_classes=4)
    assert out.shape == (2, 2, 4) and out.dtype == np.int64 and not out.requires_grad
    np.testing.assert_array_equal(out.numpy(), np.eye(4, dtype=np.int64)[labels.numpy()])
    assert F.one_hot(gpunet.tensor([0, 2])).shape == (2, 3)  # inferred from the largest label
    assert F.one_hot(np.array([1]), 2).tolist() == [[0, 1]]


def test_pad_follows_pytorch_order_and_counts():
    x = gpunet.ones(1, 2, 3)
    assert F.pad(x, (1, 1)).shape == (1, 2, 5)
    assert F.pad(x, (1, 1, 2, 0)).shape == (1, 4, 5)
    assert F.pad(x, (0, 0, 0, 0, 1, 1)).shape == (3, 2, 3)
    padded = F.pad(gpunet.tensor([[1.0, 2.0]]), (2, 0), value=9.0)
    assert padded.tolist() == [[9.0, 9.0, 1.0, 2.0]]
    assert F.pad(gpunet.tensor([1, 2]), (1, 0)).dtype == np.int64


def test_softmax_dim_on_the_module_shapes():
    x = Tensor(np.random.default_rng(0).standard_normal((2, 3, 4)))
    for dim in (0, 1, 2, -1):
        np.testing.assert_allclose(F.softmax(x, dim=dim).numpy().sum(axis=dim), 1.0)
        np.testing.assert_allclose(np.exp(F.log_softmax(x, dim=dim).numpy()).sum(axis=dim), 1.0)


def test_stack_of_many_and_mixed_gradients():
    rng = np.random.default_rng(0)
    xs = [rng.standard_normal((2, 2)) for _ in range(4)]
    assert gradcheck(lambda *ts: F.stack(list(ts), dim=1) ** 2, xs)
    assert gradcheck(lambda *ts: F.cat(list(ts), dim=-1) * 3.0, xs)
    a = Tensor(xs[0], requires_grad=True)
    F.stack([a, Tensor(xs[1])]).sum().backward()
    np.testing.assert_array_equal(a.grad, np.ones((2, 2)))


def test_where_condition_may_be_a_tensor_or_array_and_grad_splits():
    a = Tensor(np.array([1.0, -2.0, 3.0]), requires_grad=True)
    b = Tensor(np.array([5.0, 5.0, 5.0]), requires_grad=True)
    F.where(a > 0, a, b).sum().backward()
    np.testing.assert_array_equal(a.grad, [1, 0, 1])
    np.testing.assert_array_equal(b.grad, [0, 1, 0])
    assert F.where([True, False, True], a, b).tolist() == [1.0, 5.0, 3.0]


def test_existing_functional_names_keep_their_numpy_spellings():
    x = Tensor(np.arange(6.0).reshape(2, 3))
    assert F.sum(x, axis=1, keepdims=True).shape == (2, 1)
    assert F.mean(x, 0).shape == (3,) and F.max(x, axis=0).tolist() == [3.0, 4.0, 5.0]
    assert F.concat([x, x], axis=1).shape == (2, 6) and F.flatten(Tensor(np.ones((2, 3, 4)))).shape == (2, 12)
    assert F.softmax(x, axis=0).shape == (2, 3) and F.log_softmax(x, -1).shape == (2, 3)
