"""The functional ops on CuPy (stand-in) arrays give NumPy's values and gradients."""

from __future__ import annotations

import numpy as np
import pytest

import gpunet
import gpunet.functional as F
from gpunet import config
from gpunet.backend import DeviceMismatchError, to_numpy

RNG = np.random.default_rng(3)


def rand(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


X4, W4, B4 = rand(2, 3, 7, 6), rand(4, 3, 3, 2), rand(4)
SEQ, H0, C0 = rand(5, 3, 4), rand(3, 6), rand(3, 6)
LENGTHS = np.array([5, 2, 4])
LOGITS, LABELS = rand(6, 5), np.array([0, 4, 2, 2, 1, 3])


def rnn_weights(gates):
    return rand(gates * 6, 4), rand(gates * 6, 6), rand(gates * 6), rand(gates * 6)


RNN_W, LSTM_W, GRU_W = rnn_weights(1), rnn_weights(4), rnn_weights(3)

# name -> (function of tensors, host inputs, which inputs get gradients)
CASES = {
    "conv2d": (lambda x, w, b: F.conv2d(x, w, b, stride=(2, 1), padding=1), (X4, W4, B4)),
    "conv2d-dilated": (lambda x, w: F.conv2d(x, w, dilation=2), (X4, W4)),
    "max_pool2d": (lambda x: F.max_pool2d(x, 2), (X4,)),
    "max_pool2d-s1-p1": (lambda x: F.max_pool2d(x, 3, stride=1, padding=1), (X4,)),
    "avg_pool2d": (lambda x: F.avg_pool2d(x, 2), (X4,)),
    "relu_max_pool2d": (lambda x: F.relu_max_pool2d(x, 2), (X4,)),
    "relu_max_pool2d-s1-p1": (lambda x: F.relu_max_pool2d(x, 3, stride=1, padding=1), (X4,)),
    "relu_avg_pool2d": (lambda x: F.relu_avg_pool2d(x, 2), (X4,)),
    "linear_relu": (F.linear_relu, (LOGITS, rand(4, 5), rand(4))),
    "conv2d_relu_pool2d": (lambda x, w, b: F.conv2d_relu_pool2d(x, w, b, padding=1), (X4, W4, B4)),
    "conv2d_relu_pool2d-avg-s1": (lambda x, w: F.conv2d_relu_pool2d(x, w, pool="avg", pool_kernel=3, pool_stride=1,
                                                                     pool_padding=1), (X4, W4)),
    "rnn": (lambda x, h, *w: F.rnn(x, h, *w, lengths=LENGTHS)[0], (SEQ, H0, *RNN_W)),
    "rnn-relu-reverse": (lambda x, h, *w: F.rnn(x, h, *w, nonlinearity="relu", reverse=True)[1],
                         (SEQ, H0, *RNN_W)),
    "lstm": (lambda x, h, c, *w: F.lstm(x, h, c, *w, lengths=LENGTHS)[0], (SEQ, H0, C0, *LSTM_W)),
    "lstm-c_n": (lambda x, h, c, *w: F.lstm(x, h, c, *w)[2], (SEQ, H0, C0, *LSTM_W)),
    "gru": (lambda x, h, *w: F.gru(x, h, *w, lengths=LENGTHS)[0], (SEQ, H0, *GRU_W)),
    "cross_entropy": (lambda z: F.cross_entropy(z, gpunet.tensor(LABELS).to(z.device)), (LOGITS,)),
    "mse_loss": (lambda z, t: F.mse_loss(z, t), (LOGITS, rand(6, 5))),
    "bce_with_logits": (lambda z: F.binary_cross_entropy_with_logits(
        z, gpunet.tensor((LOGITS > 0).astype(np.float32)).to(z.device)), (LOGITS,)),
    "relu": (F.relu, (LOGITS,)),
    "tanh": (F.tanh, (LOGITS,)),
    "sigmoid": (F.sigmoid, (LOGITS,)),
    "softmax": (F.softmax, (LOGITS,)),
    "log_softmax": (lambda z: F.log_softmax(z, axis=0), (LOGITS,)),
}


def run(fn, arrays, backend, kernels="auto"):
    with gpunet.use(backend), config.set_kernels(kernels):
        ts = [gpunet.tensor(a, requires_grad=True).to(backend) for a in arrays]
        for t in ts:
            t.requires_grad = True
        out = fn(*ts)
        (out * gpunet.tensor(np.linspace(0.5, 1.5, out.numel(), dtype=np.float32).reshape(out.shape)).to(backend)
         ).sum().backward()
        return to_numpy(out.data), [None if t.grad is None else to_numpy(t.grad) for t in ts]


KERNELS = {"conv2d": ("cupy", "raw"), "conv2d-dilated": ("cupy", "raw"), "conv2d_relu_pool2d": ("cupy", "raw"),
           "rnn": ("cupy", "raw"), "rnn-relu-reverse": ("cupy", "raw"), "lstm": ("cupy", "raw"),
           "lstm-c_n": ("cupy", "raw"), "gru": ("cupy", "raw")}


@pytest.mark.parametrize(("name", "kernels"), [(n, k) for n in CASES for k in KERNELS.get(n, ("cupy",))])
def test_forward_and_gradients_equal_numpys(name, kernels):
    fn, arrays = CASES[name]
    want, want_g = run(fn, arrays, "numpy")
    got, got_g = run(fn, arrays, "cupy", kernels)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    for i, (g, w) in enumerate(zip(got_g, want_g)):
        assert (g is None) == (w is None)
        if w is not None:
            np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-4, err_msg=f"grad of input {i}")


@pytest.mark.parametrize("name", ["rnn", "lstm", "gru"])
def test_recurrent_on_numba_kernels(name):
    fn, arrays = CASES[name]
    want, _ = run(fn, arrays, "numpy")
    got, _ = run(fn, arrays, "cupy", "numba")
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_conv2d_forward_on_numba_kernels():
    with gpunet.use("cupy"), config.set_kernels("numba"), gpunet.no_grad():
        got = to_numpy(F.conv2d(gpunet.tensor(X4).to("cupy"), gpunet.tensor(W4).to("cupy"), padding=1).data)
    np.testing.assert_allclose(got, to_numpy(F.conv2d(gpunet.tensor(X4), gpunet.tensor(W4), padding=1).data),
                               rtol=1e-5, atol=1e-5)


def test_numba_conv2d_backward_through_sum():
    with gpunet.use("cupy"), config.set_kernels("numba"):
        x = gpunet.tensor(X4, requires_grad=True).to("cupy")
        w = gpunet.tensor(W4, requires_grad=True).to("cupy")
        F.conv2d(x, w).sum().backward()


def test_where_with_a_host_condition_is_a_device_mismatch():
    with gpunet.use("cupy"):
        a = gpunet.tensor(LOGITS).to("cupy")
        with pytest.raises(DeviceMismatchError):
            F.where(LOGITS > 0, a, a)


def test_device_lengths_and_embedding_need_no_host_sync():
    """Device ``lengths`` build the mask on the device and the embedding backward scatters without
    a boolean mask: values and gradients equal NumPy's with 0 syncs (was 4 per LSTM step)."""
    from cupy import _standin

    from gpunet.models.rnn import SequenceClassifier

    tokens = np.array([[1, 2, 3, 0, 0], [4, 1, 0, 0, 0], [2, 2, 2, 2, 0]])
    lengths, grads = np.array([3, 2, 4]), {}
    for name in ("numpy", "cupy"):
        with gpunet.use(name):
            gpunet.manual_seed(0)
            model = SequenceClassifier(5, 2, cell="lstm", embedding_dim=4, hidden_size=6).to(name)
            toks, lens = gpunet.tensor(tokens).to(name), gpunet.tensor(lengths).to(name)
            model(toks, lens).sum().backward()  # warm-up
            model.zero_grad()
            with _standin.count() as counted:
                out = model(toks, lens)
                out.sum().backward()
            grads[name] = [to_numpy(out.data)] + [to_numpy(p.grad) for p in model.parameters()]
            if name == "cupy":
                assert counted.syncs == 0, counted.report(20)
    for a, b in zip(*grads.values()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
