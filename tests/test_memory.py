"""No memory growth over long runs: each step's graph is freed by reference counting."""

from __future__ import annotations

import gc
import tracemalloc
import weakref
from collections.abc import Iterator
from typing import Any

import numpy
import pytest

from gpunet import functional as F
from gpunet import nn, optim
from gpunet.autograd import Tensor
from gpunet.data import load_dataset
from gpunet.training import Settings, get_recipe, recipe_trainer

GROWTH_LIMIT = 4 * 1024  # bytes; a leak of 10 bytes a step over 450 steps exceeds it


@pytest.fixture
def no_cycle_collector() -> Iterator[None]:
    """Only reference counting may free memory here: a graph that needs the cycle collector leaks."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def start_tracing() -> None:
    """Fill CPython's object free lists first (e.g. up to 2000 small tuples): memory parked there
    is still traced, and filling them slowly over a run would look like growth."""
    junk: list[Any] = [tuple(range(size)) for size in range(1, 8) for _ in range(2500)]
    junk += [float(i) + 0.5 for i in range(500)] + [{} for _ in range(200)] + [[] for _ in range(200)]
    del junk
    tracemalloc.start()


def traced_at(steps: set[int], run_step: Any, total: int) -> dict[int, int]:
    start_tracing()
    try:
        memory = {}
        for step in range(1, total + 1):
            run_step()
            if step in steps:
                memory[step] = tracemalloc.get_traced_memory()[0]
        return memory
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_training_loop_memory_is_flat(no_cycle_collector: None, optimizer: str) -> None:
    model = nn.MLP([8, 32, 32, 3], activation="tanh")
    opt = optim.SGD(model.parameters(), lr=0.01, momentum=0.9) if optimizer == "sgd" else \
        optim.Adam(model.parameters(), lr=1e-3)
    rng = numpy.random.default_rng(0)
    x = Tensor(rng.standard_normal((16, 8)).astype("float32"))
    y = rng.integers(0, 3, 16)

    def step() -> None:
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()

    memory = traced_at({50, 500}, step, 500)
    assert memory[500] - memory[50] < GROWTH_LIMIT, memory


def test_trainer_memory_is_flat(no_cycle_collector: None, tmp_path: Any) -> None:
    """The real loop (evaluation, checkpoints): after warm-up only the per-epoch history grows."""
    recipe = get_recipe("mlp")
    split = load_dataset("credit", seed=0)
    model = recipe.build(split.info)
    memory: dict[int, int] = {}

    def progress(event: dict[str, Any]) -> None:
        if event.get("end_of_epoch") and event["epoch"] in (10, 40):  # steps 240 and 960
            memory[event["epoch"]] = tracemalloc.get_traced_memory()[0]

    trainer = recipe_trainer(recipe, model, split, Settings(epochs=40, batch_size=32, lr=0.01, optimizer="adam"),
                             checkpoint=tmp_path / "run.npz", checkpoint_every=10, progress=progress)
    start_tracing()
    try:
        trainer.fit()
    finally:
        tracemalloc.stop()
    assert trainer.step == 960
    history_allowance = 1024 * 30  # one small dict of metrics per epoch
    assert memory[40] - memory[10] < GROWTH_LIMIT + history_allowance, memory


def intermediate_graph() -> tuple[Tensor, Tensor, list[weakref.ref]]:
    w = Tensor(numpy.ones((4, 3)), requires_grad=True)
    x = Tensor(numpy.arange(8.0).reshape(2, 4))
    h = F.tanh(F.matmul(x, w))
    loss = F.mean(h * h)
    functions = [weakref.ref(h.creator), weakref.ref(h.creator.inputs[0].creator), weakref.ref(loss.creator)]
    return w, loss, functions


def test_functions_are_released_after_backward(no_cycle_collector: None) -> None:
    w, loss, functions = intermediate_graph()
    assert all(ref() is not None for ref in functions)
    loss.backward()
    del loss
    assert all(ref() is None for ref in functions)
    assert w.grad is not None and w.grad.shape == (4, 3)


def test_graph_without_backward_is_freed_when_dropped(no_cycle_collector: None) -> None:
    """E.g. a validation loss computed outside no_grad(): dropping it frees the graph at once."""
    _, loss, functions = intermediate_graph()
    del loss
    assert all(ref() is None for ref in functions)


def test_retain_graph_keeps_the_graph_until_dropped(no_cycle_collector: None) -> None:
    w, loss, functions = intermediate_graph()
    loss.backward(retain_graph=True)
    first = w.grad.copy()
    loss.backward()
    assert numpy.allclose(w.grad, 2 * first)
    del loss
    assert all(ref() is None for ref in functions)


def test_tensor_kept_by_the_user_does_not_keep_the_graph(no_cycle_collector: None) -> None:
    w = Tensor(numpy.ones((3, 3)), requires_grad=True)
    hidden = F.relu(w * 2.0)
    loss = hidden.sum()
    function = weakref.ref(hidden.creator)
    loss.backward()
    assert hidden.creator is None and function() is None
    assert numpy.array_equal(hidden.data, numpy.full((3, 3), 2.0))  # the values themselves stay

