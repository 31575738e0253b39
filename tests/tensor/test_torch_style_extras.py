"""Everyday PyTorch spellings found missing by the idiom audit: top-level ``gpunet.flatten/max/exp
...``, activation methods, ``pow/matmul/mm``, named comparisons, ``masked_fill``, ``expand`` and
the in-place ``fill_/zero_/add_/mul_``: NumPy references, float64 gradchecks, PyTorch, errors."""

from __future__ import annotations

import numpy as np
import pytest

import gpunet
from gpunet import Tensor
from gpunet.autograd import OpError
from gpunet.testing import gradcheck

rng = np.random.default_rng(5)
A = rng.permutation(24).reshape(2, 3, 4) * 0.21 - 2.0  # no ties
B = rng.standard_normal((2, 3, 4))


def t(a, grad=False):
    return Tensor(np.array(a, dtype=np.float64), requires_grad=grad)


@pytest.mark.parametrize(("call", "ref"), [
    (lambda x: gpunet.flatten(x, 1), lambda a: a.reshape(2, 12)),
    (lambda x: gpunet.max(x, 1)[0], lambda a: a.max(1)),
    (lambda x: gpunet.max(x, 1)[1], lambda a: a.argmax(1)),
    (lambda x: gpunet.max(x), lambda a: a.max()),
    (lambda x: gpunet.min(x, t(B)), lambda a: np.minimum(a, B)),
    (lambda x: gpunet.max(x, t(B)), lambda a: np.maximum(a, B)),
    (lambda x: gpunet.argmax(x, dim=2), lambda a: a.argmax(2)),
    (lambda x: gpunet.sum(x, dim=0), lambda a: a.sum(0)),
    (lambda x: gpunet.mean(x), lambda a: a.mean()),
    (lambda x: gpunet.exp(x), np.exp),
    (lambda x: gpunet.softmax(x, dim=-1), lambda a: np.exp(a) / np.exp(a).sum(-1, keepdims=True)),
    (lambda x: gpunet.matmul(x, t(B).transpose(1, 2)), lambda a: a @ B.transpose(0, 2, 1)),
    (lambda x: gpunet.clamp(x, -1, 1), lambda a: np.clip(a, -1, 1)),
    (lambda x: gpunet.unsqueeze(x, 1), lambda a: a[:, None]),
    (lambda x: x.relu(), lambda a: np.maximum(a, 0)),
    (lambda x: x.sigmoid(), lambda a: 1 / (1 + np.exp(-a))),
    (lambda x: x.tanh(), np.tanh),
    (lambda x: x.pow(3), lambda a: a ** 3),
    (lambda x: x[0].mm(t(B[0]).T), lambda a: a[0] @ B[0].T),
    (lambda x: x.gt(0.5), lambda a: a > 0.5),
    (lambda x: x.eq(x), lambda a: a == a),
    (lambda x: x.masked_fill(x > 0, -7.0), lambda a: np.where(a > 0, -7.0, a)),
    (lambda x: x[:, :1].expand(2, 3, -1), lambda a: np.broadcast_to(a[:, :1], (2, 3, 4))),
])
def test_against_numpy(call, ref):
    got = call(t(A))
    np.testing.assert_allclose(got.numpy(), ref(A), rtol=1e-12)


@pytest.mark.parametrize("call", [
    lambda x, y: gpunet.max(x, y) * gpunet.min(x, y),
    lambda x, y: x.softmax(dim=1) * y.log_softmax(2),
    lambda x, y: x.masked_fill(y > 0, 2.0) * x.pow(2),
    lambda x, y: x[:, :1].expand(2, 3, 4) * y,
    lambda x, y: gpunet.flatten(x.relu() + y.sigmoid(), 1).matmul(gpunet.flatten(y, 1).T),
])
def test_gradcheck_float64(call):
    assert gradcheck(call, [t(A, True), t(B, True)])


def test_inplace_methods_follow_setitem_rules():
    z = gpunet.zeros(3)
    assert z.fill_(2.0) is z and z.add_(1.0).mul_(2.0).tolist() == [6.0, 6.0, 6.0]
    assert z.sub_(t([1.0, 2.0, 3.0]).float(), alpha=2).zero_().tolist() == [0.0, 0.0, 0.0]
    w = t([1.0, 2.0], True)
    with pytest.raises(OpError, match=r"^add_: expected a tensor that is not a leaf requiring grad"):
        w.add_(1.0)
    with gpunet.no_grad():
        w.sub_(t([0.5, 0.5]))  # a manual SGD step
    assert w.tolist() == [0.5, 1.5] and w.is_leaf
    y = w * 1.0
    y.mul_(w)  # non-leaf: recorded, d(w*w)/dw = 2w
    y.sum().backward()
    np.testing.assert_allclose(w.grad, [1.0, 3.0])


def test_errors_name_the_op():
    with pytest.raises(OpError, match=r"^mm: expected two 2-D tensors, got shapes \(2, 3, 4\)"):
        t(A).mm(t(B))
    with pytest.raises(OpError, match=r"^masked_fill: expected a bool mask, got dtype float64$"):
        t(A).masked_fill(t(B), 0.0)
    with pytest.raises(OpError, match=r"^expand: cannot expand shape \(2, 3, 4\) to \(2, 5, 4\)"):
        t(A).expand(2, 5, 4)
    with pytest.raises(OpError, match=r"^flatten: expected a Tensor as the first argument, got list$"):
        gpunet.flatten([1, 2])


def test_matches_torch():
    torch = pytest.importorskip("torch")
    x, tx = t(A, True), torch.tensor(A, requires_grad=True)
    for lib, v in [(gpunet, x), (torch, tx)]:
        out = lib.flatten(lib.max(v, 2)[0].relu().masked_fill(v.sum(2) > 1.0, 0.5), 1)
        (out * out).sum().backward()
    np.testing.assert_allclose(x.grad, tx.grad.numpy(), atol=1e-12)
