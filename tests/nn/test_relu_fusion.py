"""ReLU fused with its neighbours: ``F.relu_max_pool2d`` / ``F.relu_avg_pool2d`` (ReLU then pooling),
``F.linear_relu`` (Linear then ReLU) and ``F.conv2d_relu_pool2d`` (Conv2d, ReLU, pooling), and where
``Sequential``, ``MLP`` and ``LeNet`` use them (only when no hook would see an intermediate output)."""

from __future__ import annotations

import numpy
import pytest

import gpunet
from gpunet import functional as F
from gpunet import nn
from gpunet.autograd import OpError, Tensor
from gpunet.models.cnn import LeNet


def _x(shape=(3, 2, 8, 8), seed=0):
    return numpy.random.default_rng(seed).standard_normal(shape).astype(numpy.float32)


@pytest.mark.parametrize("fused, plain", [(F.relu_max_pool2d, F.max_pool2d), (F.relu_avg_pool2d, F.avg_pool2d)])
@pytest.mark.parametrize("geo", [dict(kernel_size=2), dict(kernel_size=3, stride=1, padding=1)])
def test_functional_equals_pool_of_relu(fused, plain, geo):
    a, b = Tensor(_x(), requires_grad=True), Tensor(_x(), requires_grad=True)
    ya, yb = fused(a, **geo), plain(F.relu(b), **geo)
    numpy.testing.assert_allclose(ya.numpy(), yb.numpy(), rtol=1e-6, atol=1e-7)
    gy = Tensor(_x(ya.shape, seed=1))
    (ya * gy).sum().backward()
    (yb * gy).sum().backward()
    numpy.testing.assert_allclose(numpy.asarray(a.grad), numpy.asarray(b.grad), rtol=1e-6, atol=1e-7)


def test_functional_bad_input_names_the_op():
    with pytest.raises(OpError, match=r"relu_max_pool2d: expected input of 4 dimensions"):
        F.relu_max_pool2d(Tensor(numpy.zeros((2, 8, 8), numpy.float32)), 2)


class _Recorder:
    def __init__(self):
        self.calls = []

    def __call__(self, module, inputs, output):
        self.calls.append(type(module).__name__)


def _assert_equals_layer_by_layer(model, x, out, grads):
    """``out`` and the parameters' ``grads`` equal those of running each layer's forward in turn."""
    model.zero_grad()
    plain = x
    for layer in model:
        plain = layer.forward(plain)
    plain.sum().backward()
    numpy.testing.assert_allclose(out.numpy(), plain.numpy(), rtol=1e-6, atol=1e-6)
    for got, p in zip(grads, model.parameters()):
        numpy.testing.assert_allclose(got, numpy.array(p.grad), rtol=1e-5, atol=1e-6)


def _stack(pool):
    """ReLU then pooling after a layer that is not a convolution (Identity)."""
    gpunet.manual_seed(0)
    return nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.Identity(), nn.ReLU(), pool, nn.Flatten(),
                         nn.Linear(4 * 4 * 4, 3))


@pytest.mark.parametrize("pool", [nn.MaxPool2d(2), nn.AvgPool2d(2)], ids=["max", "avg"])
def test_sequential_fuses_relu_then_pool_with_the_same_results(pool, monkeypatch):
    model, x = _stack(pool), Tensor(_x())
    calls = []
    original = type(pool).after_relu
    monkeypatch.setattr(type(pool), "after_relu", lambda self, v: calls.append(1) or original(self, v))
    fused_out = model(x)
    fused_out.sum().backward()
    fused_grads = [numpy.array(p.grad) for p in model.parameters()]
    assert calls, "Sequential did not take the fused op for ReLU then pooling"

    model.zero_grad()
    hook = _Recorder()
    handle = model[2].register_forward_hook(hook)  # a hook on the ReLU: it must see its output
    plain_out = model(x)
    plain_out.sum().backward()
    handle.remove()
    assert hook.calls == ["ReLU"] and len(calls) == 1, "a hooked ReLU was fused away"
    numpy.testing.assert_allclose(fused_out.numpy(), plain_out.numpy(), rtol=1e-6, atol=1e-6)
    for got, p in zip(fused_grads, model.parameters()):
        numpy.testing.assert_allclose(got, numpy.array(p.grad), rtol=1e-5, atol=1e-6)


def test_sequential_does_not_fuse_other_activations_or_a_hooked_pool():
    seen = _Recorder()
    tanh_model = nn.Sequential(nn.Tanh(), nn.MaxPool2d(2))
    tanh_model[1].register_forward_hook(seen)
    x = _x()
    numpy.testing.assert_allclose(tanh_model(Tensor(x)).numpy(), F.max_pool2d(F.tanh(Tensor(x)), 2).numpy())
    relu_model = nn.Sequential(nn.ReLU(), nn.MaxPool2d(2))
    relu_model[1].register_forward_hook(seen)
    relu_model(Tensor(x))
    assert seen.calls == ["MaxPool2d", "MaxPool2d"]


@pytest.mark.parametrize("pool", ["max", "avg"])
def test_lenet_fused_step_equals_the_unfused_one(pool, monkeypatch):
    x = Tensor(_x((4, 1, 32, 32)))
    results = []
    for fused in (True, False):
        if not fused:
            monkeypatch.setattr(LeNet, "_conv_act_pool", lambda self, conv, v: self.pool(self.act(conv(v))))
            monkeypatch.setattr(LeNet, "_act_pool", lambda self, v: self.pool(self.act(v)))
            monkeypatch.setattr(LeNet, "_dense_act", lambda self, layer, v: self.act(layer(v)))
        gpunet.manual_seed(0)
        model = LeNet(pool=pool)
        out = model(x)
        out.sum().backward()
        results.append((out.numpy(), [numpy.array(p.grad) for p in model.parameters()]))
    (out_a, grads_a), (out_b, grads_b) = results
    numpy.testing.assert_allclose(out_a, out_b, rtol=1e-6, atol=1e-6)
    for a, b in zip(grads_a, grads_b):
        numpy.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def _conv_stack(pool, groups=1):
    gpunet.manual_seed(0)
    return nn.Sequential(nn.Conv2d(2, 4, 3, padding=1, groups=groups), nn.ReLU(), pool, nn.Flatten(),
                         nn.Linear(4 * 4 * 4, 3))


@pytest.mark.parametrize("hook_on", [None, 0, 1, 2])
@pytest.mark.parametrize("pool", [nn.MaxPool2d(2), nn.AvgPool2d(2)], ids=["max", "avg"])
def test_sequential_fuses_conv_relu_pool_unless_hooked(pool, hook_on, monkeypatch):
    model, x = _conv_stack(pool), Tensor(_x())
    calls = []
    original = nn.Conv2d.with_relu_pool
    monkeypatch.setattr(nn.Conv2d, "with_relu_pool", lambda self, v, p: calls.append(1) or original(self, v, p))
    seen = _Recorder()
    if hook_on is not None:
        model[hook_on].register_forward_hook(seen)
    out = model(x)
    out.sum().backward()
    fused_grads = [numpy.array(p.grad) for p in model.parameters()]
    assert len(calls) == (1 if hook_on is None else 0), "Conv2d, ReLU, pooling: fused exactly when unhooked"
    assert seen.calls == ([] if hook_on is None else [type(model[hook_on]).__name__])
    _assert_equals_layer_by_layer(model, x, out, fused_grads)


def test_a_grouped_conv_runs_as_itself_then_the_fused_relu_pool():
    model, x = _conv_stack(nn.MaxPool2d(2), groups=2), Tensor(_x())
    out = model(x)
    plain = x
    for layer in model:
        plain = layer.forward(plain)
    numpy.testing.assert_allclose(out.numpy(), plain.numpy(), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("pool", ["max", "avg"])
@pytest.mark.parametrize("padding", [0, 1, "same", (2, 1)])
def test_functional_conv_relu_pool_equals_the_three_ops(pool, padding):
    rng = numpy.random.default_rng(4)
    x = rng.standard_normal((3, 2, 9, 8)).astype(numpy.float32)
    w, b = rng.standard_normal((4, 2, 3, 2)).astype(numpy.float32), rng.standard_normal(4).astype(numpy.float32)
    plain_pool = F.max_pool2d if pool == "max" else F.avg_pool2d
    results = []
    for fused in (True, False):
        tx, tw, tb = (Tensor(a.copy(), requires_grad=True) for a in (x, w, b))
        if fused:
            y = F.conv2d_relu_pool2d(tx, tw, tb, padding=padding, pool=pool, pool_kernel=2, pool_stride=(1, 2))
        else:
            y = plain_pool(F.relu(F.conv2d(tx, tw, tb, padding=padding)), 2, stride=(1, 2))
        (y * y).sum().backward()
        results.append([y.numpy()] + [numpy.asarray(t.grad) for t in (tx, tw, tb)])
    for a, b_ in zip(*results):
        numpy.testing.assert_allclose(a, b_, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("call, message", [
    (lambda x, w: F.conv2d_relu_pool2d(x, w, pool="min"),
     r"conv2d_relu_pool2d: expected pool 'max' or 'avg', got 'min'"),
    (lambda x, w: F.conv2d_relu_pool2d(x, w, pool_kernel=9),
     r"conv2d_relu_pool2d: output size must be positive, got \(0, 0\)"),
    (lambda x, w: F.conv2d_relu_pool2d(x, w, pool_kernel=2, pool_padding=2),
     r"conv2d_relu_pool2d: expected padding <= kernel // 2"),
    (lambda x, w: F.conv2d_relu_pool2d(x[0], w), r"conv2d: expected input of 4 dimensions"),
])
def test_functional_conv_relu_pool_bad_input_names_the_op(call, message):
    x, w = Tensor(_x((2, 2, 9, 9))), Tensor(_x((3, 2, 3, 3)))
    with pytest.raises(OpError, match=message):
        call(x, w)


def test_lenet_takes_the_fused_conv_op_and_a_hooked_conv_sees_its_own_output(monkeypatch):
    calls = []
    original = nn.Conv2d.with_relu_pool
    monkeypatch.setattr(nn.Conv2d, "with_relu_pool", lambda self, v, p: calls.append(1) or original(self, v, p))
    model, seen = LeNet(), []
    model(Tensor(_x((2, 1, 32, 32))))
    assert len(calls) == 2
    model.conv2.register_forward_hook(lambda module, inputs, output: seen.append(float(output.numpy().min())))
    model(Tensor(_x((2, 1, 32, 32))))
    assert len(calls) == 3 and len(seen) == 1 and seen[0] < 0.0  # the conv output itself, before its ReLU


def test_lenet_hook_on_pool_sees_the_relu_output():
    model, seen = LeNet(), []
    model.pool.register_forward_hook(lambda module, inputs, output: seen.append(float(inputs[0].numpy().min())))
    model(Tensor(_x((2, 1, 32, 32))))
    assert len(seen) == 2 and min(seen) >= 0.0


def test_functional_linear_relu_equals_relu_of_linear():
    rng = numpy.random.default_rng(2)
    x = rng.standard_normal((5, 7)).astype(numpy.float32)
    w, b = rng.standard_normal((4, 7)).astype(numpy.float32), rng.standard_normal(4).astype(numpy.float32)
    grads = []
    for fused in (True, False):
        tx, tw, tb = (Tensor(a.copy(), requires_grad=True) for a in (x, w, b))
        y = F.linear_relu(tx, tw, tb) if fused else F.relu(F.linear(tx, tw, tb))
        (y * Tensor(numpy.arange(20, dtype=numpy.float32).reshape(5, 4))).sum().backward()
        grads.append([y.numpy()] + [numpy.asarray(t.grad) for t in (tx, tw, tb)])
    for a, b_ in zip(*grads):
        numpy.testing.assert_allclose(a, b_, rtol=1e-5, atol=1e-5)
    with pytest.raises(OpError, match=r"linear_relu: expected input \(\.\.\., 7\)"):
        F.linear_relu(Tensor(x[:, :3]), Tensor(w), Tensor(b))


@pytest.mark.parametrize("hook_on", [None, 0, 1])
def test_mlp_fuses_linear_then_relu_unless_hooked(hook_on, monkeypatch):
    gpunet.manual_seed(0)
    model = nn.MLP([6, 5, 5, 3])
    calls = []
    original = nn.Linear.with_relu
    monkeypatch.setattr(nn.Linear, "with_relu", lambda self, v: calls.append(1) or original(self, v))
    seen = _Recorder()
    if hook_on is not None:
        model[hook_on].register_forward_hook(seen)
    x = Tensor(_x((4, 6)))
    out = model(x)
    out.sum().backward()
    fused_grads = [numpy.array(p.grad) for p in model.parameters()]
    assert len(calls) == (2 if hook_on is None else 1)
    assert seen.calls == ([] if hook_on is None else [type(model[hook_on]).__name__])
    _assert_equals_layer_by_layer(model, x, out, fused_grads)
