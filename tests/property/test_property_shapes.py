"""Reductions (sum/mean/max over axes), matmul and shape ops: forward vs NumPy, gradcheck."""

from __future__ import annotations

from typing import Any

import numpy
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from property_strategies import (
    FEW,
    MAX_SIDE,
    SETTINGS,
    arrays,
    assert_grads_have_input_shapes,
    axes,
    leaves,
    nonempty_shapes,
    shapes,
)

from gpunet import functional as F
from gpunet.autograd import Tensor
from gpunet.testing import gradcheck

SPREAD = st.integers(-200, 200).map(lambda v: v / 7.0)


@pytest.mark.parametrize("op", ["sum", "mean", "max"])
@SETTINGS
@given(data=st.data(), keepdims=st.booleans())
def test_reductions(op: str, data: st.DataObject, keepdims: bool) -> None:
    # sum also over empty arrays; mean/max of nothing is undefined (max raises, see test_errors)
    shape = data.draw(shapes if op == "sum" else nonempty_shapes)
    # for max: distinct values further apart than gradcheck's step, so max is differentiable
    x = data.draw(arrays(shape, SPREAD, unique=True) if op == "max" else arrays(shape))
    axis = data.draw(axes(x.ndim))
    expected = getattr(numpy, op)(x, axis=axis, keepdims=keepdims)
    out = getattr(F, op)(Tensor(x), axis=axis, keepdims=keepdims)
    assert out.shape == expected.shape
    numpy.testing.assert_allclose(out.data, expected, rtol=1e-12, atol=1e-12)
    assert gradcheck(lambda t: getattr(F, op)(t, axis=axis, keepdims=keepdims), [x.copy()])


@FEW
@given(x=arrays(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=3)), data=st.data())
def test_max_with_ties_splits_the_gradient(x: numpy.ndarray, data: st.DataObject) -> None:
    x = numpy.round(x)  # many ties
    axis = data.draw(axes(x.ndim))
    (t,) = leaves(x)
    F.max(t, axis=axis).sum().backward()
    winners = x == x.max(axis=axis, keepdims=True)
    expected = winners / winners.sum(axis=axis, keepdims=True)
    numpy.testing.assert_allclose(t.grad, expected, rtol=1e-12)


@st.composite
def matmul_shapes(draw: Any) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Vector/matrix/batched operands, batch dimensions broadcast (incl. size 1), sides may be 0."""
    side = st.integers(0, MAX_SIDE)
    n, k, m = draw(side), draw(side), draw(side)
    batch_a, batch_b = draw(hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=2, max_side=3)).input_shapes
    a = draw(st.sampled_from([(k,), (*batch_a, n, k)]))
    b = draw(st.sampled_from([(k,), (*batch_b, k, m)]))
    return a, b


@SETTINGS
@given(pair=matmul_shapes(), data=st.data())
def test_matmul(pair: tuple[tuple[int, ...], tuple[int, ...]], data: st.DataObject) -> None:
    a, b = (data.draw(arrays(s)) for s in pair)
    expected = numpy.matmul(a, b)
    out = F.matmul(Tensor(a), Tensor(b))
    assert out.shape == expected.shape
    numpy.testing.assert_allclose(out.data, expected, rtol=1e-12, atol=1e-12)
    assert gradcheck(F.matmul, [a.copy(), b.copy()])
    ta, tb = leaves(a, b)
    assert_grads_have_input_shapes(F.matmul(ta, tb), [ta, tb])


@st.composite
def linear_inputs(draw: Any) -> tuple[numpy.ndarray, numpy.ndarray, numpy.ndarray]:
    lead = draw(hnp.array_shapes(min_dims=0, max_dims=2, min_side=0, max_side=3))
    n_in, n_out = draw(st.integers(1, MAX_SIDE)), draw(st.integers(1, MAX_SIDE))
    return draw(arrays((*lead, n_in))), draw(arrays((n_out, n_in))), draw(arrays((n_out,)))


@SETTINGS
@given(inputs=linear_inputs(), bias=st.booleans())
def test_linear(inputs: tuple[numpy.ndarray, ...], bias: bool) -> None:
    x, w, b = inputs
    args = [x, w, b] if bias else [x, w]
    expected = x @ w.T + (b if bias else 0)
    numpy.testing.assert_allclose(F.linear(*[Tensor(a) for a in args]).data, expected, rtol=1e-12, atol=1e-12)
    assert gradcheck(F.linear, [a.copy() for a in args])


@st.composite
def reshapes(draw: Any) -> tuple[numpy.ndarray, tuple[int, ...]]:
    """An array and a target shape of the same size, maybe with one ``-1``."""
    x = draw(arrays(shapes))
    factors = [d for d in x.shape]
    target = list(draw(st.permutations(factors))) if factors else []
    if len(target) >= 2 and draw(st.booleans()):  # merge two neighbours
        i = draw(st.integers(0, len(target) - 2))
        target[i: i + 2] = [target[i] * target[i + 1]]
    if draw(st.booleans()):
        target.insert(draw(st.integers(0, len(target))), 1)
    if target and x.size and draw(st.booleans()):
        target[draw(st.integers(0, len(target) - 1))] = -1
    return x, tuple(target)


@SETTINGS
@given(case=reshapes())
def test_reshape(case: tuple[numpy.ndarray, tuple[int, ...]]) -> None:
    x, target = case
    expected = x.reshape(target)
    out = Tensor(x).reshape(target)
    assert out.shape == expected.shape
    numpy.testing.assert_array_equal(out.data, expected)
    assert gradcheck(lambda t: t.reshape(target), [x.copy()])


@SETTINGS
@given(x=arrays(shapes), data=st.data())
def test_transpose(x: numpy.ndarray, data: st.DataObject) -> None:
    perm = tuple(data.draw(st.permutations(range(x.ndim)))) if data.draw(st.booleans()) else None
    perm = tuple(p - x.ndim if data.draw(st.booleans()) else p for p in perm) if perm else perm
    expected = x.transpose(perm)
    numpy.testing.assert_array_equal(F.transpose(Tensor(x), perm).data, expected)
    assert gradcheck(lambda t: F.transpose(t, perm), [x.copy()])


@SETTINGS
@given(x=arrays(nonempty_shapes), data=st.data())
def test_getitem_basic(x: numpy.ndarray, data: st.DataObject) -> None:
    index = data.draw(hnp.basic_indices(x.shape, allow_newaxis=True, allow_ellipsis=True))
    expected = x[index]
    numpy.testing.assert_array_equal(Tensor(x)[index].data, expected)
    assert gradcheck(lambda t: t[index], [x.copy()])


@SETTINGS
@given(x=arrays(nonempty_shapes), data=st.data())
def test_getitem_repeated_integer_indices_accumulate(x: numpy.ndarray, data: st.DataObject) -> None:
    rows = numpy.array(data.draw(st.lists(st.integers(-x.shape[0], x.shape[0] - 1), min_size=0, max_size=6)),
                       dtype=numpy.int64)
    numpy.testing.assert_array_equal(Tensor(x)[rows].data, x[rows])
    assert gradcheck(lambda t: t[rows], [x.copy()])


@FEW
@given(x=arrays(nonempty_shapes), data=st.data())
def test_getitem_boolean_mask(x: numpy.ndarray, data: st.DataObject) -> None:
    mask = data.draw(hnp.arrays(numpy.bool_, x.shape))
    numpy.testing.assert_array_equal(Tensor(x)[mask].data, x[mask])
    assert gradcheck(lambda t: t[mask], [x.copy()])


@FEW
@given(data=st.data())
def test_concat(data: st.DataObject) -> None:
    base = data.draw(nonempty_shapes)
    axis = data.draw(st.integers(-len(base), len(base) - 1))
    sizes = data.draw(st.lists(st.integers(0, 3), min_size=1, max_size=3))
    parts = []
    for size in sizes:
        shape = list(base)
        shape[axis] = size
        parts.append(data.draw(arrays(tuple(shape))))
    assume(sum(sizes) > 0)
    expected = numpy.concatenate(parts, axis=axis)
    numpy.testing.assert_array_equal(F.concat([Tensor(p) for p in parts], axis=axis).data, expected)
    assert gradcheck(lambda *ts: F.concat(list(ts), axis=axis), [p.copy() for p in parts])
