"""Activations, softmax/log_softmax and losses: forward vs NumPy references, gradcheck, stability."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from property_strategies import FEW, MAX_SIDE, SETTINGS, arrays, away_from_zero, shapes

from gpunet import functional as F
from gpunet.autograd import Tensor
from gpunet.testing import gradcheck

huge = st.floats(-1e4, 1e4, allow_nan=False, width=64)


def np_log_softmax(x: numpy.ndarray, axis: int) -> numpy.ndarray:
    shifted = x - x.max(axis=axis, keepdims=True)
    return shifted - numpy.log(numpy.exp(shifted).sum(axis=axis, keepdims=True))


ACTIVATIONS: dict[str, tuple[Callable[[Any], Any], Callable[[Any], Any], Any]] = {
    "identity": (F.identity, lambda x: x, arrays(shapes)),
    "sigmoid": (F.sigmoid, lambda x: 1.0 / (1.0 + numpy.exp(-x)), arrays(shapes)),
    "tanh": (F.tanh, numpy.tanh, arrays(shapes)),
    "relu": (F.relu, lambda x: numpy.maximum(x, 0.0), arrays(shapes, away_from_zero(1e-3))),
}


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
@SETTINGS
@given(data=st.data())
def test_activation(name: str, data: st.DataObject) -> None:
    ours, reference, strategy = ACTIVATIONS[name]
    x = data.draw(strategy)
    numpy.testing.assert_allclose(ours(Tensor(x)).data, reference(x), rtol=1e-12, atol=1e-15)
    assert gradcheck(ours, [x.copy()])


@FEW
@given(x=arrays(shapes, huge))
def test_step_and_saturating_activations_stay_finite(x: numpy.ndarray) -> None:
    numpy.testing.assert_array_equal(F.step(Tensor(x)).data, (x > 0).astype(x.dtype))
    s, t = F.sigmoid(Tensor(x)).data, F.tanh(Tensor(x)).data
    assert numpy.isfinite(s).all() and ((s >= 0) & (s <= 1)).all()
    assert numpy.isfinite(t).all() and (numpy.abs(t) <= 1).all()
    leaf = Tensor(x.copy(), requires_grad=True)
    F.step(leaf).sum().backward()
    assert not leaf.grad.any()


@st.composite
def softmax_case(draw: Any, values: Any = None) -> tuple[numpy.ndarray, int]:
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=MAX_SIDE))
    axis = draw(st.integers(-len(shape), len(shape) - 1))
    shape = tuple(max(s, 1) if i == axis % len(shape) else s for i, s in enumerate(shape))  # axis not empty
    return draw(arrays(shape, values) if values is not None else arrays(shape)), axis


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@SETTINGS
@given(case=softmax_case())
def test_softmax(name: str, case: tuple[numpy.ndarray, int]) -> None:
    x, axis = case
    expected = np_log_softmax(x, axis)
    if name == "softmax":
        expected = numpy.exp(expected)
    ours = getattr(F, name)
    numpy.testing.assert_allclose(ours(Tensor(x), axis=axis).data, expected, rtol=1e-12, atol=1e-14)
    assert gradcheck(lambda t: ours(t, axis=axis), [x.copy()])


@FEW
@given(case=softmax_case(huge), shift=huge)
def test_softmax_is_stable_and_shift_invariant(case: tuple[numpy.ndarray, int], shift: float) -> None:
    x, axis = case
    y = F.softmax(Tensor(x), axis=axis).data
    log_y = F.log_softmax(Tensor(x), axis=axis).data
    assert numpy.isfinite(y).all() and numpy.isfinite(log_y).all()
    numpy.testing.assert_allclose(y.sum(axis=axis), 1.0, rtol=1e-12)
    numpy.testing.assert_allclose(F.softmax(Tensor(x + shift), axis=axis).data, y, atol=1e-9)


# ----- losses ------------------------------------------------------------------------------
batches = hnp.array_shapes(min_dims=1, max_dims=2, min_side=1, max_side=MAX_SIDE)
probabilities = st.floats(0.0, 1.0, width=64)


@SETTINGS
@given(data=st.data())
def test_mse_loss(data: st.DataObject) -> None:
    shape = data.draw(batches)
    x, t = data.draw(arrays(shape)), data.draw(arrays(shape))
    numpy.testing.assert_allclose(F.mse_loss(Tensor(x), Tensor(t)).data, ((x - t) ** 2).mean(), rtol=1e-12)
    assert gradcheck(F.mse_loss, [x.copy(), t.copy()])


@SETTINGS
@given(data=st.data())
def test_binary_cross_entropy_with_logits(data: st.DataObject) -> None:
    shape = data.draw(batches)
    x, t = data.draw(arrays(shape)), data.draw(arrays(shape, probabilities))
    expected = (numpy.logaddexp(0.0, x) - x * t).mean()
    numpy.testing.assert_allclose(F.binary_cross_entropy_with_logits(Tensor(x), Tensor(t)).data, expected,
                                  rtol=1e-12, atol=1e-15)
    assert gradcheck(F.binary_cross_entropy_with_logits, [x.copy(), t.copy()])


@st.composite
def classification(draw: Any, values: Any = None) -> tuple[numpy.ndarray, numpy.ndarray]:
    n, c = draw(st.integers(1, MAX_SIDE)), draw(st.integers(1, MAX_SIDE))
    logits = draw(arrays((n, c), values) if values is not None else arrays((n, c)))
    labels = draw(hnp.arrays(numpy.int64, (n,), elements=st.integers(0, c - 1)))
    return logits, labels


@SETTINGS
@given(case=classification())
def test_cross_entropy(case: tuple[numpy.ndarray, numpy.ndarray]) -> None:
    x, labels = case
    expected = -np_log_softmax(x, 1)[numpy.arange(len(labels)), labels].mean()
    numpy.testing.assert_allclose(F.cross_entropy(Tensor(x), labels).data, expected, rtol=1e-12, atol=1e-15)
    assert gradcheck(F.cross_entropy, [x.copy(), labels])


@FEW
@given(case=classification(huge))
def test_losses_stay_finite_for_huge_logits(case: tuple[numpy.ndarray, numpy.ndarray]) -> None:
    x, labels = case
    assert numpy.isfinite(F.cross_entropy(Tensor(x), labels).data)
    target = (labels[:, None] % 2).astype(numpy.float64) * numpy.ones_like(x)
    assert numpy.isfinite(F.binary_cross_entropy_with_logits(Tensor(x), Tensor(target)).data)
    leaf = Tensor(x.copy(), requires_grad=True)
    F.cross_entropy(leaf, labels).backward()
    assert numpy.isfinite(leaf.grad).all()


@SETTINGS
@given(data=st.data())
def test_perceptron_loss(data: st.DataObject) -> None:
    shape = data.draw(batches)
    x = data.draw(arrays(shape, away_from_zero(1e-3)))
    t = data.draw(hnp.arrays(numpy.float64, shape, elements=st.sampled_from([0.0, 1.0])))
    expected = numpy.maximum(-(2 * t - 1) * x, 0.0).mean()
    numpy.testing.assert_allclose(F.perceptron_loss(Tensor(x), Tensor(t)).data, expected, rtol=1e-12)
    assert gradcheck(F.perceptron_loss, [x.copy(), t.copy()], check=[True, False])
