"""Recurrent layers on a real GPU, every kernel implementation against the NumPy path.

Marked ``gpu``: deselected on the CPU with ``-m "not gpu"``; also ``standin``: CPU CI runs them on the
CuPy stand-in (tests/test_on_standin.py). Forward and backward run inside ``cupyx.allow_synchronize(False)``,
so a hidden device-to-host sync fails the test.
"""

from __future__ import annotations

import contextlib

import numpy
import pytest

import gpunet
from gpunet import backend, config, nn
from gpunet.autograd import Tensor
from gpunet.dtypes import default_dtype_scope

pytestmark = [pytest.mark.gpu, pytest.mark.standin]
LAYERS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


def run(layer: nn.Module, mode: str, x: numpy.ndarray, lengths: numpy.ndarray, to: object, no_sync: bool) -> list:
    layer.zero_grad()
    xt = Tensor(to(x), requires_grad=True)
    guard = contextlib.nullcontext()
    if no_sync:
        import cupyx

        guard = cupyx.allow_synchronize(False)
    with guard:
        y, state = layer(xt, lengths=lengths)
        outs = [y, *state] if mode == "lstm" else [y, state]
        total = None
        for k, o in enumerate(outs):
            term = (o * float(k + 1)).sum()
            total = term if total is None else total + term
        total.backward()
    host = [backend.to_numpy(o.data) for o in outs] + [backend.to_numpy(xt.grad)]
    return host + [backend.to_numpy(p.grad) for p in layer.parameters()]


@pytest.mark.parametrize("kernels", ["cupy", "raw", "numba"])
@pytest.mark.parametrize("mode", ["rnn", "lstm", "gru"])
def test_gpu_matches_numpy(kernels: str, mode: str) -> None:
    cupy = pytest.importorskip("cupy")
    with default_dtype_scope("float64"):
        layer = LAYERS[mode](7, 33, num_layers=2, bidirectional=True)
    rng = numpy.random.default_rng(0)
    x = rng.standard_normal((9, 5, 7))
    lengths = numpy.array([9, 1, 4, 9, 6])
    want = run(layer, mode, x, lengths, numpy.asarray, no_sync=False)
    layer.to("cupy")
    with gpunet.use("cupy"), config.set_kernels(kernels):
        got = run(layer, mode, x, lengths, cupy.asarray, no_sync=True)
    for g, w in zip(got, want):
        numpy.testing.assert_allclose(g, w, rtol=1e-9, atol=1e-11)
