"""Activations and losses: forward against NumPy references, backward by gradcheck."""

from __future__ import annotations

import numpy as np
import pytest

import gpunet
from gpunet import Tensor
from gpunet import functional as F
from gpunet.testing import gradcheck

rng = np.random.default_rng(1)
X = rng.standard_normal((4, 5))


def np_softmax(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


ACTIVATIONS = {
    "identity": (F.identity, lambda x: x),
    "sigmoid": (F.sigmoid, lambda x: 1 / (1 + np.exp(-x))),
    "tanh": (F.tanh, np.tanh),
    "relu": (F.relu, lambda x: np.maximum(x, 0)),
    "softmax": (F.softmax, np_softmax),
    "softmax_axis0": (lambda x: F.softmax(x, axis=0), lambda x: np_softmax(x, axis=0)),
    "log_softmax": (F.log_softmax, lambda x: np.log(np_softmax(x))),
}


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_forward_and_gradcheck(name):
    op, ref = ACTIVATIONS[name]
    np.testing.assert_allclose(op(Tensor(X.copy())).data, ref(X), rtol=1e-12, atol=1e-12)
    assert gradcheck(op, [X.copy()])


def test_step_is_the_heaviside_function_with_zero_gradient():
    x = Tensor(np.array([-1.0, 0.0, 2.0]), requires_grad=True)
    y = F.step(x)
    np.testing.assert_array_equal(y.data, [0.0, 0.0, 1.0])
    y.sum().backward()
    np.testing.assert_array_equal(x.grad, [0.0, 0.0, 0.0])


def test_sigmoid_and_softmax_do_not_overflow():
    big = Tensor(np.array([[-1000.0, 0.0, 1000.0]]))
    assert np.isfinite(F.sigmoid(big).data).all()
    assert np.isfinite(F.log_softmax(big).data).all()
    assert np.isfinite(F.cross_entropy(big, np.array([0])).data)


def test_mse_loss():
    t = rng.standard_normal((4, 5))
    assert F.mse_loss(Tensor(X), t).item() == pytest.approx(((X - t) ** 2).mean())
    assert gradcheck(lambda x: F.mse_loss(x, t), [X.copy()])


def test_bce_with_logits_matches_definition_and_is_stable():
    t = (rng.random((4, 5)) > 0.5).astype(np.float64)
    s = 1 / (1 + np.exp(-X))
    ref = -(t * np.log(s) + (1 - t) * np.log(1 - s)).mean()
    assert F.binary_cross_entropy_with_logits(Tensor(X), t).item() == pytest.approx(ref)
    assert gradcheck(lambda x: F.binary_cross_entropy_with_logits(x, t), [X.copy()])
    huge = F.binary_cross_entropy_with_logits(Tensor(np.array([500.0, -500.0])), np.array([0.0, 1.0]))
    assert huge.item() == pytest.approx(500.0)


def test_cross_entropy_matches_definition():
    labels = np.array([0, 3, 4, 1])
    ref = -np.log(np_softmax(X)[np.arange(4), labels]).mean()
    assert F.cross_entropy(Tensor(X), labels).item() == pytest.approx(ref)
    assert gradcheck(lambda x: F.cross_entropy(x, labels), [X.copy()])


def test_perceptron_loss_is_rosenblatts_rule():
    z = np.array([[0.5], [-0.2], [1.0], [-2.0]])
    t = np.array([[1.0], [1.0], [0.0], [0.0]])  # rows 1 and 2 are misclassified
    loss = F.perceptron_loss(Tensor(z), t)
    assert loss.item() == pytest.approx((0.2 + 1.0) / 4)
    assert gradcheck(lambda x: F.perceptron_loss(x, t), [z.copy() + 0.01])


def test_loss_errors_name_the_op_and_shapes():
    with pytest.raises(gpunet.OpError, match=r"mse_loss: expected target of shape \(4, 5\)"):
        F.mse_loss(Tensor(X), np.zeros((5, 4)))
    with pytest.raises(gpunet.OpError, match="cross_entropy: expected integer class labels"):
        F.cross_entropy(Tensor(X), np.zeros(4))
    with pytest.raises(gpunet.OpError, match=r"labels must lie in \[0, 5\)"):
        F.cross_entropy(Tensor(X), np.array([0, 1, 2, 9]))
    with pytest.raises(gpunet.OpError, match=r"expected labels of shape \(\) for input of shape \(5,\)"):
        F.cross_entropy(Tensor(X[0]), np.array([1]))  # unbatched (C,) logits take a 0-d label
    with pytest.raises(ValueError, match="activation: expected one of"):
        F.get_activation("swish")
