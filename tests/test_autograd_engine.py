"""The backward engine's contract: leaf gradients never alias, freed graphs and bad gradients are refused."""

from __future__ import annotations

import numpy
import pytest

import gpunet
from gpunet.autograd import OpError, Tensor


def leaves(*values):
    return [Tensor(numpy.asarray(v, dtype=numpy.float32), requires_grad=True) for v in values]


def test_two_leaves_of_one_add_get_separate_gradients():
    a, b = leaves([1.0, 2.0], [3.0, 4.0])
    (a + b).sum().backward()
    assert not numpy.shares_memory(a.grad, b.grad)
    a.grad *= 10  # what clip_grad_norm does in place
    numpy.testing.assert_array_equal(b.grad, [1.0, 1.0])


def test_a_leaf_fed_to_sum_gets_a_writable_gradient_of_its_own():
    (a,) = leaves([1.0, 2.0, 3.0])
    a.sum().backward()
    assert 0 not in a.grad.strides and a.grad.flags.writeable
    a.grad += 1
    numpy.testing.assert_array_equal(a.grad, [2.0, 2.0, 2.0])


def test_views_of_one_gradient_are_not_shared_between_leaves():
    a, b = leaves([[1.0, 2.0]], [1.0, 2.0])
    (a + b.reshape(1, 2)).sum().backward()
    assert not numpy.shares_memory(a.grad, b.grad)


def test_second_backward_through_a_freed_graph_says_how_to_keep_it():
    (a,) = leaves([1.0, 2.0])
    loss = (a * 2).sum()
    loss.backward()
    with pytest.raises(OpError, match="retain_graph=True"):
        loss.backward()


def test_shared_subgraph_freed_by_the_first_loss_is_refused_for_the_second():
    (a,) = leaves([1.0, 2.0])
    h = a * 2
    first, second = h.sum(), (h * 3).sum()
    first.backward()
    with pytest.raises(OpError, match="was freed by an earlier backward"):
        second.backward()


def test_retain_graph_allows_two_passes_that_accumulate():
    (a,) = leaves([1.0, 2.0])
    loss = (a * a).sum()
    loss.backward(retain_graph=True)
    loss.backward()
    numpy.testing.assert_allclose(a.grad, [4.0, 8.0])


@pytest.mark.parametrize("grad, message", [
    (numpy.ones(3, dtype=numpy.float32), r"expected grad of shape \(2,\) and dtype float32, got \(3,\) float32"),
    (numpy.ones(2, dtype=numpy.float64), r"expected grad of shape \(2,\) and dtype float32, got \(2,\) float64"),
])
def test_explicit_gradient_is_checked(grad, message):
    (a,) = leaves([1.0, 2.0])
    with pytest.raises(OpError, match=message):
        (a * 3).backward(grad)


def test_explicit_gradient_of_the_right_shape_is_used():
    (a,) = leaves([1.0, 2.0])
    (a * 3).backward(gpunet.tensor([1.0, 2.0]))
    numpy.testing.assert_allclose(a.grad, [3.0, 6.0])


def test_leaf_gradient_is_not_copied_when_a_freed_owner_id_comes_back():
    """A gradient array freed during backward may leave its id to a new array; the new one must
    not be taken for a shared owner (that made a spurious copy: one more device op per step)."""
    import numpy as np

    from gpunet.autograd import Tensor, _LeafGrads

    leaves = _LeafGrads()
    for _ in range(50):
        a, b = Tensor(np.zeros(3)), Tensor(np.zeros(3))
        first = np.ones(3)
        leaves.add(a, first)
        a.grad = None
        del first  # with only its id remembered, this id could be handed to the next array
        second = np.ones(3)
        leaves.add(b, second)
        assert b.grad is second
