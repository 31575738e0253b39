"""The backward engine: order, accumulation, broadcasting, no_grad, graph release."""

from __future__ import annotations

import gc
import weakref

import numpy as np
import pytest

import gpunet
from gpunet import Tensor
from gpunet import functional as F


def leaf(values, requires_grad=True):
    return Tensor(np.asarray(values, dtype=np.float64), requires_grad=requires_grad)


def test_diamond_graph_accumulates_in_topological_order():
    x = leaf(3.0)
    a = x * x          # 9, da/dx = 6
    b = a * 2.0        # 18
    c = a + x          # 12
    y = b * c          # 216; dy/dx = c*2*6 + b*(6+1) = 144 + 126 = 270
    y.backward()
    assert x.grad == pytest.approx(270.0)


def test_tensor_used_twice_gets_summed_gradient():
    x = leaf([1.0, 2.0])
    (x * x + x).sum().backward()
    np.testing.assert_allclose(x.grad, [3.0, 5.0])


def test_leaf_grads_accumulate_over_backward_calls_until_zeroed():
    x = leaf(2.0)
    (x * 3.0).backward()
    (x * 3.0).backward()
    assert x.grad == pytest.approx(6.0)
    x.zero_grad()
    assert x.grad is None


def test_broadcast_gradients_reduce_to_the_input_shape():
    x = leaf(np.ones((4, 3)))
    b = leaf(np.ones((1, 3)))
    s = leaf(2.0)
    ((x + b) * s).sum().backward()
    assert b.grad.shape == (1, 3) and np.allclose(b.grad, 8.0)
    assert s.grad.shape == () and s.grad == pytest.approx(24.0)


def test_no_grad_records_nothing():
    x = leaf(1.0)
    with gpunet.no_grad():
        y = x * 2.0
        assert not gpunet.is_grad_enabled()
    assert y.creator is None and not y.requires_grad
    assert gpunet.is_grad_enabled()


def test_graph_is_released_after_backward():
    x = leaf(np.ones(3))
    y = F.tanh(x * 2.0)
    func_ref = weakref.ref(y.creator)
    loss = y.sum()
    loss.backward()
    assert y.creator is None and loss.creator is None
    del loss, y
    gc.collect()
    assert func_ref() is None


def test_retain_graph_allows_a_second_backward():
    x = leaf(2.0)
    y = x * x
    y.backward(retain_graph=True)
    y.backward()
    assert x.grad == pytest.approx(8.0)


def test_backward_of_non_scalar_needs_a_gradient():
    x = leaf([1.0, 2.0])
    with pytest.raises(gpunet.OpError, match="one-element"):
        (x * 2.0).backward()
    (x * 2.0).backward(np.array([1.0, 10.0]))
    np.testing.assert_allclose(x.grad, [2.0, 20.0])


def test_python_scalars_keep_the_tensor_dtype():
    x = Tensor(np.ones(2, dtype=np.float32))
    assert (x * 2.5).dtype == np.float32
    assert (1.0 - x).dtype == np.float32
    assert (x / 3).dtype == np.float32


def test_inputs_not_requiring_grad_get_none():
    x = leaf([1.0, 2.0])
    c = leaf([3.0, 4.0], requires_grad=False)
    (x * c).sum().backward()
    assert c.grad is None
    np.testing.assert_allclose(x.grad, [3.0, 4.0])


def test_long_chain_does_not_recurse():
    x = leaf(1.0)
    y = x
    for _ in range(5000):
        y = y + 0.0
    y.backward()
    assert x.grad == pytest.approx(1.0)


def test_shape_error_names_the_op():
    with pytest.raises(gpunet.OpError, match=r"matmul: expected .*\(2, 3\) @ \(4, 5\)"):
        _ = leaf(np.ones((2, 3))) @ leaf(np.ones((4, 5)))
    with pytest.raises(gpunet.OpError, match="add: cannot apply to inputs of shapes"):
        _ = leaf(np.ones((2, 3))) + leaf(np.ones((4,)))
