"""PyTorch's everyday Tensor idioms: comparisons, logic, sizes, casts, scalars, iteration,
``max(dim)``, ``argmax``, ``var``/``std`` defaults, devices and the small helpers."""

from __future__ import annotations

import numpy as np
import pytest

import gpunet
from gpunet import OpError, Tensor
from gpunet import functional as F


def test_comparisons_are_elementwise_bool_tensors_without_grad():
    a = gpunet.tensor([1.0, 2.0, 3.0], requires_grad=True)
    b = gpunet.tensor([3.0, 2.0, 1.0])
    x, y = a.numpy(), b.numpy()
    for got, want in [(a == b, x == y), (a != b, x != y), (a < b, x < y), (a <= b, x <= y), (a > b, x > y),
                      (a >= b, x >= y), (a == 2, x == 2), (a > 1.5, x > 1.5), (a == x, x == x),
                      (2 < a, 2 < x)]:  # noqa: SIM300 - the reflected operator
        assert isinstance(got, Tensor) and got.dtype == np.bool_ and not got.requires_grad
        np.testing.assert_array_equal(got.numpy(), want)


def test_accuracy_idiom_counts_the_matches():
    """The silent failure of the issue: ``(pred == labels).sum()`` added 0."""
    logits = gpunet.tensor([[0.1, 2.0, 0.3], [3.0, 0.0, 1.0], [0.0, 0.1, 0.2], [1.0, 0.0, 0.0]])
    labels = gpunet.tensor([1, 0, 1, 0])
    pred = logits.argmax(dim=1)
    correct = 0
    correct += (pred == labels).sum().item()
    assert correct == 3
    assert (pred == labels).float().mean().item() == pytest.approx(0.75)
    _, predicted = logits.max(1)
    assert (predicted == labels).sum().item() == 3


def test_broadcast_comparison_and_mismatched_shapes():
    a = gpunet.tensor([[1, 2, 3]])
    np.testing.assert_array_equal((a == gpunet.tensor([[1], [2]])).numpy(), [[1, 0, 0], [0, 1, 0]])
    with pytest.raises(OpError, match=r"eq: expected inputs that broadcast together, got \(1, 3\), \(2,\)"):
        a == gpunet.tensor([1, 2])  # noqa: B015


def test_equality_with_other_objects_is_identity_and_hashing_by_identity():
    a = gpunet.tensor([1.0, 2.0])
    assert (a == None) is False  # noqa: E711
    assert (a != "text") is True
    assert len({a, gpunet.tensor([1.0, 2.0])}) == 2
    assert {a: 1}[a] == 1
    params = [gpunet.tensor([1.0]), a]
    assert any(p is a for p in params)


def test_logic_ops_on_bool_and_integer_tensors():
    x = gpunet.tensor([-1.0, 0.5, 2.0])
    inside = (x > 0) & (x < 1)
    np.testing.assert_array_equal(inside.numpy(), [False, True, False])
    np.testing.assert_array_equal(((x < 0) | (x > 1)).numpy(), [True, False, True])
    np.testing.assert_array_equal((~inside).numpy(), [True, False, True])
    np.testing.assert_array_equal(((x > 0) ^ (x > 1)).numpy(), [False, True, False])
    np.testing.assert_array_equal((True & (x > 0)).numpy(), [False, True, True])
    ints = gpunet.tensor([6, 3])
    np.testing.assert_array_equal((ints & 5).numpy(), [4, 1])
    np.testing.assert_array_equal((~ints).numpy(), [-7, -4])
    assert inside.any().item() is True and inside.all().item() is False
    assert 2.0 in x and 3.0 not in x
    np.testing.assert_array_equal(gpunet.tensor([[True, False], [True, True]]).all(dim=1).numpy(), [False, True])
    np.testing.assert_array_equal(gpunet.tensor([[True, False], [False, False]]).any(0).numpy(), [True, False])


def test_size_numel_dim_and_shape():
    t = gpunet.zeros(2, 3, 4)
    assert t.size() == (2, 3, 4) == t.shape
    assert t.size(0) == 2 and t.size(-1) == 4 and isinstance(t.size(1), int)
    assert t.numel() == 24 and t.nelement() == 24 and t.dim() == 3 == t.ndim
    assert len(t) == 2
    with pytest.raises(OpError, match=r"size: expected dim in \[-3, 3\) for shape \(2, 3, 4\), got 3"):
        t.size(3)


def test_modules_count_parameters_with_numel():
    model = gpunet.nn.Linear(3, 2)
    assert model.num_parameters() == 8
    assert model.weight.size() == (2, 3) and model.weight.size(1) == 3


def test_scalars_make_0d_tensors_and_python_numbers_come_back():
    t = gpunet.tensor(3.0)
    assert t.shape == () and t.dim() == 0 and t.dtype == np.float32
    assert float(t) == 3.0 and int(t) == 3 and bool(t) is True and t.item() == 3.0
    assert gpunet.tensor(5).dtype == np.int64 and gpunet.tensor(True).dtype == np.bool_
    assert float(gpunet.tensor([2.5])) == 2.5 and int(gpunet.tensor([[7]])) == 7
    loss = (gpunet.tensor([1.0, 2.0], requires_grad=True) ** 2).sum()
    assert loss.shape == () and f"{float(loss):.1f}" == "5.0"
    assert isinstance(loss.item(), float) and isinstance(gpunet.tensor([1, 2]).sum().item(), int)
    assert [10, 20, 30][gpunet.tensor(1)] == 20  # integer tensors index Python sequences
    with pytest.raises(OpError, match=r"float: expected a one-element tensor, got shape \(2,\)"):
        float(gpunet.tensor([1.0, 2.0]))
    with pytest.raises(OpError, match=r"bool: expected a one-element tensor, got shape \(2,\); use .any"):
        bool(gpunet.tensor([1.0, 2.0]))
    with pytest.raises(OpError, match="item: expected a one-element tensor"):
        gpunet.tensor([1.0, 2.0]).item()
    with pytest.raises(TypeError, match="integer tensors"):
        [1, 2][gpunet.tensor(1.0)]


def test_tensor_factory_copies_and_keeps_lists_of_tensors():
    host = np.arange(3)
    t = gpunet.tensor(host)
    host[0] = 99
    assert t.tolist() == [0, 1, 2]
    assert gpunet.tensor([gpunet.tensor(1.0), gpunet.tensor(2.0)]).tolist() == [1.0, 2.0]
    assert gpunet.tensor([1.0], dtype=gpunet.float64).dtype == np.float64
    assert gpunet.tensor([1.0], device="cpu").device == "numpy"


def test_row_iteration_stops():
    t = gpunet.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    rows = [row.tolist() for row in t]
    assert rows == [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]
    assert [x.item() for x in t[0]] == [1.0, 2.0]
    assert list(gpunet.zeros(0, 3)) == []
    a, b, c = t
    assert b.tolist() == [3.0, 4.0]
    with pytest.raises(TypeError, match="iteration over a 0-d tensor"):
        iter(gpunet.tensor(1.0)).__next__()
    with pytest.raises(TypeError, match="0-d"):
        len(gpunet.tensor(1.0))


def test_casts_follow_pytorch():
    x = gpunet.tensor([1.7, -2.2], requires_grad=True)
    assert x.float() is x  # already float32
    assert x.double().dtype == np.float64 and x.double().requires_grad
    assert x.half().dtype == np.float16
    assert x.long().dtype == np.int64 and x.long().tolist() == [1, -2] and not x.long().requires_grad
    assert x.int().dtype == np.int32
    assert gpunet.tensor([0.0, 3.0]).bool().tolist() == [False, True]
    assert x.to(gpunet.float64).dtype == np.float64 and x.to("float64").dtype == np.float64
    assert x.type_as(gpunet.tensor([1])).dtype == np.int64
    x.double().sum().backward()
    np.testing.assert_array_equal(x.grad, [1.0, 1.0])
    assert x.grad.dtype == np.float32


def test_max_min_with_dim_give_named_values_and_indices():
    x = gpunet.tensor([[1.0, 5.0, 2.0], [7.0, 0.0, 7.0]])
    out = x.max(dim=1)
    assert isinstance(out, F.MinMax) and out._fields == ("values", "indices")
    assert out.values.tolist() == [5.0, 7.0] and out.indices.tolist() == [1, 0]
    assert out.indices.dtype == np.int64
    values, indices = x.min(0)
    assert values.tolist() == [1.0, 0.0, 2.0] and indices.tolist() == [0, 1, 0]
    kept = x.max(1, keepdim=True)
    assert kept.values.shape == (2, 1) and kept.indices.shape == (2, 1)
    assert x.max().item() == 7.0 and x.min().item() == 0.0
    assert x.max(axis=1).tolist() == [5.0, 7.0]  # NumPy's axis=: values only
    assert F.max(x, 1).indices.tolist() == [1, 0] and F.min(x).item() == 0.0


def test_argmax_argmin():
    x = gpunet.tensor([[1.0, 5.0, 2.0], [7.0, 0.0, 7.0]])
    assert x.argmax().item() == 3 and x.argmin().item() == 4
    assert x.argmax(dim=1).tolist() == [1, 0] and x.argmin(1).tolist() == [0, 1]
    assert x.argmax(1, keepdim=True).shape == (2, 1) and x.argmax(axis=0).tolist() == [1, 0, 1]
    assert x.argmax(dim=1).dtype == np.int64 and not x.argmax().requires_grad


def test_var_and_std_are_unbiased_by_default():
    data = np.array([[1.0, 2.0, 4.0], [3.0, 3.0, 9.0]])
    x = Tensor(data)
    assert x.var().item() == pytest.approx(data.var(ddof=1))
    assert x.std().item() == pytest.approx(data.std(ddof=1))
    np.testing.assert_allclose(x.var(1).numpy(), data.var(axis=1, ddof=1))
    np.testing.assert_allclose(x.var(1, unbiased=False).numpy(), data.var(axis=1))
    np.testing.assert_allclose(x.std(dim=0, correction=0).numpy(), data.std(axis=0))
    np.testing.assert_allclose(x.std(axis=0, ddof=0).numpy(), data.std(axis=0))
    assert np.isnan(gpunet.tensor([1.0]).var().item())  # one value, one degree of freedom: nan


def test_requires_grad_detach_clone_and_leaves():
    w = gpunet.zeros(3).requires_grad_()
    assert w.requires_grad and w.is_leaf
    y = (w * 2).clone()
    assert y.requires_grad and not y.is_leaf
    y.sum().backward()
    np.testing.assert_array_equal(w.grad, [2, 2, 2])
    d = y.detach()
    assert not d.requires_grad and d.is_leaf
    assert w.requires_grad_(False) is w and not w.requires_grad
    with pytest.raises(OpError, match="requires_grad_: expected a floating tensor, got dtype int64"):
        gpunet.tensor([1, 2]).requires_grad_()
    with pytest.raises(OpError, match="requires_grad_: expected a leaf tensor"):
        (gpunet.ones(2, requires_grad=True) * 2).requires_grad_(False)


def test_devices_cpu_and_to():
    x = gpunet.tensor([1.0, 2.0], requires_grad=True)
    assert x.device == "numpy" and not x.is_cuda
    assert x.cpu() is x and x.to("cpu") is x and x.to("numpy") is x and x.to(x.device) is x
    assert x.to("cpu", copy=True) is not x
    assert x.to(gpunet.tensor([1], dtype=gpunet.float64)).dtype == np.float64
    assert x.contiguous() is x
    with pytest.raises(gpunet.BackendError, match="to: expected a device 'cpu', 'cuda'"):
        x.to("cuda:1")
    with pytest.raises(gpunet.BackendError, match=r"to: expected a device .*or a dtype, got 'tpu'"):
        x.to("tpu")


@pytest.mark.skipif(gpunet.cuda.is_available(), reason="checks the error without a usable GPU")
def test_cuda_without_a_gpu_says_why():
    with pytest.raises(gpunet.BackendError, match="CuPy backend is not usable"):
        gpunet.tensor([1.0]).cuda()
    with pytest.raises(gpunet.BackendError, match="not usable"):
        gpunet.tensor([1.0]).to("cuda")


def test_tolist_numpy_repr():
    t = gpunet.tensor([[1, 2], [3, 4]])
    assert t.tolist() == [[1, 2], [3, 4]] and gpunet.tensor(2.5).tolist() == 2.5
    assert isinstance(t.numpy(), np.ndarray)
    np.testing.assert_array_equal(np.asarray(t), [[1, 2], [3, 4]])
    assert repr(gpunet.tensor(3.0)) == "tensor(3., dtype=float32, device='numpy')"
    assert "requires_grad=True" in repr(gpunet.ones(2, requires_grad=True))


def test_transpose_two_dims_swaps_them_as_pytorch():
    x = gpunet.zeros(2, 3, 4)
    assert x.transpose(0, 1).shape == (3, 2, 4) and x.transpose(-1, 1).shape == (2, 4, 3)
    assert x.transpose(2, 0, 1).shape == (4, 2, 3) and x.transpose().shape == (4, 3, 2)
    assert gpunet.zeros(2, 3).transpose(0, 1).shape == (3, 2) and gpunet.zeros(2, 3).T.shape == (3, 2)
    assert x.permute(2, 1, 0).shape == (4, 3, 2)
