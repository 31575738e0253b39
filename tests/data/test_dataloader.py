"""Dataset, TensorDataset, collate, samplers, loader state and the worker pool (PyTorch's API)."""

from __future__ import annotations

import collections
import textwrap
from pathlib import Path

import numpy as np
import pytest

import gpunet
from gpunet.autograd import Tensor
from gpunet.data import (
    ArrayDataset,
    CollateError,
    DataLoader,
    Dataset,
    TensorDataset,
    default_collate,
)


class Squares(Dataset):
    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return {"x": np.full(3, i, dtype=np.float32), "y": i * i, "name": f"s{i}"}


def as_numpy(batch):
    if isinstance(batch, Tensor):
        return batch.numpy()
    if isinstance(batch, dict):
        return {k: as_numpy(v) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return [as_numpy(v) for v in batch]
    return batch


def assert_same_batches(a, b):
    a, b = list(a), list(b)
    assert len(a) == len(b)
    for x, y in zip(a, b):
        _assert_equal(as_numpy(x), as_numpy(y))


def _assert_equal(x, y):
    if isinstance(x, dict):
        assert x.keys() == y.keys()
        for k in x:
            _assert_equal(x[k], y[k])
    elif isinstance(x, list) and x and isinstance(x[0], str):
        assert x == y
    elif isinstance(x, list):
        assert len(x) == len(y)
        for u, v in zip(x, y):
            _assert_equal(u, v)
    else:
        assert x.dtype == y.dtype and np.array_equal(x, y)


# ----- datasets and collate ---------------------------------------------------------------

def test_a_dataset_subclass_with_dict_samples():
    loader = DataLoader(Squares(10), batch_size=4, shuffle=True, seed=5)
    batches = list(loader)
    assert len(batches) == len(loader) == 3
    first = batches[0]
    assert isinstance(first["x"], Tensor) and first["x"].shape == (4, 3) and first["x"].dtype == np.float32
    assert first["y"].dtype == np.int64 and isinstance(first["name"], list)
    ys = np.concatenate([b["y"].numpy() for b in batches])
    assert sorted(ys.tolist()) == [i * i for i in range(10)]
    order = loader.order(0)
    np.testing.assert_array_equal(first["y"].numpy(), order[:4] ** 2)
    assert first["name"] == [f"s{i}" for i in order[:4]]


def test_a_list_of_samples_and_the_default_collate_rules():
    samples = [(np.array([i, i + 1.0]), i, 0.5 * i) for i in range(5)]
    batches = list(DataLoader(samples, batch_size=2, drop_last=True))
    assert len(batches) == 2 and isinstance(batches[0], tuple)
    x, y, z = batches[1]
    np.testing.assert_array_equal(x.numpy(), [[2, 3], [3, 4]])
    assert y.dtype == np.int64 and z.dtype == np.float64  # as PyTorch: Python ints -> int64, floats -> float64
    Point = collections.namedtuple("Point", "a b")
    batch = default_collate([Point(np.zeros(2), 1), Point(np.ones(2), 2)])
    assert isinstance(batch, Point) and batch.a.shape == (2, 2)
    lists = default_collate([[np.zeros(1), 1], [np.ones(1), 2]])
    assert isinstance(lists, list) and lists[1].numpy().tolist() == [1, 2]
    tensors = default_collate([Tensor(np.zeros(3, np.float32)), Tensor(np.ones(3, np.float32))])
    assert tensors.shape == (2, 3) and tensors.dtype == np.float32


def test_collate_errors_name_the_field():
    with pytest.raises(CollateError, match=r"batch\[0\]: cannot stack samples of shapes \[\(2,\), \(3,\)\]"):
        default_collate([(np.zeros(2), 1), (np.zeros(3), 2)])
    with pytest.raises(CollateError, match="sample 1 has keys"):
        default_collate([{"a": 1}, {"b": 2}])
    with pytest.raises(CollateError, match="should have 2 fields"):
        default_collate([(1, 2), (1,)])
    with pytest.raises(CollateError, match="cannot batch a object"):
        default_collate([object(), object()])
    with pytest.raises(CollateError, match="a sample is None"):
        default_collate([None])


def test_tensor_dataset_rows_are_tensors_and_batches_use_the_fast_path():
    x = gpunet.tensor(np.arange(12, dtype=np.float32).reshape(6, 2))
    y = np.arange(6)
    ds = TensorDataset(x, y)
    assert len(ds) == 6 and all(isinstance(t, Tensor) for t in ds[2])
    np.testing.assert_array_equal(ds[2][0].numpy(), [4, 5])
    xb, yb = next(iter(DataLoader(ds, batch_size=4)))
    np.testing.assert_array_equal(xb.numpy(), x.numpy()[:4])
    assert yb.numpy().tolist() == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="TensorDataset: expected tensors of one length"):
        TensorDataset(np.zeros(3), np.zeros(4))
    with pytest.raises(ValueError, match="TensorDataset: expected at least one tensor"):
        TensorDataset()


def test_array_batches_are_unchanged_by_the_new_loader():
    """Today's fast path: one fancy index per array, the same Tensors as before."""
    rows = np.arange(40, dtype=np.float32).reshape(20, 2)
    loader = DataLoader(ArrayDataset(rows, np.arange(20)), 6, shuffle=True, seed=9)
    order = np.random.default_rng([9, 3]).permutation(20)
    for b, (xb, yb) in enumerate(loader.iterate(3)):
        idx = order[b * 6:(b + 1) * 6]
        np.testing.assert_array_equal(xb.numpy(), rows[idx])
        np.testing.assert_array_equal(yb.numpy(), idx)


def test_a_custom_collate_fn_gets_the_samples():
    seen = []

    def collate(samples):
        seen.append(len(samples))
        return sum(s["y"] for s in samples)

    assert list(DataLoader(Squares(5), batch_size=2, collate_fn=collate)) == [1, 13, 16]
    assert seen == [2, 2, 1]


# ----- samplers, generator, resume ------------------------------------------------------------

class EpochSampler:
    def __init__(self, n):
        self.n, self.epoch = n, 0

    def set_epoch(self, epoch):
        self.epoch = epoch

    def __iter__(self):
        return iter(np.roll(np.arange(self.n)[::-1], self.epoch).tolist())

    def __len__(self):
        return self.n


def test_sampler_decides_the_order_and_set_epoch_is_called():
    loader = DataLoader(ArrayDataset(np.arange(5)), batch_size=2, sampler=EpochSampler(5))
    assert [b[0].numpy().tolist() for b in loader.iterate(0)] == [[4, 3], [2, 1], [0]]
    assert [b[0].numpy().tolist() for b in loader.iterate(1)] == [[0, 4], [3, 2], [1]]
    with pytest.raises(ValueError, match="sampler and shuffle=True exclude each other"):
        DataLoader(ArrayDataset(np.arange(5)), sampler=[0, 1], shuffle=True)
    with pytest.raises(IndexError, match="the sampler gave index 7"):
        list(DataLoader(ArrayDataset(np.arange(5)), sampler=[0, 7]))


def test_generator_seeds_the_shuffle():
    ds = ArrayDataset(np.arange(30))
    a = DataLoader(ds, 4, shuffle=True, generator=np.random.default_rng(3))
    b = DataLoader(ds, 4, shuffle=True, generator=np.random.default_rng(3))
    np.testing.assert_array_equal(a.order(0), b.order(0))
    np.testing.assert_array_equal(DataLoader(ds, shuffle=True, generator=11).order(2),
                                  DataLoader(ds, shuffle=True, seed=11).order(2))


def test_state_dict_resumes_mid_epoch_and_across_epochs():
    ds = ArrayDataset(np.arange(11))
    reference = DataLoader(ds, 3, shuffle=True, seed=4)
    epochs = [[b[0].numpy().tolist() for b in reference] for _ in range(3)]
    loader = DataLoader(ds, 3, shuffle=True, seed=4)
    assert loader.state_dict()["epoch"] == 0 and loader.state_dict()["batch"] == 0
    list(loader)
    it = iter(loader)
    got = [next(it)[0].numpy().tolist(), next(it)[0].numpy().tolist()]
    assert got == epochs[1][:2]
    state = loader.state_dict()
    assert (state["epoch"], state["batch"]) == (1, 2)
    resumed = DataLoader(ds, 3, shuffle=True, seed=4)
    resumed.load_state_dict(state)
    assert [b[0].numpy().tolist() for b in resumed] == epochs[1][2:]
    assert [b[0].numpy().tolist() for b in resumed] == epochs[2]
    end = DataLoader(ds, 3, shuffle=True, seed=4)
    end.load_state_dict({**state, "batch": 4})  # a finished epoch: continue with the next
    assert [b[0].numpy().tolist() for b in end] == epochs[2]
    with pytest.raises(ValueError, match="seed 5 \\(state\\) vs 4 \\(now\\)"):
        end.load_state_dict({**state, "seed": 5})
    with pytest.raises(ValueError, match="beyond the 4 batches"):
        end.load_state_dict({**state, "batch": 9})


# ----- validation ------------------------------------------------------------------------------

BAD = [
    ({"batch_size": 2.5}, TypeError, "DataLoader: batch_size must be an integer >= 1, got 2.5"),
    ({"batch_size": 0}, ValueError, "DataLoader: batch_size must be an integer >= 1, got 0"),
    ({"batch_size": True}, TypeError, "DataLoader: batch_size must be an integer"),
    ({"batch_size": "4"}, TypeError, "DataLoader: batch_size"),
    ({"shuffle": 1}, TypeError, "DataLoader: shuffle must be True or False"),
    ({"drop_last": "no"}, TypeError, "DataLoader: drop_last must be True or False"),
    ({"seed": -1}, ValueError, "DataLoader: seed must be an integer >= 0"),
    ({"seed": 1.5}, TypeError, "DataLoader: seed"),
    ({"num_workers": -1}, ValueError, "DataLoader: num_workers must be an integer >= 0"),
    ({"num_workers": 1.0}, TypeError, "DataLoader: num_workers"),
    ({"collate_fn": 3}, TypeError, "DataLoader: collate_fn must be callable"),
    ({"generator": "x"}, TypeError, "DataLoader: generator must be an int seed"),
    ({"prefetch_factor": 2}, ValueError, "DataLoader: prefetch_factor needs num_workers > 0"),
    ({"persistent_workers": True}, ValueError, "DataLoader: persistent_workers=True needs num_workers > 0"),
    ({"timeout": -1}, ValueError, "DataLoader: timeout"),
    ({"sampler": 5}, TypeError, "DataLoader: sampler must be an iterable"),
]


@pytest.mark.parametrize(("options", "error", "message"), BAD, ids=[m[12:40] for _, _, m in BAD])
def test_bad_arguments_name_the_class_and_argument(options, error, message):
    with pytest.raises(error, match=message):
        DataLoader(ArrayDataset(np.zeros(3)), **options)


def test_bad_datasets():
    with pytest.raises(TypeError, match="DataLoader: dataset must have __getitem__ and __len__"):
        DataLoader(5)
    with pytest.raises(TypeError, match="DataLoader: start_batch must be an integer"):
        list(DataLoader(ArrayDataset(np.zeros(3))).iterate(0, 1.5))


# ----- the worker pool -------------------------------------------------------------------------

@pytest.fixture
def helper_module(tmp_path: Path, monkeypatch):
    """A dataset and a collate function in an importable module, as spawn workers need."""
    (tmp_path / "gpunet_loader_helpers.py").write_text(textwrap.dedent('''
        import os
        import numpy as np
        from gpunet.data import Dataset, get_worker_info

        class Noisy(Dataset):
            """Each sample is deterministic; it also says which process made it."""
            def __len__(self):
                return 23
            def __getitem__(self, i):
                if i == 17 and os.environ.get("GPUNET_TEST_FAIL"):
                    raise KeyError("sample 17 is broken")
                return {"x": np.arange(4, dtype=np.float32) * i, "y": i, "pid": os.getpid(),
                        "worker": get_worker_info()["id"] if get_worker_info() else -1}

        def summed(samples):
            return [int(sum(s["y"] for s in samples)), sorted({s["pid"] for s in samples})]
    '''))
    monkeypatch.syspath_prepend(str(tmp_path))
    import importlib

    return importlib.import_module("gpunet_loader_helpers")


def _strip(batch):
    return {k: v for k, v in batch.items() if k not in ("pid", "worker")}


@pytest.mark.slow
@pytest.mark.parametrize("context", ["fork", "spawn"])
def test_workers_give_the_same_batches_in_the_same_order(helper_module, context):
    ds = helper_module.Noisy()
    serial = DataLoader(ds, 4, shuffle=True, seed=2)
    pooled = DataLoader(ds, 4, shuffle=True, seed=2, num_workers=2, multiprocessing_context=context,
                        persistent_workers=True)  # one pool for all the epochs below
    for epoch in (0, 1):
        ours, theirs = list(serial.iterate(epoch)), list(pooled.iterate(epoch, 0))
        assert_same_batches([_strip(b) for b in ours], [_strip(b) for b in theirs])
        pids = {p for b in theirs for p in b["pid"].numpy().tolist()}
        import os

        assert os.getpid() not in pids and 1 <= len(pids) <= 2
        assert set(np.concatenate([b["worker"].numpy() for b in theirs]).tolist()) <= {0, 1}
    assert_same_batches([_strip(b) for b in serial.iterate(1, 3)], [_strip(b) for b in pooled.iterate(1, 3)])
    pooled.close()
    arrays = ArrayDataset(np.arange(50.0).reshape(25, 2), np.arange(25))
    assert_same_batches(DataLoader(arrays, 7, shuffle=True).iterate(0),
                        DataLoader(arrays, 7, shuffle=True, num_workers=2, multiprocessing_context=context).iterate(0))


@pytest.mark.slow
def test_a_custom_collate_runs_in_the_workers(helper_module):
    ds = helper_module.Noisy()
    pooled = list(DataLoader(ds, 5, collate_fn=helper_module.summed, num_workers=2, prefetch_factor=1))
    serial = list(DataLoader(ds, 5, collate_fn=helper_module.summed))
    assert [b[0] for b in pooled] == [b[0] for b in serial]
    import os

    assert all(os.getpid() not in b[1] for b in pooled)


@pytest.mark.slow
def test_worker_errors_surface_and_the_pool_shuts_down(helper_module, monkeypatch):
    monkeypatch.setenv("GPUNET_TEST_FAIL", "1")
    loader = DataLoader(helper_module.Noisy(), 4, num_workers=2, multiprocessing_context="spawn")
    with pytest.raises(KeyError, match="sample 17 is broken"):
        list(loader)
    monkeypatch.delenv("GPUNET_TEST_FAIL")
    it = iter(DataLoader(helper_module.Noisy(), 2, num_workers=2))
    next(it)
    it.close()  # breaking out early shuts the pool down without hanging
    persistent = DataLoader(helper_module.Noisy(), 8, num_workers=2, persistent_workers=True)
    first = [b["pid"].numpy().tolist() for b in persistent]
    pool = persistent._pool
    workers = set(pool._processes)
    second = [b["pid"].numpy().tolist() for b in persistent]
    # the same pool and processes serve the next epoch (which worker takes a batch is the scheduler's choice)
    assert persistent._pool is pool and len(workers) == 2
    assert {p for b in first + second for p in b} <= workers
    persistent.close()
    assert persistent._pool is None


@pytest.mark.slow
def test_unpicklable_datasets_under_spawn_give_a_clear_error():
    samples = [np.zeros(2)] * 4
    loader = DataLoader(samples, 2, num_workers=1, multiprocessing_context="spawn", collate_fn=lambda s: s)
    with pytest.raises(RuntimeError, match="cannot be pickled"):
        list(loader)
