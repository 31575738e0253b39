"""Elementwise ops with broadcasting (size-1 and empty dimensions): forward vs NumPy, gradcheck."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from property_strategies import (
    FEW,
    MAX_SIDE,
    SETTINGS,
    arrays,
    assert_grads_have_input_shapes,
    away_from_zero,
    finite,
    leaves,
    nonempty_shapes,
    positive,
    shapes,
)

from gpunet import functional as F
from gpunet.autograd import Function, Tensor
from gpunet.testing import GradcheckError, gradcheck

pairs = hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, min_side=0, max_side=MAX_SIDE)

BINARY: dict[str, tuple[Callable[[Any, Any], Any], Callable[[Any, Any], Any]]] = {
    "add": (F.add, numpy.add),
    "sub": (F.sub, numpy.subtract),
    "mul": (F.mul, numpy.multiply),
    "div": (F.div, numpy.divide),
}


@st.composite
def binary_inputs(draw: Any, op: str) -> tuple[numpy.ndarray, numpy.ndarray]:
    shape_a, shape_b = draw(pairs).input_shapes
    a = draw(arrays(shape_a))
    b = draw(arrays(shape_b, away_from_zero() if op == "div" else finite))
    return a, b


@pytest.mark.parametrize("op", sorted(BINARY))
@SETTINGS
@given(data=st.data())
def test_binary_forward_matches_numpy(op: str, data: st.DataObject) -> None:
    a, b = data.draw(binary_inputs(op))
    ours, reference = BINARY[op]
    out = ours(Tensor(a), Tensor(b))
    expected = reference(a, b)
    assert out.shape == expected.shape and out.dtype == expected.dtype
    numpy.testing.assert_array_equal(out.data, expected)


@pytest.mark.parametrize("op", sorted(BINARY))
@SETTINGS
@given(data=st.data())
def test_binary_gradients(op: str, data: st.DataObject) -> None:
    a, b = data.draw(binary_inputs(op))
    ours = BINARY[op][0]
    assert gradcheck(ours, [a.copy(), b.copy()])
    ta, tb = leaves(a, b)
    assert_grads_have_input_shapes(ours(ta, tb), [ta, tb])


@pytest.mark.parametrize("op", sorted(BINARY))
@FEW
@given(x=arrays(shapes, away_from_zero()), scalar=away_from_zero())
def test_python_scalars_on_either_side(op: str, x: numpy.ndarray, scalar: float) -> None:
    ours, reference = BINARY[op]
    numpy.testing.assert_array_equal(ours(Tensor(x), scalar).data, reference(x, scalar))
    numpy.testing.assert_array_equal(ours(scalar, Tensor(x)).data, reference(scalar, x))
    assert ours(Tensor(x), scalar).dtype == numpy.float64


UNARY: dict[str, tuple[Callable[[Any], Any], Callable[[Any], Any], Any]] = {
    "neg": (F.neg, numpy.negative, arrays(shapes)),
    "exp": (F.exp, numpy.exp, arrays(shapes)),
    "log": (F.log, numpy.log, arrays(shapes, positive)),
    "abs": (F.abs, numpy.abs, arrays(shapes, away_from_zero())),
    "sqrt": (F.sqrt, numpy.sqrt, arrays(shapes, positive)),
    "square": (lambda x: x ** 2, numpy.square, arrays(shapes)),
    "cube": (lambda x: x ** 3, lambda x: x ** 3, arrays(shapes)),
    "pow-1.5": (lambda x: x ** -1.5, lambda x: x ** -1.5, arrays(shapes, positive)),
}


@pytest.mark.parametrize("op", sorted(UNARY))
@SETTINGS
@given(data=st.data())
def test_unary_forward_and_gradients(op: str, data: st.DataObject) -> None:
    ours, reference, strategy = UNARY[op]
    x = data.draw(strategy)
    numpy.testing.assert_allclose(ours(Tensor(x)).data, reference(x), rtol=1e-12, atol=0)
    assert gradcheck(ours, [x.copy()])


@FEW
@given(pair=pairs, data=st.data())
def test_reused_input_accumulates_gradients(pair: Any, data: st.DataObject) -> None:
    """``a * b + a``: the gradient of ``a`` sums over both uses and over broadcast dimensions."""
    a, b = (data.draw(arrays(s)) for s in pair.input_shapes)
    assert gradcheck(lambda x, y: x * y + x - y / 2.0, [a.copy(), b.copy()])


@FEW
@given(x=arrays(hnp.array_shapes(min_dims=2, max_dims=3, min_side=1, max_side=MAX_SIDE)), data=st.data())
def test_gradcheck_accepts_strided_views(x: numpy.ndarray, data: st.DataObject) -> None:
    """Transposed or sliced (non-contiguous) inputs are perturbed in place, not through a copy."""
    view = x.T if data.draw(st.booleans()) else x[..., ::2]
    assert gradcheck(lambda t: t * t + F.exp(t), [view])


class WrongSquare(Function):
    """``x**2`` with a wrong derivative (``x`` instead of ``2x``)."""

    def forward(self, x):
        self.x = x
        return x * x

    def backward(self, gy):
        return gy * self.x


@FEW
@given(x=arrays(nonempty_shapes, away_from_zero()))
def test_gradcheck_catches_a_wrong_backward(x: numpy.ndarray) -> None:
    with pytest.raises(GradcheckError, match="analytic and numerical gradients differ"):
        gradcheck(lambda t: WrongSquare()(t), [x])
