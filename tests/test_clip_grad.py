"""gpunet.nn.utils.clip_grad_norm_ / clip_grad_value_ against PyTorch; no host sync; validation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gpunet import nn
from gpunet.autograd import Tensor
from gpunet.nn import Parameter
from gpunet.nn.utils import clip_grad_norm_, clip_grad_value_


def _pairs(dtype=np.float32, scale=3.0):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    grads = [(scale * rng.standard_normal(s)).astype(dtype) for s in ((3, 4), (5,), (2, 2, 2))]
    ours = [Parameter(np.zeros(g.shape, dtype)) for g in grads]
    theirs = [torch.zeros(g.shape, dtype=getattr(torch, np.dtype(dtype).name), requires_grad=True) for g in grads]
    for p, t, g in zip(ours, theirs, grads):
        p.grad, t.grad = g.copy(), torch.tensor(g.copy())
    return torch, ours, theirs


@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, math.inf])
@pytest.mark.parametrize("max_norm", [0.5, 1e6])
def test_clip_grad_norm_equals_pytorchs(norm_type, max_norm):
    torch, ours, theirs = _pairs()
    norm = clip_grad_norm_(ours, max_norm, norm_type=norm_type)
    ref = torch.nn.utils.clip_grad_norm_(theirs, max_norm, norm_type=norm_type)
    assert isinstance(norm, Tensor) and norm.shape == () and norm.dtype == np.float32
    assert float(norm.data) == pytest.approx(float(ref), rel=1e-6)
    for p, t in zip(ours, theirs):
        np.testing.assert_allclose(p.grad, t.grad.numpy(), rtol=1e-6, atol=1e-7)


def test_clip_grad_value_equals_pytorchs():
    torch, ours, theirs = _pairs()
    grads = [p.grad for p in ours]
    assert clip_grad_value_(ours, 1.5) is None
    torch.nn.utils.clip_grad_value_(theirs, 1.5)
    for p, t, g in zip(ours, theirs, grads):
        assert p.grad is g  # in place
        np.testing.assert_array_equal(p.grad, t.grad.numpy())


def test_single_tensor_no_grads_and_module_parameters():
    p = Parameter(np.zeros(2))
    p.grad = np.array([3.0, 4.0])
    assert float(clip_grad_norm_(p, 1.0).data) == pytest.approx(5.0)
    np.testing.assert_allclose(np.linalg.norm(p.grad), 1.0, rtol=1e-5)
    assert float(clip_grad_norm_([Parameter(np.zeros(2))], 1.0).data) == 0.0
    model = nn.Linear(3, 2)
    for q in model.parameters():
        q.grad = np.full(q.shape, 10.0, dtype=q.dtype)
    clip_grad_norm_(model.parameters(), 2.0)
    total = math.sqrt(sum(float((q.grad.astype(np.float64) ** 2).sum()) for q in model.parameters()))
    assert total == pytest.approx(2.0, rel=1e-5)


class NoSync(np.ndarray):
    def _refuse(self, *args, **kwargs):
        raise AssertionError("a host sync")

    __float__ = __int__ = __bool__ = __index__ = item = tolist = _refuse


def test_clip_grad_norm_reads_nothing_back_unless_asked():
    p = Parameter(np.zeros(3))
    p.grad = np.array([3.0, 4.0, 12.0]).view(NoSync)
    norm = clip_grad_norm_([p], 1.0)  # the gradient is never read back as a Python value
    assert float(norm.data) == pytest.approx(13.0)
    np.testing.assert_allclose(np.asarray(p.grad), np.array([3.0, 4.0, 12.0]) / (13 + 1e-6))


def test_non_finite_norms_and_bad_arguments():
    p = Parameter(np.zeros(2))
    p.grad = np.array([np.inf, 1.0])
    with pytest.raises(ValueError, match="non-finite"):
        clip_grad_norm_([p], 1.0, error_if_nonfinite=True)
    for kwargs, message in (({"max_norm": float("nan")}, "clip_grad_norm_: max_norm must be a finite number"),
                            ({"max_norm": -1.0}, "clip_grad_norm_: max_norm must be >= 0"),
                            ({"max_norm": "1"}, "clip_grad_norm_: max_norm must be a real number"),
                            ({"max_norm": 1.0, "norm_type": 0}, "clip_grad_norm_: norm_type must be > 0")):
        with pytest.raises((ValueError, TypeError), match=message):
            clip_grad_norm_([p], **kwargs)
    with pytest.raises(ValueError, match="clip_grad_value_: clip_value must be a finite number"):
        clip_grad_value_([p], float("nan"))
    with pytest.raises(TypeError, match=r"clip_grad_value_: parameters\[0\] must be a Tensor"):
        clip_grad_value_([np.zeros(2)], 1.0)
