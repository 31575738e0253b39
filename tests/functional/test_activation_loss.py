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


# ----- issue 12: gelu, leaky_relu, softmax(dim=), losses with PyTorch's arguments --------------------
def _erf(v):
    import math
    return np.vectorize(math.erf)(v)


def test_gelu_and_leaky_relu_forward_and_gradcheck():
    exact = X * 0.5 * (1 + _erf(X / np.sqrt(2)))
    np.testing.assert_allclose(F.gelu(Tensor(X.copy())).data, exact, rtol=1e-12, atol=1e-12)
    approx = 0.5 * X * (1 + np.tanh(np.sqrt(2 / np.pi) * (X + 0.044715 * X ** 3)))
    np.testing.assert_allclose(F.gelu(Tensor(X.copy()), approximate="tanh").data, approx, rtol=1e-12)
    np.testing.assert_allclose(F.leaky_relu(Tensor(X.copy()), 0.2).data, np.where(X > 0, X, 0.2 * X))
    assert gradcheck(F.gelu, [X.copy()])
    assert gradcheck(lambda x: F.gelu(x, approximate="tanh"), [X.copy()])
    assert gradcheck(lambda x: F.leaky_relu(x, 0.2), [X.copy()])
    with pytest.raises(gpunet.OpError, match="gelu: expected approximate"):
        F.gelu(Tensor(X), approximate="fast")


def test_softmax_takes_dim_and_axis():
    np.testing.assert_allclose(F.softmax(Tensor(X), dim=0).data, np_softmax(X, axis=0))
    np.testing.assert_allclose(F.log_softmax(Tensor(X), dim=1).data, np.log(np_softmax(X, axis=1)))
    with pytest.raises(gpunet.OpError, match="expected an int dim in"):
        F.softmax(Tensor(X), dim=2)


T_REG = rng.standard_normal((4, 5))
PROBS = 1 / (1 + np.exp(-X))
BITS = (rng.random((4, 5)) > 0.5).astype(np.float64)
LABELS = np.array([0, 3, 4, 1])
WEIGHT = np.array([0.5, 1.0, 2.0, 1.5, 0.7])


def _reduce(v, reduction):
    return v.mean() if reduction == "mean" else v.sum() if reduction == "sum" else v


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_regression_losses_reductions(reduction):
    mse = F.mse_loss(Tensor(X), T_REG, reduction=reduction).data
    np.testing.assert_allclose(mse, _reduce((X - T_REG) ** 2, reduction))
    l1 = F.l1_loss(Tensor(X), T_REG, reduction=reduction).data
    np.testing.assert_allclose(l1, _reduce(np.abs(X - T_REG), reduction))
    assert gradcheck(lambda x, t: F.mse_loss(x, t, reduction=reduction), [X.copy(), T_REG.copy()])
    assert gradcheck(lambda x, t: F.l1_loss(x, t, reduction=reduction), [X.copy(), T_REG.copy()])


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_binary_losses_reductions_weights(reduction):
    ref = -(BITS * np.log(PROBS) + (1 - BITS) * np.log(1 - PROBS)) * WEIGHT
    got = F.binary_cross_entropy(Tensor(PROBS), BITS, weight=WEIGHT, reduction=reduction).data
    np.testing.assert_allclose(got, _reduce(ref, reduction), rtol=1e-12)
    pw = np.array([1.0, 2.0, 0.5, 3.0, 1.0])
    ref = -(pw * BITS * np.log(PROBS) + (1 - BITS) * np.log(1 - PROBS)) * WEIGHT
    got = F.binary_cross_entropy_with_logits(Tensor(X), BITS, weight=WEIGHT, reduction=reduction, pos_weight=pw).data
    np.testing.assert_allclose(got, _reduce(ref, reduction), rtol=1e-10)
    assert gradcheck(lambda p, t: F.binary_cross_entropy(p, t, weight=WEIGHT, reduction=reduction),
                     [PROBS.copy(), BITS.copy()])
    assert gradcheck(lambda x, t: F.binary_cross_entropy_with_logits(x, t, weight=WEIGHT, reduction=reduction,
                                                                     pos_weight=pw), [X.copy(), BITS.copy()])


def test_binary_cross_entropy_clamps_logs_and_checks_range():
    out = F.binary_cross_entropy(Tensor(np.array([0.0, 1.0])), np.array([1.0, 0.0]))
    assert out.item() == pytest.approx(100.0)
    with pytest.raises(gpunet.OpError, match=r"expected input probabilities in \[0, 1\]"):
        F.binary_cross_entropy(Tensor(np.array([1.5])), np.array([1.0]))


def _ce_ref(x, labels, weight=None, ignore_index=-100, reduction="mean", smoothing=0.0):
    logp = np.log(np_softmax(x, axis=1))
    c = x.shape[1]
    w = np.ones(c) if weight is None else weight
    keep = labels != ignore_index
    safe = np.where(keep, labels, 0)
    nll = -w[safe] * logp[np.arange(len(labels)), safe] * keep
    smooth = -(logp * w).sum(axis=1) * keep
    loss = (1 - smoothing) * nll + smoothing / c * smooth
    if reduction == "mean":
        return loss.sum() / (w[safe] * keep).sum()
    return loss.sum() if reduction == "sum" else loss


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weight", [None, WEIGHT])
@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_cross_entropy_options_against_reference(reduction, weight, smoothing):
    labels = np.array([0, 3, -100, 1])
    kwargs = dict(weight=weight, ignore_index=-100, reduction=reduction, label_smoothing=smoothing)
    got = F.cross_entropy(Tensor(X), labels, **kwargs).data
    np.testing.assert_allclose(got, _ce_ref(X, labels, weight, -100, reduction, smoothing), rtol=1e-12)
    assert gradcheck(lambda x: F.cross_entropy(x, labels, **kwargs), [X.copy()])


def test_nll_loss_and_k_dim_and_probability_targets():
    logp = np.log(np_softmax(X, axis=1))
    np.testing.assert_allclose(F.nll_loss(Tensor(logp), LABELS, weight=WEIGHT).data,
                               _ce_ref(X, LABELS, WEIGHT), rtol=1e-12)
    assert gradcheck(lambda x: F.nll_loss(x, LABELS, weight=WEIGHT, reduction="sum"), [logp.copy()])
    x4 = rng.standard_normal((2, 3, 2, 2))
    t4 = rng.integers(0, 3, size=(2, 2, 2))
    flat = x4.transpose(0, 2, 3, 1).reshape(-1, 3)
    np.testing.assert_allclose(F.cross_entropy(Tensor(x4), t4).data, _ce_ref(flat, t4.reshape(-1)), rtol=1e-12)
    assert F.cross_entropy(Tensor(x4), t4, reduction="none").shape == (2, 2, 2)
    assert gradcheck(lambda x: F.cross_entropy(x, t4, label_smoothing=0.1), [x4.copy()])
    soft = np_softmax(rng.standard_normal((4, 5)), axis=1)
    ref = -(soft * np.log(np_softmax(X, axis=1))).sum(axis=1).mean()
    assert F.cross_entropy(Tensor(X), soft).item() == pytest.approx(ref)
    assert gradcheck(lambda x: F.cross_entropy(x, soft, label_smoothing=0.3), [X.copy()])


def test_loss_input_checks():
    with pytest.raises(gpunet.OpError, match="cross_entropy: expected a floating input"):
        F.cross_entropy(Tensor(np.zeros((2, 3), dtype=np.int64)), np.array([0, 1]))
    with pytest.raises(gpunet.OpError, match="expected reduction in"):
        F.mse_loss(Tensor(X), T_REG, reduction="avg")
    with pytest.raises(gpunet.OpError, match=r"got range \[0, 9223372036854775808\]"):
        F.cross_entropy(Tensor(X), np.array([0, 1, 2, 2 ** 63], dtype=np.uint64))
    with pytest.raises(gpunet.OpError, match=r"expected weight of shape \(5,\)"):
        F.cross_entropy(Tensor(X), LABELS, weight=np.ones(3))


def test_float32_losses_stay_float32():
    x32 = Tensor(X.astype(np.float32))
    assert F.cross_entropy(x32, LABELS, weight=WEIGHT, label_smoothing=0.1).dtype == np.float32
    assert F.binary_cross_entropy_with_logits(x32, BITS, pos_weight=WEIGHT).dtype == np.float32
    assert F.mse_loss(x32, T_REG.astype(np.float32)).dtype == np.float32


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_losses_match_pytorch(reduction):
    torch = pytest.importorskip("torch")
    tF = torch.nn.functional
    tx = torch.tensor(X)
    labels = np.array([0, 3, 2, 1])
    pairs = [
        (F.cross_entropy(Tensor(X), labels, weight=WEIGHT, ignore_index=2, reduction=reduction, label_smoothing=0.1),
         tF.cross_entropy(tx, torch.tensor(labels), weight=torch.tensor(WEIGHT), ignore_index=2, reduction=reduction,
                          label_smoothing=0.1)),
        (F.nll_loss(F.log_softmax(Tensor(X), dim=1), labels, weight=WEIGHT, reduction=reduction),
         tF.nll_loss(tF.log_softmax(tx, 1), torch.tensor(labels), weight=torch.tensor(WEIGHT), reduction=reduction)),
        (F.binary_cross_entropy_with_logits(Tensor(X), BITS, pos_weight=WEIGHT, reduction=reduction),
         tF.binary_cross_entropy_with_logits(tx, torch.tensor(BITS), pos_weight=torch.tensor(WEIGHT),
                                             reduction=reduction)),
        (F.binary_cross_entropy(Tensor(PROBS), BITS, reduction=reduction),
         tF.binary_cross_entropy(torch.tensor(PROBS), torch.tensor(BITS), reduction=reduction)),
        (F.l1_loss(Tensor(X), T_REG, reduction=reduction), tF.l1_loss(tx, torch.tensor(T_REG), reduction=reduction)),
        (F.mse_loss(Tensor(X), T_REG, reduction=reduction), tF.mse_loss(tx, torch.tensor(T_REG), reduction=reduction)),
    ]
    for ours, theirs in pairs:
        np.testing.assert_allclose(ours.data, theirs.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(F.gelu(Tensor(X)).data, tF.gelu(tx).numpy(), rtol=1e-12)
    np.testing.assert_allclose(F.gelu(Tensor(X), "tanh").data, tF.gelu(tx, approximate="tanh").numpy(), rtol=1e-12)
    np.testing.assert_allclose(F.leaky_relu(Tensor(X), 0.3).data, tF.leaky_relu(tx, 0.3).numpy())
