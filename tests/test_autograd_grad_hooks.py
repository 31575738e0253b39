"""Tensor.register_post_accumulate_grad_hook: fired once per backward, after a leaf's last contribution."""

from __future__ import annotations

import numpy

import gpunet
from gpunet import functional as F


def _leaf(values):
    return gpunet.tensor(numpy.asarray(values, dtype="float32"), requires_grad=True)


def test_hook_sees_the_complete_gradient_of_a_leaf_used_twice():
    w = _leaf([1.0, 2.0])
    seen = []
    w.register_post_accumulate_grad_hook(lambda t: seen.append(t.grad.copy()))
    a = w * 3.0          # first use
    b = (a + w).sum()    # second use, far from the first in the graph
    b.backward()
    assert len(seen) == 1
    numpy.testing.assert_allclose(seen[0], [4.0, 4.0])


def test_hook_order_follows_the_backward_pass_and_fires_once_each():
    gpunet.manual_seed(0)
    net = gpunet.nn.MLP([3, 4, 2])
    fired = []
    for name, p in net.named_parameters():
        p.register_post_accumulate_grad_hook(lambda t, name=name: fired.append((name, t.grad is not None)))
    loss = net(gpunet.tensor(numpy.ones((5, 3), "float32"))).sum()
    loss.backward()
    names = [n for n, _ in fired]
    assert sorted(names) == sorted(n for n, _ in net.named_parameters())
    assert all(ok for _, ok in fired)
    # the output layer's gradients are complete before the first layer's (reverse order)
    assert max(names.index("2.weight"), names.index("2.bias")) < min(names.index("0.weight"),
                                                                     names.index("0.bias"))


def test_hook_fires_for_a_leaf_root_and_can_be_removed():
    w = _leaf([1.0])
    calls = []
    handle = w.register_post_accumulate_grad_hook(lambda t: calls.append(float(t.grad[0])))
    w.backward(numpy.ones(1, "float32"))
    handle.remove()
    handle.remove()  # idempotent
    w.backward(numpy.ones(1, "float32"))
    assert calls == [1.0]


def test_hook_fires_per_backward_with_accumulated_grad():
    w = _leaf([2.0])
    calls = []
    w.register_post_accumulate_grad_hook(lambda t: calls.append(float(t.grad[0])))
    for _ in range(2):
        F.mul(w, w).sum().backward()
    assert calls == [4.0, 8.0]


def test_hook_must_be_callable():
    import pytest

    with pytest.raises(TypeError, match="callable"):
        _leaf([1.0]).register_post_accumulate_grad_hook(3)
