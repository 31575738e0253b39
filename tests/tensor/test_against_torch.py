"""A few of the new ops against PyTorch itself (skipped where torch is not installed)."""

from __future__ import annotations

import numpy as np
import pytest

import gpunet
from gpunet import Tensor
from gpunet import functional as F

torch = pytest.importorskip("torch")

rng = np.random.default_rng(7)


def both(fn_g, fn_t, *arrays):
    """Forward values and input gradients of one op in gpunet and in torch (float64)."""
    g = [Tensor(a.copy(), requires_grad=True) for a in arrays]
    t = [torch.tensor(a, requires_grad=True) for a in arrays]
    out_g, out_t = fn_g(*g), fn_t(*t)
    weight = rng.standard_normal(out_t.shape)
    (out_g * Tensor(weight)).sum().backward()
    (out_t * torch.tensor(weight)).sum().backward()
    np.testing.assert_allclose(out_g.numpy(), out_t.detach().numpy(), rtol=1e-10, atol=1e-12)
    for a, b in zip(g, t):
        np.testing.assert_allclose(a.grad, b.grad.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name, fn_g, fn_t, shapes", [
    ("std", lambda x: x.std(dim=1), lambda x: x.std(dim=1), [(3, 5)]),
    ("var_biased", lambda x: x.var(0, unbiased=False), lambda x: x.var(0, unbiased=False), [(4, 3)]),
    ("var_all", lambda x: x.var(), lambda x: x.var(), [(4, 3)]),
    ("max_dim", lambda x: x.max(dim=1).values, lambda x: x.max(dim=1).values, [(3, 4)]),
    ("min_dim_keep", lambda x: x.min(0, keepdim=True)[0], lambda x: x.min(0, keepdim=True)[0], [(3, 4)]),
    ("clamp", lambda x: x.clamp(-0.5, 0.5), lambda x: x.clamp(-0.5, 0.5), [(4, 4)]),
    ("log_softmax_dim0", lambda x: F.log_softmax(x, dim=0), lambda x: torch.log_softmax(x, dim=0), [(3, 4)]),
    ("softmax_dim1", lambda x: F.softmax(x, dim=1), lambda x: torch.softmax(x, dim=1), [(2, 3, 4)]),
    ("pad", lambda x: F.pad(x, (1, 2, 0, 1)), lambda x: torch.nn.functional.pad(x, (1, 2, 0, 1)), [(2, 3, 4)]),
    ("pad_negative", lambda x: F.pad(x, (-1, 1)), lambda x: torch.nn.functional.pad(x, (-1, 1)), [(2, 3)]),
    ("cat", lambda a, b: F.cat([a, b], dim=1), lambda a, b: torch.cat([a, b], dim=1), [(2, 3), (2, 2)]),
    ("stack", lambda a, b: F.stack([a, b], dim=-1), lambda a, b: torch.stack([a, b], dim=-1), [(2, 3), (2, 3)]),
    ("transpose", lambda x: x.transpose(0, 2), lambda x: x.transpose(0, 2), [(2, 3, 4)]),
    ("permute_flatten", lambda x: x.permute(1, 0, 2).flatten(1), lambda x: x.permute(1, 0, 2).flatten(1),
     [(2, 3, 4)]),
    ("unsqueeze_squeeze", lambda x: x.unsqueeze(1).squeeze(), lambda x: x.unsqueeze(1).squeeze(), [(2, 1, 3)]),
    ("where", lambda a, b: gpunet.where(a > b, a, b), lambda a, b: torch.where(a > b, a, b), [(3, 3), (3, 3)]),
])
def test_matches_torch(name, fn_g, fn_t, shapes):
    both(fn_g, fn_t, *[rng.standard_normal(s) for s in shapes])


def test_indices_one_hot_and_comparisons_match_torch():
    x = rng.standard_normal((4, 5))
    g, t = Tensor(x), torch.tensor(x)
    np.testing.assert_array_equal(g.max(1).indices.numpy(), t.max(1).indices.numpy())
    np.testing.assert_array_equal(g.argmin(0).numpy(), t.argmin(0).numpy())
    np.testing.assert_array_equal((g > 0).numpy(), (t > 0).numpy())
    np.testing.assert_array_equal(((g > 0) & (g < 1)).numpy(), ((t > 0) & (t < 1)).numpy())
    labels = np.array([0, 3, 1])
    np.testing.assert_array_equal(F.one_hot(Tensor(labels), 5).numpy(),
                                  torch.nn.functional.one_hot(torch.tensor(labels), 5).numpy())
    assert gpunet.arange(1, 7, 2).tolist() == torch.arange(1, 7, 2).tolist()
    assert gpunet.tensor(3.0).shape == tuple(torch.tensor(3.0).shape)
    assert gpunet.zeros(2, 3).size() == tuple(torch.zeros(2, 3).size())
