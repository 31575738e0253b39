"""batch_norm, layer_norm, dropout, embedding, adaptive_avg_pool2d: NumPy references, float64
gradchecks, and PyTorch where it imports."""

from __future__ import annotations

import numpy as np
import pytest

import gpunet
from gpunet import Tensor
from gpunet import functional as F
from gpunet.testing import gradcheck

rng = np.random.default_rng(3)


def _bn_ref(x, mean, var, w, b, eps=1e-5):
    view = (1, -1) + (1,) * (x.ndim - 2)
    return (x - mean.reshape(view)) / np.sqrt(var.reshape(view) + eps) * w.reshape(view) + b.reshape(view)


@pytest.mark.parametrize("shape", [(6, 3), (4, 3, 5), (2, 3, 4, 4)])
def test_batch_norm_training_eval_and_running_update(shape):
    x = rng.standard_normal(shape) * 2 + 1
    w, b = rng.standard_normal(3), rng.standard_normal(3)
    axes = (0, *range(2, x.ndim))
    rm, rv = Tensor(np.zeros(3)), Tensor(np.ones(3))
    y = F.batch_norm(Tensor(x), rm, rv, Tensor(w), Tensor(b), training=True, momentum=0.1)
    np.testing.assert_allclose(y.data, _bn_ref(x, x.mean(axes), x.var(axes), w, b), rtol=1e-10, atol=1e-12)
    n = x.size // 3
    np.testing.assert_allclose(rm.data, 0.1 * x.mean(axes))
    np.testing.assert_allclose(rv.data, 0.9 + 0.1 * x.var(axes) * n / (n - 1))  # unbiased, as PyTorch
    y = F.batch_norm(Tensor(x), rm, rv, Tensor(w), Tensor(b), training=False)
    np.testing.assert_allclose(y.data, _bn_ref(x, rm.data, rv.data, w, b), rtol=1e-10)
    for training in (True, False):
        assert gradcheck(lambda x, w, b, training=training: F.batch_norm(
            x, Tensor(rm.data.copy()), Tensor(rv.data.copy()), w, b, training=training), [x.copy(), w.copy(), b.copy()])
    assert gradcheck(lambda x: F.batch_norm(x, None, None, training=True), [x.copy()])


def test_batch_norm_refuses_one_value_per_channel_and_missing_stats():
    with pytest.raises(gpunet.OpError, match="more than 1 value per channel"):
        F.batch_norm(Tensor(np.ones((1, 3))), None, None, training=True)
    with pytest.raises(gpunet.OpError, match="needs running_mean"):
        F.batch_norm(Tensor(np.ones((2, 3))), None, None, training=False)


@pytest.mark.parametrize("shape,norm", [((4, 5), (5,)), ((2, 3, 4), (3, 4))])
def test_layer_norm_forward_and_gradcheck(shape, norm):
    x = rng.standard_normal(shape)
    w, b = rng.standard_normal(norm), rng.standard_normal(norm)
    axes = tuple(range(x.ndim - len(norm), x.ndim))
    ref = (x - x.mean(axes, keepdims=True)) / np.sqrt(x.var(axes, keepdims=True) + 1e-5) * w + b
    np.testing.assert_allclose(F.layer_norm(Tensor(x), norm, Tensor(w), Tensor(b)).data, ref, rtol=1e-10, atol=1e-12)
    assert gradcheck(lambda x, w, b: F.layer_norm(x, norm, w, b), [x.copy(), w.copy(), b.copy()])
    assert gradcheck(lambda x: F.layer_norm(x, norm), [x.copy()])
    with pytest.raises(gpunet.OpError, match="expected input with trailing shape"):
        F.layer_norm(Tensor(x), (7,))


def test_dropout_is_seeded_inverted_and_off_in_eval():
    x = Tensor(np.ones((200, 50)))
    gpunet.manual_seed(5)
    y = F.dropout(x, 0.25, training=True)
    kept = y.data != 0
    assert abs(kept.mean() - 0.75) < 0.02
    np.testing.assert_allclose(y.data[kept], 1 / 0.75)
    gpunet.manual_seed(5)
    np.testing.assert_array_equal(F.dropout(x, 0.25).data, y.data)  # the same seed, the same mask
    assert F.dropout(x, 0.25, training=False) is x
    mask = y.data
    gpunet.manual_seed(1)
    small = rng.standard_normal((3, 4))
    gpunet.manual_seed(1)
    ref_mask = F.dropout(Tensor(np.ones((3, 4))), 0.5).data

    def fn(v):
        gpunet.manual_seed(1)
        return F.dropout(v, 0.5)
    assert gradcheck(fn, [small.copy()])
    np.testing.assert_array_equal(fn(Tensor(small)).data, small * ref_mask)
    assert mask.dtype == np.float64
    for p in (-0.1, 1.0, 1.5, "0.5"):
        with pytest.raises(gpunet.OpError, match=r"expected dropout probability p in \[0, 1\)"):
            F.dropout(x, p)


def test_embedding_functional():
    w = rng.standard_normal((6, 3))
    ids = np.array([[0, 5], [2, 2]])
    np.testing.assert_array_equal(F.embedding(ids, Tensor(w)).data, w[ids])
    assert gradcheck(lambda w: F.embedding(ids, w), [w.copy()])  # padding_idx deliberately drops a gradient
    weight = Tensor(w.copy(), requires_grad=True)
    F.embedding(ids, weight, padding_idx=-4).sum().backward()
    np.testing.assert_array_equal(weight.grad[2], 0)
    with pytest.raises(gpunet.OpError, match=r"ids must lie in \[0, 6\)"):
        F.embedding(np.array([6]), Tensor(w))
    with pytest.raises(gpunet.OpError, match="expected integer token ids"):
        F.embedding(np.array([1.0]), Tensor(w))


@pytest.mark.parametrize("size,out", [((6, 6), 3), ((7, 5), (3, 2)), ((5, 4), (None, 3)), ((4, 4), 1)])
def test_adaptive_avg_pool2d_uses_pytorch_bins(size, out):
    x = rng.standard_normal((2, 3, *size))
    oh, ow = (out, out) if isinstance(out, int) else out
    oh, ow = oh or size[0], ow or size[1]
    ref = np.empty((2, 3, oh, ow))
    for i in range(oh):
        for j in range(ow):
            r0, r1 = i * size[0] // oh, -(-(i + 1) * size[0] // oh)
            c0, c1 = j * size[1] // ow, -(-(j + 1) * size[1] // ow)
            ref[:, :, i, j] = x[:, :, r0:r1, c0:c1].mean(axis=(2, 3))
    np.testing.assert_allclose(F.adaptive_avg_pool2d(Tensor(x), out).data, ref, rtol=1e-12)
    assert gradcheck(lambda x: F.adaptive_avg_pool2d(x, out), [x[:1, :2].copy()])


def test_norm_and_pool_match_pytorch():
    torch = pytest.importorskip("torch")
    tF = torch.nn.functional
    x = rng.standard_normal((4, 3, 5, 5))
    w, b = rng.standard_normal(3), rng.standard_normal(3)
    rm, rv = Tensor(np.zeros(3)), Tensor(np.ones(3))
    trm, trv = torch.zeros(3, dtype=torch.float64), torch.ones(3, dtype=torch.float64)
    ours = F.batch_norm(Tensor(x), rm, rv, Tensor(w), Tensor(b), training=True, momentum=0.3)
    theirs = tF.batch_norm(torch.tensor(x), trm, trv, torch.tensor(w), torch.tensor(b), training=True, momentum=0.3)
    np.testing.assert_allclose(ours.data, theirs.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(rm.data, trm.numpy(), rtol=1e-12)
    np.testing.assert_allclose(rv.data, trv.numpy(), rtol=1e-12)
    ln = F.layer_norm(Tensor(x), (5, 5), Tensor(np.ones((5, 5))), None)
    np.testing.assert_allclose(ln.data, tF.layer_norm(torch.tensor(x), (5, 5)).numpy(), rtol=1e-10, atol=1e-12)
    for out in (2, (3, 4), 1):
        np.testing.assert_allclose(F.adaptive_avg_pool2d(Tensor(x), out).data,
                                   tF.adaptive_avg_pool2d(torch.tensor(x), out).numpy(), rtol=1e-12)
