"""``t[index] = value``: in place outside the graph, an error on a leaf requiring grad, an op with
the right gradient on a non-leaf (NumPy reference, float64 gradcheck, PyTorch oracle)."""

from __future__ import annotations

import numpy as np
import pytest

import gpunet
from gpunet import Tensor
from gpunet.autograd import OpError
from gpunet.testing import gradcheck

rng = np.random.default_rng(3)

INDEXES = [
    (1, lambda: rng.standard_normal(4)),
    ((slice(None), 2), lambda: rng.standard_normal(3)),
    ((slice(0, 2), slice(1, 3)), lambda: rng.standard_normal((1, 2))),  # broadcast value
    (np.array([True, False, True]), lambda: rng.standard_normal(4)),
    ((np.array([0, 2]), np.array([1, 3])), lambda: rng.standard_normal(2)),
]


@pytest.mark.parametrize("index,value", INDEXES)
def test_setitem_outside_graph_matches_numpy_and_writes_in_place(index, value):
    base = rng.standard_normal((3, 4))
    v = value()
    ref = base.copy()
    ref[index] = v
    arr = base.copy()
    t = gpunet.from_numpy(arr)
    t[index] = Tensor(v)
    np.testing.assert_array_equal(t.numpy(), ref)
    np.testing.assert_array_equal(arr, ref)  # shared memory, as torch.from_numpy


def test_setitem_scalar_takes_dtype_and_tensor_index():
    t = gpunet.zeros(2, 3, dtype=gpunet.int64)
    t[gpunet.tensor([1])] = 7.9
    assert t.dtype == np.int64 and t.tolist() == [[0, 0, 0], [7, 7, 7]]
    m = gpunet.zeros(4)
    m[m == 0] = 2.0
    assert m.tolist() == [2.0] * 4


@pytest.mark.parametrize("index,value", INDEXES)
def test_setitem_gradcheck_float64(index, value):
    a0, v0 = rng.standard_normal((3, 4)), value()

    def fn(a, v):
        y = a * 1.5
        y[index] = v * 2.0
        return y * y

    assert gradcheck(fn, [Tensor(a0, requires_grad=True), Tensor(v0, requires_grad=True)])


def test_setitem_on_leaf_requiring_grad_is_an_error_and_allowed_under_no_grad():
    w = Tensor(np.ones(3), requires_grad=True)
    with pytest.raises(OpError, match=r"^setitem: expected a tensor that is not a leaf requiring grad"):
        w[0] = 2.0
    with gpunet.no_grad():
        w[0] = 2.0
    assert w.tolist() == [2.0, 1.0, 1.0] and w.is_leaf and w.requires_grad


def test_setitem_on_non_leaf_rebinds_and_later_ops_see_the_new_value():
    w = Tensor(np.arange(3.0), requires_grad=True)
    y = w * 1.0
    y[0] = 10.0
    assert not y.is_leaf and y.tolist() == [10.0, 1.0, 2.0]
    (y * y).sum().backward()
    np.testing.assert_allclose(w.grad, [0.0, 2.0, 4.0])


def test_backward_through_an_op_that_used_the_old_version_refuses():
    w = Tensor(np.arange(3.0), requires_grad=True)
    y = w * 1.0
    z = y * y  # used y's version 0
    y[0] = 10.0
    with pytest.raises(OpError, match=r"^backward: expected mul's input \(3,\) at version 0, got version 1: "
                                      r"it was modified by an in-place assignment"):
        z.sum().backward()


def test_setitem_plain_tensor_gets_grad_from_value():
    v = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    buf = gpunet.zeros(2, 3, dtype=gpunet.float64)
    buf[:, 0] = v
    buf[:, 2] = v * 3
    assert buf.requires_grad and not buf.is_leaf
    buf.sum().backward()
    np.testing.assert_allclose(v.grad, [4.0, 4.0])


def test_setitem_bad_shape_names_op():
    t = gpunet.zeros(3)
    with pytest.raises(OpError, match=r"^setitem: cannot assign"):
        t[0:2] = Tensor(np.ones(3, dtype=np.float32))
    y = Tensor(np.ones(3), requires_grad=True) * 1.0
    with pytest.raises(OpError, match=r"^setitem: cannot apply"):
        y[0:2] = Tensor(np.ones(3))


def test_setitem_matches_torch():
    torch = pytest.importorskip("torch")
    a0 = rng.standard_normal((3, 4))
    v0 = rng.standard_normal(4)
    ga, gv = Tensor(a0, requires_grad=True), Tensor(v0, requires_grad=True)
    ta, tv = torch.tensor(a0, requires_grad=True), torch.tensor(v0, requires_grad=True)
    for a, v in [(ga, gv), (ta, tv)]:
        y = (a.tanh() if isinstance(a, torch.Tensor) else gpunet.functional.tanh(a)) * 2.0
        y[1] = v
        y[:, 0] = 0.5
        (y * y).sum().backward()
    np.testing.assert_allclose(ga.grad, ta.grad.numpy(), atol=1e-12)
    np.testing.assert_allclose(gv.grad, tv.grad.numpy(), atol=1e-12)
