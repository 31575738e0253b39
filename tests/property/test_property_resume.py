"""What exact resume rests on: the loader's position and the optimizer's state survive a checkpoint."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy
from hypothesis import given
from hypothesis import strategies as st
from property_strategies import FEW, SETTINGS

from gpunet import io, optim
from gpunet.data import ArrayDataset, DataLoader
from gpunet.nn.module import Parameter


@SETTINGS
@given(n=st.integers(1, 40), batch_size=st.integers(1, 12), seed=st.integers(0, 2**32 - 1),
       epoch=st.integers(0, 1000), shuffle=st.booleans(), data=st.data())
def test_loader_resumes_at_any_batch(n: int, batch_size: int, seed: int, epoch: int, shuffle: bool,
                                     data: st.DataObject) -> None:
    rows = numpy.arange(n * 2).reshape(n, 2)
    loader = DataLoader(ArrayDataset(rows, numpy.arange(n)), batch_size, shuffle=shuffle, seed=seed)
    full = [tuple(t.numpy() for t in batch) for batch in loader.iterate(epoch)]
    start = data.draw(st.integers(0, len(full)))
    fresh = DataLoader(ArrayDataset(rows, numpy.arange(n)), batch_size, shuffle=shuffle, seed=seed)
    tail = [tuple(t.numpy() for t in batch) for batch in fresh.iterate(epoch, start)]
    assert len(tail) == len(full) - start
    for got, want in zip(tail, full[start:]):
        assert all(numpy.array_equal(g, w) for g, w in zip(got, want))
    seen = numpy.concatenate([b[1] for b in full]) if full else numpy.array([], dtype=int)
    assert sorted(seen.tolist()) == list(range(n))  # every row exactly once per epoch


def make_optimizer(kind: str, params: list[Parameter], hyper: dict[str, Any]) -> optim.Optimizer:
    if kind == "adam":
        return optim.Adam(params, lr=hyper["lr"], weight_decay=hyper["weight_decay"])
    return optim.SGD(params, lr=hyper["lr"], momentum=hyper["momentum"], weight_decay=hyper["weight_decay"],
                     nesterov=hyper["nesterov"] and hyper["momentum"] > 0)  # as PyTorch: Nesterov needs momentum


hypers = st.fixed_dictionaries({
    "lr": st.floats(1e-4, 0.5), "momentum": st.sampled_from([0.0, 0.5, 0.9]),
    "weight_decay": st.sampled_from([0.0, 1e-3]), "nesterov": st.booleans(),
})


@FEW
@given(kind=st.sampled_from(["sgd", "adam"]), hyper=hypers, before=st.integers(0, 4), after=st.integers(1, 4),
       seed=st.integers(0, 1000))
def test_optimizer_state_round_trips_through_a_checkpoint(kind: str, hyper: dict[str, Any], before: int,
                                                          after: int, seed: int) -> None:
    """Run ``before`` steps, checkpoint, continue ``after`` steps both in place and from the file."""
    rng = numpy.random.default_rng(seed)
    start = [rng.standard_normal((3, 2)).astype(numpy.float32), rng.standard_normal(2).astype(numpy.float32)]
    grads = [[rng.standard_normal(p.shape).astype(numpy.float32) for p in start] for _ in range(before + after)]

    def steps(opt: optim.Optimizer, params: list[Parameter], chunk: list[list[numpy.ndarray]]) -> None:
        for step_grads in chunk:
            for p, g in zip(params, step_grads):
                p.grad = g.copy()
            opt.step()

    params = [Parameter(a.copy()) for a in start]
    opt = make_optimizer(kind, params, hyper)
    steps(opt, params, grads[:before])
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "opt.npz"
        io.save({"params": [p.data for p in params], "optimizer": opt.state_dict()}, path)
        state = io.load(path)
    steps(opt, params, grads[before:])

    restored = [Parameter(a) for a in state["params"]]
    other = make_optimizer(kind, restored, {**hyper, "lr": 0.123})  # hyperparameters come from the file
    other.load_state_dict(state["optimizer"])
    steps(other, restored, grads[before:])
    for p, q in zip(params, restored):
        assert numpy.array_equal(p.data, q.data)
