"""Every math op: forward against NumPy, backward by float64 gradcheck."""

from __future__ import annotations

import numpy as np
import pytest

from gpunet import Tensor
from gpunet import functional as F
from gpunet.testing import gradcheck

rng = np.random.default_rng(0)


def r(*shape, positive=False):
    values = rng.standard_normal(shape)
    return np.abs(values) + 0.5 if positive else values


# name: (op on tensors, reference on arrays, inputs)
CASES = {
    "add_broadcast": (lambda a, b: a + b, lambda a, b: a + b, [r(3, 4), r(4)]),
    "sub_broadcast": (lambda a, b: a - b, lambda a, b: a - b, [r(2, 1, 4), r(3, 1)]),
    "mul": (lambda a, b: a * b, lambda a, b: a * b, [r(3, 4), r(3, 1)]),
    "div": (lambda a, b: a / b, lambda a, b: a / b, [r(3, 4), r(4, positive=True)]),
    "neg": (lambda a: -a, lambda a: -a, [r(5)]),
    "pow": (lambda a: a ** 3, lambda a: a ** 3, [r(2, 3)]),
    "sqrt": (F.sqrt, np.sqrt, [r(4, positive=True)]),
    "exp": (F.exp, np.exp, [r(3, 2)]),
    "log": (F.log, np.log, [r(3, 2, positive=True)]),
    "abs": (F.abs, np.abs, [r(3, 2, positive=True) * np.array([1, -1])]),
    "matmul_2d": (lambda a, b: a @ b, lambda a, b: a @ b, [r(3, 4), r(4, 2)]),
    "matmul_batched": (lambda a, b: a @ b, lambda a, b: a @ b, [r(2, 3, 4), r(4, 5)]),
    "matmul_vec": (lambda a, b: a @ b, lambda a, b: a @ b, [r(3, 4), r(4)]),
    "sum_all": (lambda a: a.sum(), lambda a: a.sum(), [r(3, 4)]),
    "sum_axis": (lambda a: a.sum(axis=1), lambda a: a.sum(axis=1), [r(3, 4, 2)]),
    "sum_keepdims": (lambda a: a.sum(axis=(0, 2), keepdims=True), lambda a: a.sum(axis=(0, 2), keepdims=True),
                     [r(3, 4, 2)]),
    "mean_axis": (lambda a: a.mean(axis=-1), lambda a: a.mean(axis=-1), [r(3, 4)]),
    "max_axis": (lambda a: a.max(axis=0), lambda a: a.max(axis=0), [r(3, 4)]),
    "max_all": (lambda a: a.max(), lambda a: a.max(), [r(3, 4)]),
    "reshape": (lambda a: a.reshape(4, 3), lambda a: a.reshape(4, 3), [r(3, 4)]),
    "transpose": (lambda a: a.transpose(2, 0, 1), lambda a: a.transpose(2, 0, 1), [r(2, 3, 4)]),
    "T": (lambda a: a.T, lambda a: a.T, [r(2, 3)]),
    "getitem_slice": (lambda a: a[1:, ::2], lambda a: a[1:, ::2], [r(3, 4)]),
    "getitem_repeat": (lambda a: a[[0, 2, 0]], lambda a: a[[0, 2, 0]], [r(3, 4)]),
    "concat": (lambda a, b: F.concat([a, b], axis=1), lambda a, b: np.concatenate([a, b], axis=1),
               [r(2, 3), r(2, 1)]),
    "where": (lambda a, b: F.where(np.array([True, False, True]), a, b),
              lambda a, b: np.where([True, False, True], a, b), [r(3), r(3)]),
    "linear": (F.linear, lambda x, w, b: x @ w.T + b, [r(5, 3), r(4, 3), r(4)]),
    "linear_3d": (F.linear, lambda x, w, b: x @ w.T + b, [r(2, 5, 3), r(4, 3), r(4)]),
    "cast": (lambda a: F.cast(a, np.float64), lambda a: a, [r(3)]),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_forward_matches_numpy(name):
    op, ref, inputs = CASES[name]
    out = op(*[Tensor(x.copy()) for x in inputs])
    np.testing.assert_allclose(out.data, ref(*inputs), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", sorted(CASES))
def test_backward_gradcheck(name):
    op, _, inputs = CASES[name]
    assert gradcheck(op, [x.copy() for x in inputs])


def test_max_splits_gradient_between_ties():
    x = Tensor(np.array([1.0, 3.0, 3.0]), requires_grad=True)
    x.max().backward()
    np.testing.assert_allclose(x.grad, [0.0, 0.5, 0.5])


def test_flatten_keeps_batch_dimension():
    assert F.flatten(Tensor(r(2, 3, 4, 5))).shape == (2, 60)
