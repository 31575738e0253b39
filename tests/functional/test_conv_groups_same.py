"""conv2d / Conv2d / Conv1d with ``groups=`` and ``padding="same"|"valid"``: a direct NumPy
definition, float64 gradcheck, PyTorch as an oracle, one-line errors."""

from __future__ import annotations

import numpy as np
import pytest

import gpunet
from gpunet import functional as F
from gpunet import nn
from gpunet.autograd import OpError, Tensor
from gpunet.testing import gradcheck

rng = np.random.default_rng(12)


def definition(x, w, b, stride=(1, 1), padding=((0, 0), (0, 0)), dilation=(1, 1), groups=1):
    """y[n, o] = b[o] + sum over the group's channels c and taps (p, q) of x_pad * w (no im2col)."""
    (sh, sw), (dh, dw) = stride, dilation
    xp = np.pad(x, ((0, 0), (0, 0), *padding))
    n, c, h, wd = xp.shape
    c_out, cg, kh, kw = w.shape
    og = c_out // groups
    oh, ow = (h - dh * (kh - 1) - 1) // sh + 1, (wd - dw * (kw - 1) - 1) // sw + 1
    y = np.zeros((n, c_out, oh, ow))
    for o in range(c_out):
        g = o // og
        for i in range(oh):
            for j in range(ow):
                for p in range(kh):
                    for q in range(kw):
                        y[:, o, i, j] += xp[:, g * cg:(g + 1) * cg, i * sh + p * dh, j * sw + q * dw] @ w[o, :, p, q]
        if b is not None:
            y[:, o] += b[o]
    return y


CASES = {  # name -> (x shape, w shape, kwargs, explicit padding for the definition)
    "groups2": ((2, 4, 6, 5), (6, 2, 3, 3), dict(groups=2, padding=1), ((1, 1), (1, 1))),
    "depthwise-stride": ((2, 3, 7, 6), (6, 1, 3, 2), dict(groups=3, stride=2), ((0, 0), (0, 0))),
    "same-odd": ((2, 2, 5, 6), (3, 2, 3, 3), dict(padding="same"), ((1, 1), (1, 1))),
    "same-even-dilated": ((1, 2, 6, 7), (4, 2, 2, 4), dict(padding="same", dilation=(1, 2)),
                          ((0, 1), (3, 3))),
    "same-even-groups": ((2, 4, 5, 5), (4, 2, 4, 2), dict(padding="same", groups=2), ((1, 2), (0, 1))),
    "valid": ((2, 2, 5, 6), (3, 2, 3, 2), dict(padding="valid"), ((0, 0), (0, 0))),
}


@pytest.mark.parametrize("name", CASES)
def test_forward_matches_the_definition(name):
    xs, ws, kwargs, explicit = CASES[name]
    x, w, b = rng.standard_normal(xs), rng.standard_normal(ws), rng.standard_normal(ws[0])
    got = F.conv2d(Tensor(x), Tensor(w), Tensor(b), **kwargs).numpy()
    want = definition(x, w, b, stride=(kwargs.get("stride", 1),) * 2,
                      padding=explicit, dilation=kwargs.get("dilation", (1, 1)), groups=kwargs.get("groups", 1))
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)
    if kwargs.get("padding") == "same":
        assert got.shape[2:] == xs[2:]


@pytest.mark.parametrize("name", CASES)
def test_gradcheck_float64(name):
    xs, ws, kwargs, _ = CASES[name]
    inputs = [Tensor(rng.standard_normal(s), requires_grad=True) for s in (xs, ws, (ws[0],))]
    assert gradcheck(lambda x, w, b: F.conv2d(x, w, b, **kwargs), inputs)


@pytest.mark.parametrize("name", CASES)
def test_matches_torch(name):
    torch = pytest.importorskip("torch")
    xs, ws, kwargs, _ = CASES[name]
    x, w, b = rng.standard_normal(xs), rng.standard_normal(ws), rng.standard_normal(ws[0])
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    gx, gw, gb = (Tensor(a, requires_grad=True) for a in (x, w, b))
    ty = torch.nn.functional.conv2d(tx, tw, tb, **kwargs)
    gy = F.conv2d(gx, gw, gb, **kwargs)
    np.testing.assert_allclose(gy.numpy(), ty.detach().numpy(), atol=1e-12)
    seed = rng.standard_normal(ty.shape)
    (ty * torch.tensor(seed)).sum().backward()
    (gy * Tensor(seed)).sum().backward()
    for g, t in [(gx, tx), (gw, tw), (gb, tb)]:
        np.testing.assert_allclose(g.grad, t.grad.numpy(), atol=1e-11)


@pytest.mark.parametrize("kwargs", [dict(groups=2, padding="same", dilation=2), dict(groups=4, stride=2, padding=1),
                                    dict(padding="valid")])
@pytest.mark.parametrize("dims", [1, 2])
def test_layers_match_torch(kwargs, dims):
    torch = pytest.importorskip("torch")
    ours, theirs = (nn.Conv1d, torch.nn.Conv1d) if dims == 1 else (nn.Conv2d, torch.nn.Conv2d)
    m = ours(4, 8, 4, **kwargs).double()
    assert m.weight.shape == (8, 4 // kwargs.get("groups", 1), *(4,) * dims)
    tm = theirs(4, 8, 4, **kwargs).double()
    tm.load_state_dict({k: torch.tensor(np.asarray(v)) for k, v in m.state_dict().items()})
    x = rng.standard_normal((2, 4, 9) if dims == 1 else (2, 4, 9, 8))
    np.testing.assert_allclose(m(Tensor(x)).numpy(), tm(torch.tensor(x)).detach().numpy(), atol=1e-12)
    assert f"groups={kwargs.get('groups', 1)}" in repr(m)


def test_default_init_uses_the_group_fan_in():
    m = nn.Conv2d(8, 8, 3, groups=8)
    bound = 1 / np.sqrt(1 * 3 * 3)
    assert np.abs(m.weight.numpy()).max() <= bound and np.abs(m.weight.numpy()).max() > bound / 2


@pytest.mark.parametrize(("call", "match"), [
    (lambda: F.conv2d(Tensor(np.ones((1, 4, 5, 5))), Tensor(np.ones((6, 2, 3, 3))), groups=3),
     r"^conv2d: expected in_channels and out_channels divisible by groups=3, got 4 and 6$"),
    (lambda: F.conv2d(Tensor(np.ones((1, 4, 5, 5))), Tensor(np.ones((6, 4, 3, 3))), groups=2),
     r"^conv2d: expected weight of shape \(6, 2, kh, kw\) for 4 input channels in 2 groups, got \(6, 4, 3, 3\)$"),
    (lambda: F.conv2d(Tensor(np.ones((1, 4, 5, 5))), Tensor(np.ones((6, 4, 3, 3))), groups=0),
     r"^conv2d: expected groups as an int >= 1, got 0$"),
    (lambda: F.conv2d(Tensor(np.ones((1, 4, 5, 5))), Tensor(np.ones((6, 4, 3, 3))), padding="same", stride=2),
     r"^conv2d: expected stride 1 with padding='same'"),
    (lambda: F.conv2d(Tensor(np.ones((1, 4, 5, 5))), Tensor(np.ones((6, 4, 3, 3))), padding="full"),
     r"^conv2d: expected padding as an int, a pair, 'same' or 'valid', got 'full'$"),
])
def test_functional_errors(call, match):
    with pytest.raises(OpError, match=match):
        call()


@pytest.mark.parametrize(("call", "exc", "match"), [
    (lambda: nn.Conv2d(4, 6, 3, groups=4), ValueError, r"^Conv2d: expected in_channels and out_channels divisible"),
    (lambda: nn.Conv1d(4, 6, 3, groups=0), ValueError, r"^Conv1d: expected groups >= 1, got 0$"),
    (lambda: nn.Conv2d(4, 6, 3, padding="same", stride=2), ValueError, r"^Conv2d: expected stride 1 with padding"),
    (lambda: nn.Conv1d(4, 6, 3, padding="half"), ValueError, r"^Conv1d: expected padding as an int, 'same' or"),
])
def test_layer_errors(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_float32_groups_keep_dtype():
    m = nn.Conv2d(4, 4, 3, groups=2, padding="same")
    y = m(gpunet.randn(2, 4, 5, 5))
    assert y.dtype == np.float32 and y.shape == (2, 4, 5, 5)
