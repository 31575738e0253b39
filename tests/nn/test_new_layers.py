"""Issue 12's layers: Dropout, BatchNorm, LayerNorm, containers, activation/loss modules, Conv1d,
AdaptiveAvgPool2d, the recurrent cells, and the Module API; against PyTorch where it imports."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest

import gpunet
from gpunet import Tensor, nn
from gpunet import functional as F
from gpunet.testing import gradcheck

rng = np.random.default_rng(11)


def t32(shape, scale=1.0):
    return gpunet.tensor(rng.standard_normal(shape).astype(np.float32) * scale)


def test_dropout_train_and_eval(backend_name):
    layer = nn.Dropout(0.5)
    x = gpunet.tensor(np.ones((64, 64), dtype=np.float32))
    y = layer(x)
    assert set(np.unique(y.numpy())) <= {0.0, 2.0} and 0.4 < (y.numpy() == 0).mean() < 0.6
    layer.eval()
    assert layer(x) is x
    assert repr(layer) == "Dropout(p=0.5, inplace=False)"


def test_dropout_mask_is_the_same_on_every_backend():
    gpunet.manual_seed(3)
    a = nn.Dropout(0.3)(gpunet.tensor(np.ones((5, 7), dtype=np.float32))).numpy()
    gpunet.manual_seed(3)
    expected = (np.random.default_rng(3).random((5, 7)) >= 0.3) / np.float32(0.7)
    np.testing.assert_allclose(a, expected, rtol=1e-6)


def test_batchnorm_buffers_state_dict_and_modes(backend_name):
    bn = nn.BatchNorm2d(3, momentum=0.2)
    assert list(bn.state_dict()) == ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]
    assert [n for n, _ in bn.named_buffers()] == ["running_mean", "running_var", "num_batches_tracked"]
    x = t32((4, 3, 5, 5), 2.0) + 1.0
    y = bn(x)
    host = x.numpy()
    np.testing.assert_allclose(y.numpy().mean(axis=(0, 2, 3)), 0, atol=1e-5)
    np.testing.assert_allclose(bn.running_mean.numpy(), 0.2 * host.mean(axis=(0, 2, 3)), rtol=1e-5)
    assert int(bn.num_batches_tracked.numpy()) == 1 and bn.num_batches_tracked.dtype == np.int64
    bn.eval()
    y_eval = bn(x)
    ref = (host - bn.running_mean.numpy()[None, :, None, None]) / np.sqrt(bn.running_var.numpy()[None, :, None, None]
                                                                          + 1e-5)
    np.testing.assert_allclose(y_eval.numpy(), ref, rtol=1e-4, atol=1e-5)
    assert int(bn.num_batches_tracked.numpy()) == 1  # eval does not count
    y_eval.sum().backward()
    assert bn.weight.grad.shape == (3,)


def test_batchnorm_momentum_none_and_no_tracking():
    bn = nn.BatchNorm1d(2, momentum=None)
    a, b = t32((8, 2)), t32((8, 2))
    bn(a)
    bn(b)
    mean = (a.numpy().mean(0) + b.numpy().mean(0)) / 2  # cumulative average
    np.testing.assert_allclose(bn.running_mean.numpy(), mean, rtol=1e-5, atol=1e-6)
    free = nn.BatchNorm1d(2, affine=False, track_running_stats=False).eval()
    assert list(free.state_dict()) == [] and free.running_mean is None
    np.testing.assert_allclose(free(a).numpy().mean(0), 0, atol=1e-5)  # batch statistics in eval too
    assert nn.BatchNorm1d(2)(t32((4, 2, 6))).shape == (4, 2, 6)


def test_batchnorm_and_layernorm_gradcheck_in_float64():
    bn = nn.BatchNorm1d(3).double()
    x = rng.standard_normal((5, 3))

    def run(x, w, b):
        bn.weight, bn.bias = nn.Parameter(w.data), nn.Parameter(b.data)
        return F.batch_norm(x, None, None, w, b, training=True)
    assert gradcheck(run, [x, rng.standard_normal(3), rng.standard_normal(3)])
    ln = nn.LayerNorm((2, 3)).double()
    assert ln.weight.dtype == np.float64
    assert gradcheck(lambda x: ln(x), [rng.standard_normal((4, 2, 3))])


def test_containers():
    seq = nn.Sequential(OrderedDict([("fc", nn.Linear(2, 3)), ("act", nn.ReLU()), ("out", nn.Linear(3, 1))]))
    assert list(seq.state_dict()) == ["fc.weight", "fc.bias", "out.weight", "out.bias"]
    assert isinstance(seq[1], nn.ReLU) and len(seq[1:]) == 2 and seq.fc is seq[0]
    seq[1] = nn.Tanh()
    assert list(dict(seq.named_children())) == ["fc", "act", "out"] and isinstance(seq.act, nn.Tanh)
    assert seq(t32((4, 2))).shape == (4, 1)
    layers = nn.ModuleList([nn.Linear(2, 2) for _ in range(3)])
    layers.append(nn.Linear(2, 1))
    assert len(layers) == 4 and len(layers.parameters()) == 8 and isinstance(layers[-1], nn.Linear)
    assert list(layers.state_dict())[:2] == ["0.weight", "0.bias"]
    heads = nn.ModuleDict({"a": nn.Linear(2, 1), "b": nn.Linear(2, 3)})
    assert "a" in heads and list(heads.keys()) == ["a", "b"] and heads["b"].out_features == 3
    assert list(heads.state_dict()) == ["a.weight", "a.bias", "b.weight", "b.bias"]
    with pytest.raises(TypeError, match="expected Module"):
        nn.ModuleList([nn.Linear(2, 2), 3])

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.blocks = nn.ModuleList([nn.Linear(4, 4), nn.Linear(4, 4)])

        def forward(self, x):
            for block in self.blocks:
                x = F.relu(block(x))
            return x
    assert Net()(t32((2, 4))).shape == (2, 4) and len(Net().parameters()) == 4


def test_activation_and_loss_modules():
    x = t32((3, 4))
    host = x.numpy()
    np.testing.assert_allclose(nn.ReLU()(x).numpy(), np.maximum(host, 0))
    np.testing.assert_allclose(nn.LeakyReLU(0.1)(x).numpy(), np.where(host > 0, host, 0.1 * host), rtol=1e-6)
    np.testing.assert_allclose(nn.GELU()(x).numpy(), F.gelu(x).numpy())
    np.testing.assert_allclose(nn.Softmax(dim=0)(x).numpy().sum(0), 1, rtol=1e-6)
    np.testing.assert_allclose(np.exp(nn.LogSoftmax(1)(x).numpy()).sum(1), 1, rtol=1e-6)
    assert repr(nn.ReLU()) == "ReLU()" and repr(nn.Softmax(1)) == "Softmax(dim=1)"
    labels = np.array([0, 3, 1])
    ce = nn.CrossEntropyLoss(weight=np.array([1.0, 2.0, 1.0, 0.5]), label_smoothing=0.1)
    assert "weight" in ce.state_dict()
    assert ce(x, labels).item() == pytest.approx(
        F.cross_entropy(x, labels, weight=np.array([1.0, 2.0, 1.0, 0.5]), label_smoothing=0.1).item())
    assert nn.NLLLoss()(F.log_softmax(x, dim=1), labels).item() == pytest.approx(F.cross_entropy(x, labels).item())
    assert nn.MSELoss(reduction="sum")(x, np.zeros((3, 4), np.float32)).item() == pytest.approx((host ** 2).sum(),
                                                                                                rel=1e-5)
    assert nn.L1Loss(reduction="none")(x, np.zeros((3, 4), np.float32)).shape == (3, 4)
    bits = (host > 0).astype(np.float32)
    assert nn.BCEWithLogitsLoss(pos_weight=np.full(4, 2.0))(x, bits).dtype == np.float32
    assert nn.BCELoss()(F.sigmoid(x), bits).item() == pytest.approx(
        F.binary_cross_entropy_with_logits(x, bits).item(), rel=1e-5)
    with pytest.raises(ValueError, match="MSELoss: expected reduction in"):
        nn.MSELoss(reduction="avg")


def test_conv1d_adaptive_pool_and_cells_shapes():
    conv = nn.Conv1d(2, 4, 3, stride=2, padding=1)
    assert conv.weight.shape == (4, 2, 3)
    assert conv(t32((5, 2, 9))).shape == (5, 4, 5) and conv(t32((2, 9))).shape == (4, 5)
    assert nn.AdaptiveAvgPool2d((1, 1))(t32((2, 3, 5, 7))).shape == (2, 3, 1, 1)
    cell = nn.LSTMCell(3, 4)
    assert [n for n, _ in cell.named_parameters()] == ["weight_ih", "weight_hh", "bias_ih", "bias_hh"]
    assert cell.weight_ih.shape == (16, 3)
    h, c = cell(t32((2, 3)))
    assert h.shape == c.shape == (2, 4)
    h, c = cell(t32((3,)), (h[0], c[0]))
    assert h.shape == (4,)
    assert nn.GRUCell(3, 5, bias=False)(t32((2, 3))).shape == (2, 5)
    assert nn.RNNCell(3, 5, nonlinearity="relu")(t32((2, 3))).shape == (2, 5)


def test_module_api():
    model = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3), nn.Linear(3, 1))
    seen = []
    model.apply(lambda m: seen.append(type(m).__name__))
    assert seen == ["Linear", "BatchNorm1d", "Linear", "Sequential"]
    model.requires_grad_(False)
    assert not any(p.requires_grad for p in model.parameters())
    model.requires_grad_()
    model(t32((4, 2))).sum().backward()
    model.zero_grad(set_to_none=False)
    assert all(p.grad is not None and not p.grad.any() for p in model.parameters())
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())
    model.double()
    assert all(p.dtype == np.float64 for p in model.parameters())
    assert model[1].running_mean.dtype == np.float64 and model[1].num_batches_tracked.dtype == np.int64
    model.float()
    assert model[1].running_var.dtype == np.float32
    model.to("cpu").cpu().to("numpy")
    model.to("float64")
    assert model[0].weight.dtype == np.float64
    with pytest.raises(ValueError, match="expected a device"):
        model.to(device="tpu")

    class WithBuffer(nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("steps", np.zeros(2))
            self.register_buffer("scratch", np.zeros(1), persistent=False)
    m = WithBuffer()
    assert list(m.state_dict()) == ["steps"] and len(m.buffers()) == 2
    m.steps = np.ones(2)
    assert isinstance(m.steps, Tensor) and m.state_dict()["steps"].sum() == 2
    result = m.load_state_dict({"steps": np.full(2, 3.0), "extra": np.zeros(1)}, strict=False)
    assert result == ([], ["extra"]) and result.unexpected_keys == ["extra"] and result.missing_keys == []
    assert m.steps.numpy().tolist() == [3.0, 3.0]


@pytest.mark.gpu
@pytest.mark.standin  # also runs on the CuPy stand-in (tests/test_on_standin.py)
def test_module_cuda_moves_buffers():
    model = nn.BatchNorm1d(3).cuda()
    assert model.running_mean.device == "cupy" and model.weight.device == "cupy"
    model.to("cpu")
    assert model.running_mean.device == "numpy"


# ----- PyTorch: values and state_dict exchange both ways -----------------------------------------
def _to_torch(state):
    import torch
    return {k: torch.from_numpy(np.array(v)) for k, v in state.items()}


def test_batchnorm_matches_pytorch_and_exchanges_state_both_ways():
    torch = pytest.importorskip("torch")
    ours, theirs = nn.BatchNorm2d(3, momentum=0.3), torch.nn.BatchNorm2d(3, momentum=0.3)
    ours.weight.data[:] = rng.standard_normal(3)
    theirs.load_state_dict(_to_torch(ours.state_dict()))
    assert list(ours.state_dict()) == list(theirs.state_dict())
    for _ in range(3):
        x = rng.standard_normal((4, 3, 5, 5)).astype(np.float32)
        np.testing.assert_allclose(ours(gpunet.tensor(x)).numpy(), theirs(torch.tensor(x)).detach().numpy(),
                                   rtol=1e-4, atol=1e-5)
    for key, value in theirs.state_dict().items():
        np.testing.assert_allclose(ours.state_dict()[key], value.numpy(), rtol=1e-5, atol=1e-6)
    ours.eval(), theirs.eval()
    x = rng.standard_normal((2, 3, 4, 4)).astype(np.float32)
    np.testing.assert_allclose(ours(gpunet.tensor(x)).numpy(), theirs(torch.tensor(x)).detach().numpy(),
                               rtol=1e-4, atol=1e-5)
    fresh = nn.BatchNorm2d(3)
    fresh.load_state_dict(theirs.state_dict())  # torch tensors in, directly
    assert int(fresh.num_batches_tracked.numpy()) == 3
    np.testing.assert_allclose(fresh.running_var.numpy(), theirs.running_var.numpy())


def test_layers_match_pytorch():
    torch = pytest.importorskip("torch")
    cases = [
        (nn.Conv1d(2, 4, 3, stride=2, padding=1, dilation=1), torch.nn.Conv1d(2, 4, 3, stride=2, padding=1),
         (3, 2, 11)),
        (nn.Conv1d(2, 3, 2, dilation=2, bias=False), torch.nn.Conv1d(2, 3, 2, dilation=2, bias=False), (2, 2, 7)),
        (nn.LayerNorm(6), torch.nn.LayerNorm(6), (3, 6)),
        (nn.AdaptiveAvgPool2d((2, 3)), torch.nn.AdaptiveAvgPool2d((2, 3)), (2, 3, 5, 7)),
        (nn.GELU("tanh"), torch.nn.GELU("tanh"), (4, 5)),
    ]
    for ours, theirs, shape in cases:
        if ours.state_dict():
            ours.load_state_dict(theirs.state_dict())
        x = rng.standard_normal(shape).astype(np.float32)
        np.testing.assert_allclose(ours(gpunet.tensor(x)).numpy(), theirs(torch.tensor(x)).detach().numpy(),
                                   rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["RNNCell", "LSTMCell", "GRUCell"])
def test_cells_match_pytorch_both_ways(name):
    torch = pytest.importorskip("torch")
    theirs = getattr(torch.nn, name)(3, 4)
    ours = getattr(nn, name)(3, 4)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    ours.load_state_dict(theirs.state_dict())
    x = rng.standard_normal((2, 3)).astype(np.float32)
    h = rng.standard_normal((2, 4)).astype(np.float32)
    if name == "LSTMCell":
        c = rng.standard_normal((2, 4)).astype(np.float32)
        oh, oc = ours(gpunet.tensor(x), (gpunet.tensor(h), gpunet.tensor(c)))
        th, tc = theirs(torch.tensor(x), (torch.tensor(h), torch.tensor(c)))
        np.testing.assert_allclose(oc.numpy(), tc.detach().numpy(), rtol=1e-5, atol=1e-6)
    else:
        oh, th = ours(gpunet.tensor(x), gpunet.tensor(h)), theirs(torch.tensor(x), torch.tensor(h))
    np.testing.assert_allclose(oh.numpy(), th.detach().numpy(), rtol=1e-5, atol=1e-6)
    back = getattr(torch.nn, name)(3, 4)
    back.load_state_dict(_to_torch(ours.state_dict()))
    for key, value in back.state_dict().items():
        np.testing.assert_array_equal(value.numpy(), ours.state_dict()[key])


def test_cells_gradcheck_in_float64():
    for cell in (nn.RNNCell(2, 3), nn.LSTMCell(2, 3), nn.GRUCell(2, 3)):
        cell.double()

        def fn(x, h, cell=cell):
            out = cell(x, (h, h) if isinstance(cell, nn.LSTMCell) else h)
            return out
        assert gradcheck(fn, [rng.standard_normal((2, 2)), rng.standard_normal((2, 3))])


def test_dropout_train_and_eval_like_pytorch():
    torch = pytest.importorskip("torch")
    ours, theirs = nn.Dropout(0.4), torch.nn.Dropout(0.4)
    x = np.ones((50, 40), dtype=np.float32)
    a, b = ours(gpunet.tensor(x)).numpy(), theirs(torch.tensor(x)).numpy()
    assert set(np.unique(a)) == set(np.unique(b))  # {0, 1 / 0.6}: the same inverted scaling
    ours.eval(), theirs.eval()
    np.testing.assert_array_equal(ours(gpunet.tensor(x)).numpy(), theirs(torch.tensor(x)).numpy())


def test_a_pytorch_style_cnn_with_batchnorm_and_dropout_trains():
    """The CIFAR-style tutorial shape: Conv -> BatchNorm -> ReLU -> pool, AdaptiveAvgPool2d,
    Dropout, Linear, CrossEntropyLoss; the loss falls and eval() is deterministic."""
    gpunet.manual_seed(0)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(OrderedDict([
                ("conv1", nn.Conv2d(1, 8, 3, padding=1)), ("bn1", nn.BatchNorm2d(8)), ("relu1", nn.ReLU()),
                ("pool", nn.MaxPool2d(2)), ("conv2", nn.Conv2d(8, 16, 3, padding=1)), ("bn2", nn.BatchNorm2d(16)),
                ("relu2", nn.ReLU()), ("gap", nn.AdaptiveAvgPool2d(1)), ("flat", nn.Flatten())]))
            self.head = nn.Sequential(nn.Dropout(0.2), nn.Linear(16, 3))

        def forward(self, x):
            return self.head(self.features(x))

    data = np.random.default_rng(0)
    labels = data.integers(0, 3, size=48)
    images = data.standard_normal((48, 1, 8, 8)).astype(np.float32) * 0.5
    for k in range(3):
        images[labels == k, 0, k * 2:k * 2 + 3, :] += 2.0  # a class-specific stripe
    net, criterion = Net(), nn.CrossEntropyLoss(label_smoothing=0.05)
    opt = gpunet.optim.Adam(net.parameters(), lr=0.02)
    x, t = gpunet.tensor(images), gpunet.tensor(labels)
    losses = []
    for _ in range(15):
        opt.zero_grad()
        loss = criterion(net(x), t)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.6 * losses[0]
    net.eval()
    with gpunet.no_grad():
        a, b = net(x).numpy(), net(x).numpy()
    np.testing.assert_array_equal(a, b)
    assert (a.argmax(1) == labels).mean() > 0.8
    assert "features.bn1.running_mean" in net.state_dict()
