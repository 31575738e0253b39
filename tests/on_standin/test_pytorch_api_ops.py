"""Issue 12's PyTorch-shaped ops and layers on CuPy (stand-in) arrays give NumPy's values and
gradients; the optimizers and schedulers take the same steps; pad/pack run on the device."""

from __future__ import annotations

import numpy as np
import pytest

import gpunet
import gpunet.functional as F
from gpunet import nn, optim
from gpunet.backend import to_numpy
from gpunet.nn.utils import rnn as rnn_utils

RNG = np.random.default_rng(12)


def rand(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


X, X4, Z = rand(6, 5), rand(3, 4, 5, 5), rand(6, 5)
LABELS = np.array([0, 4, 2, 2, 1, 3])
IGNORED = np.array([0, -100, 2, 2, 1, -100])
CLASS_W = np.linspace(0.5, 2.0, 5).astype(np.float32)
EMB_W, IDS = rand(7, 3), np.array([[1, 0, 6], [3, 3, 0]])
PROBS = (1 / (1 + np.exp(-rand(6, 5)))).astype(np.float32)


def on(host, like):
    """A host constant on ``like``'s device (no NumPy operand reaches CuPy)."""
    return gpunet.tensor(host).to(like.device)


CASES = {  # name -> (function of tensors, host float inputs that get gradients)
    "dropout-train": (lambda x: F.dropout(x, 0.4, training=True), (X,)),
    "dropout-eval": (lambda x: F.dropout(x, 0.4, training=False), (X,)),
    "Dropout-module": (lambda x: nn.Dropout(0.3)(x), (X,)),
    "batch_norm-train": (lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True), (X, rand(5), rand(5))),
    "BatchNorm2d-train": (lambda x: nn.BatchNorm2d(4).to(x.device)(x), (X4,)),
    "BatchNorm1d-eval": (lambda x: _bn_eval(x), (X,)),
    "layer_norm": (lambda x, w, b: F.layer_norm(x, 5, w, b), (X, rand(5), rand(5))),
    "LayerNorm-2d": (lambda x: nn.LayerNorm((5, 5)).to(x.device)(x), (X4,)),
    "cross_entropy-weight": (lambda z: F.cross_entropy(z, on(LABELS, z), weight=on(CLASS_W, z)), (Z,)),
    "cross_entropy-ignore-smooth": (lambda z: F.cross_entropy(z, on(IGNORED, z), label_smoothing=0.1), (Z,)),
    "cross_entropy-sum-weight-smooth": (lambda z: F.cross_entropy(
        z, on(IGNORED, z), weight=on(CLASS_W, z), label_smoothing=0.2, reduction="sum"), (Z,)),
    "cross_entropy-none": (lambda z: F.cross_entropy(z, on(LABELS, z), reduction="none"), (Z,)),
    "nll_loss-weight-ignore": (lambda z: F.nll_loss(F.log_softmax(z, dim=1), on(IGNORED, z),
                                                    weight=on(CLASS_W, z)), (Z,)),
    "l1_loss": (lambda z, t: F.l1_loss(z, t), (Z, rand(6, 5))),
    "binary_cross_entropy": (lambda p: F.binary_cross_entropy(p, on((PROBS > 0.5).astype(np.float32), p)),
                             (PROBS,)),
    "one_hot": (lambda z: z * F.one_hot(on(LABELS, z), 5).float(), (Z,)),
    "pad": (lambda x: F.pad(x, (1, 2, 0, -1), value=0.5), (X4,)),
    "gelu": (F.gelu, (X,)),
    "gelu-tanh": (lambda x: F.gelu(x, approximate="tanh"), (X,)),
    "leaky_relu": (lambda x: F.leaky_relu(x, 0.2), (X,)),
    "embedding": (lambda w: F.embedding(on(IDS, w), w), (EMB_W,)),
    "embedding-padding_idx": (lambda w: F.embedding(on(IDS, w), w, padding_idx=0), (EMB_W,)),
    "comparisons": (lambda x, z: x * ((x > z) | (x <= -0.5)).float() + z * (~(x != z)).float()
                    + x * (x == x.max()).float(), (X, Z)),
    "max-dim": (lambda x: x.max(dim=1)[0] + x.min(1).values, (X,)),
    "max-indices": (lambda x: x * (gpunet.arange(5).to(x.device) == x.max(dim=1, keepdim=True)[1]).float(), (X,)),
    "argmax": (lambda x: x * (x.argmax(dim=0) == 1).float(), (X,)),
    "std-var": (lambda x: x.std(dim=0) + x.var(1, unbiased=False).sum() + x.std(), (X,)),
    "cat-stack-where": (lambda x, z: gpunet.cat([x, z * 2], dim=1).sum(0)
                        + gpunet.stack([x, z], dim=2).mean(2).sum(1)[:1] + gpunet.where(x > 0, x, z).sum(), (X, Z)),
    "clamp-abs-sqrt": (lambda x: x.clamp(-0.5, 0.7) + (x.abs() + 1).sqrt(), (X,)),
    "masked_fill-expand-top": (lambda x, z: gpunet.flatten(x.masked_fill(z > 0, 0.5) * x[:, :1].expand(6, 5), 0)
                               + gpunet.max(x, z).relu().sum(), (X, Z)),
    "view-permute": (lambda x: x.view(3, 4, 25).permute(2, 0, 1).unsqueeze(0).flatten(1), (X4,)),
}


def _bn_eval(x):
    bn = nn.BatchNorm1d(5)
    bn.running_mean.data = gpunet.tensor(np.linspace(-1, 1, 5, dtype=np.float32)).data
    bn.running_var.data = gpunet.tensor(np.linspace(0.5, 2, 5, dtype=np.float32)).data
    bn.to(x.device).eval()
    return bn(x)


def run(fn, arrays, backend):
    gpunet.manual_seed(7)
    with gpunet.use(backend):
        ts = [gpunet.tensor(a, requires_grad=True).to(backend) for a in arrays]
        for t in ts:
            t.requires_grad = True
        out = fn(*ts)
        seed = gpunet.tensor(np.linspace(0.5, 1.5, out.numel(), dtype=np.float32).reshape(out.shape)).to(backend)
        (out * seed).sum().backward()
        return to_numpy(out.data), [None if t.grad is None else to_numpy(t.grad) for t in ts]


@pytest.mark.parametrize("name", CASES)
def test_op_on_cupy_equals_numpy(name):
    fn, arrays = CASES[name]
    want, want_g = run(fn, arrays, "numpy")
    got, got_g = run(fn, arrays, "cupy")
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    for i, (g, w) in enumerate(zip(got_g, want_g)):
        assert (g is None) == (w is None)
        if w is not None:
            np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-4, err_msg=f"grad of input {i}")


def test_batchnorm_running_stats_on_cupy_equal_numpys():
    def stats(backend):
        with gpunet.use(backend):
            bn = nn.BatchNorm2d(4).to(backend)
            for _ in range(3):
                bn(gpunet.tensor(X4).to(backend))
            return {k: to_numpy(v) if not isinstance(v, (int, np.integer)) else v
                    for k, v in bn.state_dict().items()}
    want, got = stats("numpy"), stats("cupy")
    assert want.keys() == got.keys()
    for k in want:
        np.testing.assert_allclose(np.asarray(got[k]), np.asarray(want[k]), rtol=1e-5, atol=1e-6, err_msg=k)


OPTIMIZERS = {
    "AdamW": lambda ps: optim.AdamW(ps, lr=0.05, weight_decay=0.1),
    "RMSprop": lambda ps: optim.RMSprop(ps, lr=0.01, momentum=0.5),
    "Adagrad": lambda ps: optim.Adagrad(ps, lr=0.1),
    "SGD-groups": lambda ps: optim.SGD([{"params": ps[:1], "lr": 0.1}, {"params": ps[1:]}], lr=0.01, momentum=0.9),
}
SCHEDULERS = {
    "StepLR": lambda o: optim.lr_scheduler.StepLR(o, 2, gamma=0.5),
    "MultiStepLR": lambda o: optim.lr_scheduler.MultiStepLR(o, [1, 3], gamma=0.3),
    "ExponentialLR": lambda o: optim.lr_scheduler.ExponentialLR(o, 0.8),
    "CosineAnnealingLR": lambda o: optim.lr_scheduler.CosineAnnealingLR(o, 4),
    "OneCycleLR": lambda o: optim.lr_scheduler.OneCycleLR(o, 0.1, total_steps=5),
    "LambdaLR": lambda o: optim.lr_scheduler.LambdaLR(o, lambda e: 1 / (1 + e)),
}


def train(backend, make_opt, make_sched=None):
    gpunet.manual_seed(0)
    with gpunet.use(backend):
        model = nn.Sequential(nn.Linear(5, 4), nn.Tanh(), nn.Linear(4, 5)).to(backend)
        opt = make_opt(list(model.parameters()))
        sched = make_sched(opt) if make_sched else None
        x, y = gpunet.tensor(X).to(backend), gpunet.tensor(LABELS).to(backend)
        losses = []
        for _ in range(4):
            opt.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            if sched is not None:
                sched.step()
            losses.append(loss.item())
        return losses, [to_numpy(p.data) for p in model.parameters()]


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_optimizer_on_cupy_equals_numpy(name):
    want, want_p = train("numpy", OPTIMIZERS[name])
    got, got_p = train("cupy", OPTIMIZERS[name])
    np.testing.assert_allclose(got, want, rtol=1e-5)
    for g, w in zip(got_p, want_p):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", SCHEDULERS)
def test_scheduler_on_cupy_equals_numpy(name):
    make = OPTIMIZERS["AdamW"]
    want, _ = train("numpy", make, SCHEDULERS[name])
    got, _ = train("cupy", make, SCHEDULERS[name])
    np.testing.assert_allclose(got, want, rtol=1e-5)


def test_pad_and_pack_on_cupy_equal_numpy():
    seqs = [rand(4, 3), rand(2, 3), rand(3, 3)]

    def go(backend):
        gpunet.manual_seed(1)
        with gpunet.use(backend):
            lstm = nn.LSTM(3, 5).to(backend)
            ts = [gpunet.tensor(s, requires_grad=True).to(backend) for s in seqs]
            for t in ts:
                t.requires_grad = True
            padded = rnn_utils.pad_sequence(ts)
            packed = rnn_utils.pack_padded_sequence(padded, [4, 2, 3], enforce_sorted=False)
            out, (h, _) = lstm(packed)
            unpacked, lengths = rnn_utils.pad_packed_sequence(out)
            (unpacked.sum() + h.sum()).backward()
            return to_numpy(unpacked.data), list(np.asarray(to_numpy(getattr(lengths, "data", lengths)))), \
                [to_numpy(t.grad) for t in ts]
    want, want_len, want_g = go("numpy")
    got, got_len, got_g = go("cupy")
    assert got_len == want_len == [4, 2, 3]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    for g, w in zip(got_g, want_g):
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-5)


W_G = rand(6, 2, 3, 2)


@pytest.mark.parametrize("kernels", ["cupy", "raw", "numba"])
def test_conv_groups_and_same_on_cupy_equal_numpy(kernels):
    from gpunet import config

    def go(backend, kernel_choice):
        with gpunet.use(backend), config.set_kernels(kernel_choice):
            x, w = (gpunet.tensor(a, requires_grad=True).to(backend) for a in (X4, W_G))
            x.requires_grad = w.requires_grad = True
            y = F.conv2d(x, w, groups=2, padding="same")
            y.sum().backward()
            return to_numpy(y.data), to_numpy(x.grad), to_numpy(w.grad)
    for g, w in zip(go("cupy", kernels), go("numpy", "auto")):
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-4)


def test_setitem_on_cupy_equals_numpy():
    def go(backend):
        with gpunet.use(backend):
            w = gpunet.tensor(X, requires_grad=True).to(backend)
            w.requires_grad = True
            y = w * 2.0
            y[1] = 0.0
            y[:, 2] = w[:, 0] * 3.0
            plain = gpunet.zeros(3).to(backend)
            plain[1] = 4.0
            y.sum().backward()
            return to_numpy(y.data), to_numpy(w.grad), to_numpy(plain.data)
    for g, w in zip(go("cupy"), go("numpy")):
        np.testing.assert_allclose(g, w, rtol=1e-6)
