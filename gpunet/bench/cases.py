"""gpunet's side of each workload: a ``step()`` closure on the active backend and kernels."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy

from gpunet.bench import timing
from gpunet.bench.workloads import LR, RECURRENT, WorkloadUnavailable, get_workload, make_inputs


@dataclass
class Case:
    """A ready-to-time step of one implementation of a workload."""

    step: Callable[[], object]
    sync: Callable[[], None] = timing.no_sync
    info: dict[str, Any] = field(default_factory=dict)


def _train_step(model: Any, x: Any, t: Any) -> Callable[[], object]:
    from gpunet import functional as F
    from gpunet.optim import SGD

    opt = SGD(model.parameters(), lr=LR)

    def step() -> object:
        loss = F.cross_entropy(model(x), t)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss

    return step


def require(name: str) -> Any:
    """The model class workload ``name`` needs (``None`` for MLP and the kernels); raises
    :class:`WorkloadUnavailable` with a one-line reason when this build lacks it."""
    needs = {"lenet": ("gpunet.models.cnn", "LeNet", "LeNet (gpunet.models.cnn)")}
    for mode in ("rnn", "lstm", "gru"):
        needs[mode] = ("gpunet.nn.recurrent", mode.upper(), f"the {mode.upper()} layer (gpunet.nn.recurrent)")
    if name not in needs:
        return None
    module, attribute, what = needs[name]
    try:
        return getattr(importlib.import_module(module), attribute)
    except (ImportError, AttributeError) as exc:
        raise WorkloadUnavailable(f"workload {name!r} needs {what}, which this build of gpunet does not "
                                  f"have yet ({type(exc).__name__}: {exc})") from exc


def _sequence_model(layer: Any, mode: str) -> Any:
    from gpunet.nn.linear import Linear
    from gpunet.nn.module import Module

    r = RECURRENT

    class SequenceClassifier(Module):
        def __init__(self) -> None:
            super().__init__()
            self.rnn = layer(r["input"], r["hidden"], num_layers=r["layers"])
            self.head = Linear(r["hidden"], r["classes"])

        def forward(self, x: Any) -> Any:
            _, state = self.rnn(x)
            h_n = state[0] if mode == "lstm" else state
            return self.head(h_n[r["layers"] - 1])

    return SequenceClassifier()


def _model(name: str) -> Any:
    model_class = require(name)
    if name == "lenet":
        return model_class(num_classes=10, in_channels=1, input_size=32)
    if name == "mlp":
        from gpunet.nn.containers import MLP

        return MLP(get_workload(name).shapes["sizes"], activation="relu")
    return _sequence_model(model_class, name)


def _lookup(op: str, on_gpu: bool) -> Any:
    from gpunet.ops import registry

    return registry.lookup(op, "cupy" if on_gpu else "numpy")


def _kernel_step(name: str, arrays: dict[str, Any], on_gpu: bool) -> Callable[[], object]:
    lookup = _lookup

    if name == "conv2d":
        fwd, bwd_in, bwd_w = (lookup(f"conv2d_{op}", on_gpu) for op in ("forward", "backward_input",
                                                                           "backward_weight"))
        x, w, gy = arrays["x"], arrays["w"], arrays["gy"]
        one, zero = (1, 1), (0, 0)

        def conv_step() -> object:
            y = fwd(x, w, one, zero, one)
            return y, bwd_in(gy, w, x.shape, one, zero, one), bwd_w(x, gy, w.shape, one, zero, one)

        return conv_step
    mode = name.removesuffix("_step")
    fwd, bwd = lookup(f"{mode}_step_forward", on_gpu), lookup(f"{mode}_step_backward", on_gpu)
    a = arrays
    if mode == "rnn":
        return lambda: bwd(fwd(a["xg"], a["hg"], a["b_hh"], a["h_prev"], a["mask"]), a["dh"], a["mask"])
    if mode == "lstm":
        def lstm_step() -> object:
            h, c, gates = fwd(a["xg"], a["hg"], a["b_hh"], a["h_prev"], a["c_prev"], a["mask"])
            return bwd(gates, a["c_prev"], c, a["dh"], a["dc"], a["mask"])

        return lstm_step

    def gru_step() -> object:
        h, saved = fwd(a["xg"], a["hg"], a["b_hh"], a["h_prev"], a["mask"])
        return bwd(saved, a["h_prev"], a["dh"], a["mask"])

    return gru_step


def _resolved(name: str, on_gpu: bool) -> str:
    """The module whose forward op the registry picked (shows what ``auto`` resolved to)."""
    op = "conv2d_forward" if name == "conv2d" else f"{name.removesuffix('_step')}_step_forward"
    return getattr(_lookup(op, on_gpu), "__module__", "?")


def build(name: str, seed: int = 0) -> Case:
    """gpunet's step for workload ``name`` on the active backend (and, on CuPy, the configured kernels)."""
    from gpunet import backend, config
    from gpunet.autograd import Tensor
    from gpunet.random import manual_seed

    workload = get_workload(name)
    on_gpu = backend.current() == "cupy"
    host = make_inputs(name, seed)
    arrays = {k: backend.xp().asarray(numpy.ascontiguousarray(v)) for k, v in host.items()}
    info = {"implementation": "gpunet", "backend": backend.current(),
            "kernels": config.kernels() if on_gpu else "numpy"}
    if workload.kind == "kernel":
        step = _kernel_step(name, arrays, on_gpu)
        info["ops_from"] = _resolved(name, on_gpu)
    else:
        manual_seed(seed)
        model = _model(name)
        step = _train_step(model, Tensor(arrays["x"]), Tensor(arrays["t"]))
    return Case(step, timing.cupy_sync if on_gpu else timing.no_sync, info)

