"""Array datasets stay on the device and Python scalars are copied once (issue 11, item 5).

Before: every batch was two host-to-device copies (one per array) and ``x - 0.5`` copied 0.5 at
every call; now a loader copies the dataset once and the epoch's order once per epoch.
"""

from __future__ import annotations

import numpy as np
import pytest
from cupy import _standin

import gpunet
from gpunet.data import ArrayDataset, DataLoader, TensorDataset
from gpunet.data import loader as loader_module


def _data():
    rng = np.random.default_rng(0)
    return rng.standard_normal((50, 3)).astype(np.float32), rng.integers(0, 4, 50)


def _batches(backend, **options):
    with gpunet.use(backend):
        loader = DataLoader(ArrayDataset(*_data()), batch_size=8, shuffle=True, seed=5, **options)
        return [[t.numpy() for t in b] for epoch in (0, 1) for b in loader.iterate(epoch, 1 if epoch else 0)]


def test_device_batches_are_the_numpy_batches():
    host, device = _batches("numpy"), _batches("cupy")
    assert len(host) == len(device) == 7 + 6
    for a, b in zip(host, device):
        assert all(x.dtype == y.dtype and np.array_equal(x, y) for x, y in zip(a, b))


def test_a_step_copies_nothing_from_the_host_after_the_first_batch():
    with gpunet.use("cupy"):
        loader = DataLoader(ArrayDataset(*_data()), batch_size=8, shuffle=True, seed=5)
        batches = loader.iterate(0)
        with _standin.count() as first:
            next(batches)
        with _standin.count() as rest:
            for _ in batches:
                pass
        with _standin.count() as next_epoch:
            list(loader.iterate(1))
    assert first.h2d == 3  # the two arrays and the epoch's order, once
    assert (rest.h2d, rest.syncs) == (0, 0), rest.report()
    assert (next_epoch.h2d, next_epoch.syncs) == (1, 0), next_epoch.report()  # the new order only


def test_device_tensor_dataset_is_indexed_without_host_indices():
    with gpunet.use("cupy"):
        x, y = (gpunet.tensor(a).to("cupy") for a in _data())
        loader = DataLoader(TensorDataset(x, y), batch_size=8, shuffle=True, seed=5)
        next(loader.iterate(0))
        with _standin.count() as counted:
            list(loader.iterate(0, 1))
    assert counted.h2d == 1 and counted.syncs == 0, counted.report()  # the order once, no copy of the data


@pytest.mark.parametrize("why", ["off", "too big"])
def test_device_data_off_or_too_big_copies_each_batch(why, monkeypatch):
    options = {"device_data": False} if why == "off" else {}
    if why == "too big":
        monkeypatch.setattr(loader_module, "DEVICE_DATA_FRACTION", 1e-12)
    with gpunet.use("cupy"):
        loader = DataLoader(ArrayDataset(*_data()), batch_size=8, **options)
        with _standin.count() as counted:
            list(loader.iterate(0))
    assert counted.h2d == 2 * len(loader)


def test_python_scalar_operands_are_copied_once():
    with gpunet.use("cupy"):
        x = gpunet.tensor(np.arange(6, dtype=np.float32)).to("cupy")
        (x - 0.25) * 3.0
        with _standin.count() as counted:
            y = (x - 0.25) * 3.0
        z = (x - 0.75) * 3
        w = x.double() * 3.0  # another dtype: its own constant
    assert counted.h2d == 0, counted.report()
    assert np.array_equal(y.numpy(), (np.arange(6, dtype=np.float32) - 0.25) * 3.0)
    assert np.array_equal(z.numpy(), (np.arange(6, dtype=np.float32) - 0.75) * 3)
    assert w.dtype == np.float64 and np.array_equal(w.numpy(), np.arange(6) * 3.0)


def test_fit_reads_once_per_epoch_and_copies_the_data_once():
    from gpunet.training import Callback, fit

    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((64, 4)).astype(np.float32), rng.integers(0, 3, 64)
    with gpunet.use("cupy"):
        gpunet.manual_seed(0)
        warm = gpunet.nn.Linear(4, 3).to("cupy")  # the kernel probes (once per process) run outside the count
        fit(warm, gpunet.optim.SGD(warm.parameters(), lr=0.1), "cross_entropy", (x[:16], y[:16]), epochs=1,
            batch_size=16)
        model = gpunet.nn.Linear(4, 3).to("cupy")
        opt = gpunet.optim.SGD(model.parameters(), lr=0.1)
        batches: list[int] = []

        class Batches(Callback):
            def on_batch_end(self, batch: int, logs: dict) -> None:
                batches.append(logs["step"])  # host numbers up to the last check: no sync

        with _standin.count() as counted:
            history = fit(model, opt, "cross_entropy", (x, y), epochs=2, batch_size=16, callbacks=[Batches()])
    assert len(history) == 2 and history[-1]["train_accuracy"] >= 0 and batches == list(range(1, 9))
    assert counted.syncs == 2, counted.report(20)  # one read per epoch, 4 steps each, callbacks included
    assert counted.h2d == 2 + 2, counted.report(20)  # the two arrays once, each epoch's order once
