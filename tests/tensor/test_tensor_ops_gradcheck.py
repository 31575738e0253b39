"""The new Tensor ops: forward against a plain NumPy reference, backward by float64 gradcheck."""

from __future__ import annotations

import numpy as np
import pytest

from gpunet import Tensor
from gpunet import functional as F
from gpunet.testing import gradcheck

rng = np.random.default_rng(1)


def r(*shape):
    return rng.standard_normal(shape)


def distinct(*shape):
    """Values with no ties (max/min/clamp have a kink at ties and at the bounds)."""
    return rng.permutation(np.prod(shape)).reshape(shape) * 0.37 - 2.0


def np_pad(x, widths):
    out = x
    for d, (lo, hi) in enumerate(widths):
        index = [slice(None)] * out.ndim
        index[d] = slice(max(-lo, 0), out.shape[d] - max(-hi, 0))
        out = out[tuple(index)]
    return np.pad(out, [(max(lo, 0), max(hi, 0)) for lo, hi in widths])


# name: (op on tensors, reference on arrays, inputs)
CASES = {
    "view": (lambda a: a.view(4, 3), lambda a: a.reshape(4, 3), [r(3, 4)]),
    "view_infer": (lambda a: a.view(-1), lambda a: a.reshape(-1), [r(3, 4)]),
    "view_tuple": (lambda a: a.view((2, 6)), lambda a: a.reshape(2, 6), [r(3, 4)]),
    "unsqueeze_0": (lambda a: a.unsqueeze(0), lambda a: a[None], [r(3, 4)]),
    "unsqueeze_last": (lambda a: a.unsqueeze(-1), lambda a: a[..., None], [r(3, 4)]),
    "unsqueeze_mid": (lambda a: a.unsqueeze(1), lambda a: a[:, None], [r(3, 4)]),
    "squeeze_all": (lambda a: a.squeeze(), np.squeeze, [r(3, 1, 4, 1)]),
    "squeeze_dim": (lambda a: a.squeeze(1), lambda a: a.squeeze(1), [r(3, 1, 4, 1)]),
    "squeeze_not_one": (lambda a: a.squeeze(0), lambda a: a, [r(3, 1, 4)]),
    "permute": (lambda a: a.permute(2, 0, 1), lambda a: a.transpose(2, 0, 1), [r(2, 3, 4)]),
    "permute_tuple": (lambda a: a.permute((1, 2, 0)), lambda a: a.transpose(1, 2, 0), [r(2, 3, 4)]),
    "transpose_swap_3d": (lambda a: a.transpose(0, 1), lambda a: a.swapaxes(0, 1), [r(2, 3, 4)]),
    "transpose_swap_neg": (lambda a: a.transpose(-1, -2), lambda a: a.swapaxes(-1, -2), [r(2, 3, 4)]),
    "transpose_swap_2d": (lambda a: a.transpose(0, 1), lambda a: a.T, [r(2, 3)]),
    "flatten_all": (lambda a: a.flatten(), lambda a: a.reshape(-1), [r(2, 3, 4)]),
    "flatten_from_1": (lambda a: a.flatten(1), lambda a: a.reshape(2, -1), [r(2, 3, 4)]),
    "flatten_range": (lambda a: a.flatten(0, 1), lambda a: a.reshape(6, 4), [r(2, 3, 4)]),
    "F_flatten_end": (lambda a: F.flatten(a, 1, 2), lambda a: a.reshape(2, 12, 5), [r(2, 3, 4, 5)]),
    "sum_dim": (lambda a: a.sum(dim=1), lambda a: a.sum(axis=1), [r(3, 4, 2)]),
    "sum_dim_keepdim": (lambda a: a.sum(dim=(0, 2), keepdim=True), lambda a: a.sum(axis=(0, 2), keepdims=True),
                        [r(3, 4, 2)]),
    "sum_positional": (lambda a: a.sum(1, True), lambda a: a.sum(axis=1, keepdims=True), [r(3, 4)]),
    "mean_dim": (lambda a: a.mean(dim=-1, keepdim=True), lambda a: a.mean(axis=-1, keepdims=True), [r(3, 4)]),
    "mean_dim_list": (lambda a: a.mean(dim=[0, 1]), lambda a: a.mean(axis=(0, 1)), [r(3, 4, 2)]),
    "max_dim_values": (lambda a: a.max(dim=1).values, lambda a: a.max(axis=1), [distinct(3, 4)]),
    "max_dim_keepdim": (lambda a: a.max(0, keepdim=True)[0], lambda a: a.max(axis=0, keepdims=True),
                        [distinct(3, 4)]),
    "min_dim_values": (lambda a: a.min(dim=-1).values, lambda a: a.min(axis=-1), [distinct(2, 3, 4)]),
    "min_all": (lambda a: a.min(), lambda a: a.min(), [distinct(3, 4)]),
    "min_axis": (lambda a: a.min(axis=(0, 1)), lambda a: a.min(axis=(0, 1)), [distinct(3, 4, 2)]),
    "var_all": (lambda a: a.var(), lambda a: a.var(ddof=1), [r(3, 4)]),
    "var_dim": (lambda a: a.var(1), lambda a: a.var(axis=1, ddof=1), [r(3, 4)]),
    "var_biased": (lambda a: a.var(dim=0, unbiased=False), lambda a: a.var(axis=0), [r(3, 4)]),
    "var_correction": (lambda a: a.var(dim=1, correction=2, keepdim=True),
                       lambda a: a.var(axis=1, ddof=2, keepdims=True), [r(3, 5)]),
    "var_axis_alias": (lambda a: a.var(axis=0, keepdims=True), lambda a: a.var(axis=0, ddof=1, keepdims=True),
                       [r(4, 3)]),
    "std_all": (lambda a: a.std(), lambda a: a.std(ddof=1), [r(3, 4)]),
    "std_dim": (lambda a: a.std(dim=(0, 2)), lambda a: a.std(axis=(0, 2), ddof=1), [r(3, 4, 2)]),
    "std_biased": (lambda a: a.std(0, False), lambda a: a.std(axis=0), [r(3, 4)]),
    "abs": (lambda a: a.abs(), np.abs, [distinct(3, 4)]),
    "abs_builtin": (lambda a: abs(a), np.abs, [distinct(3, 4)]),
    "sqrt": (lambda a: a.sqrt(), np.sqrt, [np.abs(r(3, 4)) + 0.5]),
    "exp": (lambda a: a.exp(), np.exp, [r(3, 4)]),
    "log": (lambda a: a.log(), np.log, [np.abs(r(3, 4)) + 0.5]),
    "clamp_both": (lambda a: a.clamp(-1.0, 1.0), lambda a: np.clip(a, -1, 1), [distinct(4, 5)]),
    "clamp_min": (lambda a: a.clamp(min=0.1), lambda a: np.maximum(a, 0.1), [distinct(4, 5)]),
    "clamp_max": (lambda a: a.clamp(max=0.1), lambda a: np.minimum(a, 0.1), [distinct(4, 5)]),
    "clip_alias": (lambda a: a.clip(-0.5, 0.5), lambda a: np.clip(a, -0.5, 0.5), [distinct(4, 5)]),
    "F_clamp": (lambda a: F.clamp(a, max=0.0), lambda a: np.minimum(a, 0.0), [distinct(4, 5)]),
    "clone": (lambda a: a.clone(), lambda a: a.copy(), [r(3, 4)]),
    "double_noop": (lambda a: a.double() * 2, lambda a: a * 2, [r(3)]),
    "to_same_device": (lambda a: a.to("cpu") * 2, lambda a: a * 2, [r(3)]),
    "cpu": (lambda a: a.cpu() * 3, lambda a: a * 3, [r(3)]),
    "getitem_row": (lambda a: a[1], lambda a: a[1], [r(3, 4)]),
    "rows_iterated": (lambda a: F.stack([row * (i + 1) for i, row in enumerate(a)]),
                      lambda a: a * np.arange(1, 4)[:, None], [r(3, 4)]),
    "cat_dim0": (lambda a, b: F.cat([a, b]), lambda a, b: np.concatenate([a, b]), [r(2, 3), r(4, 3)]),
    "cat_dim1": (lambda a, b, c: F.cat((a, b, c), dim=1), lambda a, b, c: np.concatenate([a, b, c], 1),
                 [r(2, 3), r(2, 1), r(2, 2)]),
    "cat_neg_dim": (lambda a, b: F.cat([a, b], -1), lambda a, b: np.concatenate([a, b], -1),
                    [r(2, 2, 3), r(2, 2, 1)]),
    "cat_axis_alias": (lambda a, b: F.cat([a, b], axis=1), lambda a, b: np.concatenate([a, b], 1),
                       [r(2, 3), r(2, 1)]),
    "stack_dim0": (lambda a, b: F.stack([a, b]), lambda a, b: np.stack([a, b]), [r(2, 3), r(2, 3)]),
    "stack_dim1": (lambda a, b, c: F.stack([a, b, c], dim=1), lambda a, b, c: np.stack([a, b, c], 1),
                   [r(2, 3), r(2, 3), r(2, 3)]),
    "stack_last": (lambda a, b: F.stack([a, b], -1), lambda a, b: np.stack([a, b], -1), [r(2, 3), r(2, 3)]),
    "where_tensor_cond": (lambda a, b: F.where(a > b, a, b), np.maximum, [distinct(3, 4), distinct(3, 4) * 0.9]),
    "where_scalar_b": (lambda a: F.where(a > 0, a, 0.0), lambda a: np.where(a > 0, a, 0.0), [distinct(3, 4)]),
    "where_scalar_a": (lambda b: F.where(b > 0, 1.5, b), lambda b: np.where(b > 0, 1.5, b), [distinct(3, 4)]),
    "where_broadcast": (lambda a, b: F.where(np.array([True, False, True]), a, b),
                        lambda a, b: np.where([True, False, True], a, b), [r(2, 3), r(2, 1)]),
    "pad_last": (lambda a: F.pad(a, (1, 2)), lambda a: np_pad(a, [(0, 0), (1, 2)]), [r(2, 3)]),
    "pad_two_dims": (lambda a: F.pad(a, (1, 0, 2, 1)), lambda a: np_pad(a, [(0, 0), (2, 1), (1, 0)]),
                     [r(2, 3, 4)]),
    "pad_all_dims": (lambda a: F.pad(a, (0, 1, 1, 0, 2, 2)), lambda a: np_pad(a, [(2, 2), (1, 0), (0, 1)]),
                     [r(2, 3, 4)]),
    "pad_value": (lambda a: F.pad(a, (1, 1), value=-3.0),
                  lambda a: np.pad(a, [(0, 0), (1, 1)], constant_values=-3.0), [r(2, 3)]),
    "pad_negative_crops": (lambda a: F.pad(a, (-1, 2, 1, -1)), lambda a: np_pad(a, [(1, -1), (-1, 2)]),
                           [r(3, 4)]),
    "softmax_dim0": (lambda a: F.softmax(a, dim=0), lambda a: np.exp(a) / np.exp(a).sum(0), [r(3, 4)]),
    "softmax_dim1_3d": (lambda a: F.softmax(a, 1), lambda a: np.exp(a) / np.exp(a).sum(1, keepdims=True),
                        [r(2, 3, 4)]),
    "softmax_axis_alias": (lambda a: F.softmax(a, axis=0), lambda a: np.exp(a) / np.exp(a).sum(0), [r(3, 4)]),
    "softmax_default_last": (F.softmax, lambda a: np.exp(a) / np.exp(a).sum(-1, keepdims=True), [r(3, 4)]),
    "log_softmax_dim0": (lambda a: F.log_softmax(a, dim=0), lambda a: a - np.log(np.exp(a).sum(0)), [r(3, 4)]),
    "log_softmax_dim_neg2": (lambda a: F.log_softmax(a, dim=-2),
                             lambda a: a - np.log(np.exp(a).sum(-2, keepdims=True)), [r(2, 3, 4)]),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_forward_matches_numpy(name):
    op, ref, inputs = CASES[name]
    out = op(*[Tensor(x.copy()) for x in inputs])
    expected = ref(*inputs)
    assert out.shape == np.shape(expected)
    np.testing.assert_allclose(out.data, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", sorted(CASES))
def test_backward_gradcheck(name):
    op, _, inputs = CASES[name]
    assert gradcheck(op, [x.copy() for x in inputs])


def test_max_dim_gives_the_first_maximum_its_whole_gradient():
    """As PyTorch: along ``dim`` the index (and the gradient) goes to the first of tied maxima;
    the full reduction ``max()`` still splits it between the ties."""
    x = Tensor(np.array([[1.0, 3.0, 3.0], [2.0, 0.0, 2.0]]), requires_grad=True)
    values, indices = x.max(dim=1)
    assert indices.tolist() == [1, 0]
    values.sum().backward()
    np.testing.assert_array_equal(x.grad, [[0, 1, 0], [1, 0, 0]])
    x.grad = None
    x.max().backward()
    np.testing.assert_allclose(x.grad, [[0, 0.5, 0.5], [0, 0, 0]])


def test_clamp_passes_the_gradient_at_the_bounds():
    x = Tensor(np.array([-2.0, -1.0, 0.0, 1.0, 2.0]), requires_grad=True)
    x.clamp(-1.0, 1.0).sum().backward()
    np.testing.assert_array_equal(x.grad, [0, 1, 1, 1, 0])


def test_where_and_cat_send_no_gradient_to_constants():
    a = Tensor(r(2, 3), requires_grad=True)
    b = Tensor(r(2, 3))
    F.cat([a, b], dim=0).sum().backward()
    assert b.grad is None and a.grad.shape == (2, 3)
