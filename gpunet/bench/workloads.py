"""The benchmark workloads: their standard shapes, FLOPs per step and input data.

Training steps (``lenet``, ``mlp``, ``rnn``, ``lstm``, ``gru``): forward, softmax cross-entropy,
backward, plain SGD (lr 0.01). Kernel-level ops (``conv2d``, ``rnn_step``, ``lstm_step``,
``gru_step``): the hot op's forward and backward on raw arrays through ``gpunet.cuda.the registry``,
so ``--kernels`` picks the implementation. Every implementation (gpunet and its peers) gets the
same arrays from :func:`make_inputs`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy

from gpunet.bench import flops

LR = 0.01
LENET = {"batch": 64, "channels": 1, "size": 32, "classes": 10}
MLP = {"batch": 128, "sizes": [784, 256, 256, 10]}
RECURRENT = {"layers": 2, "steps": 50, "batch": 32, "input": 32, "hidden": 128, "classes": 10}
CONV = {"batch": 64, "in_channels": 6, "out_channels": 16, "size": 14, "kernel": 5}  # LeNet's conv2
CELL = {"batch": 32, "hidden": 128}  # the cell steps inside the rnn/lstm/gru workloads


class WorkloadUnavailable(RuntimeError):
    """A workload needs a model or op this build of gpunet does not have (yet)."""


@dataclass(frozen=True)
class Workload:
    """One benchmarked step: its name, kind, description, shapes and FLOPs per step."""

    name: str
    kind: str  # "train" (a full training step) or "kernel" (one hot op, forward + backward)
    description: str
    flops: int
    shapes: dict[str, Any] = field(default_factory=dict)


def _recurrent(mode: str) -> Workload:
    r = RECURRENT
    act = "tanh RNN" if mode == "rnn" else mode.upper()
    return Workload(mode, "train",
                    f"{r['layers']}-layer {act}, T={r['steps']}, B={r['batch']}, input {r['input']}, "
                    f"hidden {r['hidden']}, linear head on the last state, {r['classes']} classes, SGD",
                    flops.recurrent_step(mode, r["layers"], r["steps"], r["batch"], r["input"], r["hidden"],
                                         r["classes"]), dict(r))


def _cell(mode: str) -> Workload:
    c = CELL
    return Workload(f"{mode}_step", "kernel",
                    f"{mode.upper()} cell step forward + backward (fused elementwise), B={c['batch']}, "
                    f"H={c['hidden']}", flops.cell_step(mode, c["batch"], c["hidden"]), dict(c))


def _conv() -> Workload:
    c = CONV
    out = c["size"] - c["kernel"] + 1
    return Workload("conv2d", "kernel",
                    f"conv2d forward + backward (input and weight), x ({c['batch']}, {c['in_channels']}, "
                    f"{c['size']}, {c['size']}), w ({c['out_channels']}, {c['in_channels']}, {c['kernel']}, "
                    f"{c['kernel']}), stride 1, no padding",
                    flops.conv2d(c["batch"], c["in_channels"], c["out_channels"], (c["kernel"],) * 2,
                                 (out, out)), dict(c))


WORKLOADS: dict[str, Workload] = {
    "lenet": Workload("lenet", "train",
                      f"LeNet-5 (ReLU, max-pool), batch {LENET['batch']}, 1x32x32, {LENET['classes']} "
                      f"classes, SGD", flops.lenet_step(**LENET), dict(LENET)),
    "mlp": Workload("mlp", "train", f"MLP {'-'.join(map(str, MLP['sizes']))} (ReLU), batch {MLP['batch']}, SGD",
                    flops.mlp_step(MLP["batch"], MLP["sizes"]), dict(MLP)),
    "rnn": _recurrent("rnn"),
    "lstm": _recurrent("lstm"),
    "gru": _recurrent("gru"),
    "conv2d": _conv(),
    "rnn_step": _cell("rnn"),
    "lstm_step": _cell("lstm"),
    "gru_step": _cell("gru"),
}


def get_workload(name: str) -> Workload:
    """The workload called ``name``; raises ``KeyError`` listing the known names."""
    if name not in WORKLOADS:
        raise KeyError(f"unknown workload {name!r}; expected one of {', '.join(WORKLOADS)}")
    return WORKLOADS[name]


def make_inputs(name: str, seed: int = 0) -> dict[str, numpy.ndarray]:
    """Host arrays for workload ``name`` (float32 data, int64 labels), identical for every peer."""
    rng = numpy.random.default_rng(seed)

    def normal(*shape: int) -> numpy.ndarray:
        return rng.standard_normal(shape, dtype=numpy.float32)

    def labels(batch: int, classes: int) -> numpy.ndarray:
        return rng.integers(0, classes, batch).astype(numpy.int64)

    if name == "lenet":
        b, c, s = LENET["batch"], LENET["channels"], LENET["size"]
        return {"x": normal(b, c, s, s), "t": labels(b, LENET["classes"])}
    if name == "mlp":
        return {"x": normal(MLP["batch"], MLP["sizes"][0]), "t": labels(MLP["batch"], MLP["sizes"][-1])}
    if name in ("rnn", "lstm", "gru"):
        r = RECURRENT
        return {"x": normal(r["steps"], r["batch"], r["input"]), "t": labels(r["batch"], r["classes"])}
    if name == "conv2d":
        c = CONV
        out = c["size"] - c["kernel"] + 1
        return {"x": normal(c["batch"], c["in_channels"], c["size"], c["size"]),
                "w": normal(c["out_channels"], c["in_channels"], c["kernel"], c["kernel"]) * 0.1,
                "gy": normal(c["batch"], c["out_channels"], out, out)}
    get_workload(name)
    b, h = CELL["batch"], CELL["hidden"]
    g = flops.GATES[name.removesuffix("_step")] * h
    return {"xg": normal(b, g), "hg": normal(b, g), "b_hh": normal(g), "h_prev": numpy.tanh(normal(b, h)),
            "c_prev": normal(b, h), "mask": numpy.ones(b, dtype=numpy.float32), "dh": normal(b, h),
            "dc": normal(b, h)}
