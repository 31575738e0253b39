"""The optimizers, clipping, the loader and packing on CuPy agree with NumPy (needs a GPU: marked ``gpu``).

Also marked ``standin``: CPU CI runs them on the CuPy stand-in (tests/test_on_standin.py). On CuPy the
clip and optimizer steps run inside ``cupyx.allow_synchronize(False)``, so a hidden sync fails the test.
"""

from __future__ import annotations

import contextlib

import numpy as np
import pytest

import gpunet
from gpunet import optim
from gpunet.backend import is_cupy_array, to_numpy
from gpunet.data import ArrayDataset, DataLoader
from gpunet.nn import Parameter
from gpunet.nn.utils import clip_grad_norm_
from gpunet.nn.utils.rnn import pack_padded_sequence, pad_sequence

pytestmark = [pytest.mark.gpu, pytest.mark.standin]

OPTIMIZERS = [(optim.SGD, {"lr": 0.1, "momentum": 0.9, "nesterov": True}), (optim.Adam, {"lr": 0.01, "amsgrad": True}),
              (optim.AdamW, {"lr": 0.01}), (optim.RMSprop, {"lr": 0.01, "centered": True, "momentum": 0.5}),
              (optim.Adagrad, {"lr": 0.1})]


def _run(name, cls, options):
    with gpunet.use(name):
        xp = gpunet.backend.xp()
        rng = np.random.default_rng(0)
        p = Parameter(xp.asarray(rng.standard_normal((4, 3))))
        opt = cls([p], **options)
        guard = contextlib.nullcontext
        if name == "cupy":
            import cupyx

            guard = lambda: cupyx.allow_synchronize(False)  # noqa: E731
        for _ in range(4):
            p.grad = xp.asarray(rng.standard_normal((4, 3)))
            with guard():
                clip_grad_norm_([p], 1.0)
                opt.step()
        state = opt.state_dict()
        assert all(is_cupy_array(v) == (name == "cupy") for s in state["state"].values() for v in s.values()
                   if hasattr(v, "shape"))
        return to_numpy(p.data)


@pytest.mark.parametrize(("cls", "options"), OPTIMIZERS, ids=[c.__name__ for c, _ in OPTIMIZERS])
def test_optimizer_steps_on_cupy_equal_numpy(cls, options):
    np.testing.assert_allclose(_run("cupy", cls, options), _run("numpy", cls, options), rtol=1e-10, atol=1e-12)


def test_loader_and_packing_on_cupy():
    with gpunet.use("cupy"):
        xb, yb = next(iter(DataLoader(ArrayDataset(np.arange(10.0)[:, None], np.arange(10)), 4, shuffle=True)))
        assert is_cupy_array(xb.data) and is_cupy_array(yb.data)
        lstm = gpunet.nn.LSTM(1, 2)
        seqs = [gpunet.tensor(np.arange(n, dtype=np.float32)[:, None]) for n in (3, 1, 2)]
        out, (h, c) = lstm(pack_padded_sequence(pad_sequence(seqs), [3, 1, 2], enforce_sorted=False))
        assert is_cupy_array(out.data.data) and h.shape == (1, 3, 2)
