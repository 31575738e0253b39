"""Run under ``mpiexec -n N python mpi_worker.py MODE ...`` by the data-parallel tests.

Modes:
  overlap OUT     one backward of a 5-layer MLP through DistributedDataParallel with tiny buckets;
                  rank r writes OUT.r.json: the timeline, how many gradients were still missing
                  when the first bucket was launched, and the max difference from the gradient of
                  the whole global batch in one process.
  fail HOW [cupy]  train; at step 3 rank 1 dies (kill: SIGKILL itself, raise: an exception, exit:
                  leaves quietly so its peer times out); ``cupy``: on the CuPy stand-in (NCCL path).
  cupy_steps OUT  3 SGD steps of an MLP on the CuPy stand-in through DistributedDataParallel; rank r
                  writes OUT.r.json: the reducer, the largest parameter difference from one process
                  with the global batch, and the stand-in's record of stream order.
  partial CKPT    train mlp 2 epochs with the Trainer, stop after 7 batches of epoch 1 and save.
  resume CKPT OUT resume from CKPT to the end of epoch 2 and write the history to OUT (rank 0).
"""

from __future__ import annotations

import json
import os
import signal
import sys

import numpy

import gpunet
from gpunet import distributed as dist
from gpunet import functional as F
from gpunet import nn


def _data(n: int = 12, features: int = 16):
    rng = numpy.random.default_rng(1)
    return rng.standard_normal((n, features)).astype("float32"), rng.integers(0, 10, n)


def overlap(out: str) -> None:
    dist.init()
    rank, world = dist.get_rank(), dist.get_world_size()
    gpunet.manual_seed(0)
    model = nn.MLP([16, 64, 64, 64, 64, 10], activation="tanh")
    reference = nn.MLP([16, 64, 64, 64, 64, 10], activation="tanh")
    reference.load_state_dict(model.state_dict())
    ddp = dist.DistributedDataParallel(model, bucket_cap_mb=0.01, record_timeline=True)
    x, t = _data()
    part = numpy.array_split(numpy.arange(len(x)), world)[rank]
    ddp.grad_scale = len(part) / len(x)
    loss = F.cross_entropy(ddp(gpunet.tensor(x[part])), gpunet.tensor(t[part]))
    loss.backward()
    ddp.finish()
    F.cross_entropy(reference(gpunet.tensor(x)), gpunet.tensor(t)).backward()
    diff = max(float(numpy.abs(p.grad - q.grad).max()) for p, q in zip(model.parameters(), reference.parameters()))
    events = ddp.timeline
    first_launch = next(i for i, e in enumerate(events) if e[0] == "launch")
    readies = sum(1 for e in events if e[0] == "ready")
    missing = readies - sum(1 for e in events[:first_launch] if e[0] == "ready")
    last_ready = max(e[2] for e in events if e[0] == "ready")
    Path_out = f"{out}.{rank}.json"
    with open(Path_out, "w") as f:
        json.dump({"buckets": len(ddp.buckets), "params": len(ddp.params), "missing_at_first_launch": missing,
                   "first_launch_before_last_gradient": events[first_launch][2] < last_ready,
                   "launch_order": [e[1] for e in events if e[0] == "launch"], "max_grad_diff": diff,
                   "reducer": ddp.reducer.name}, f)


def _use_standin() -> None:
    """The CuPy backend on the stand-in (tests/standin first on PYTHONPATH, GPUNET_STANDIN=1)."""
    import cupy
    import standin_plugin

    assert cupy._is_standin, cupy.__file__
    standin_plugin.numba_adapter()
    gpunet.use("cupy", quiet=True)


def cupy_steps(out: str) -> None:
    import cupy

    _use_standin()
    dist.init()
    rank, world = dist.get_rank(), dist.get_world_size()
    gpunet.manual_seed(0)
    model = nn.MLP([16, 32, 32, 10], activation="tanh")
    reference = nn.MLP([16, 32, 32, 10], activation="tanh")
    reference.load_state_dict(model.state_dict())
    ddp = dist.DistributedDataParallel(model, bucket_cap_mb=0.002)  # a few buckets
    opt = gpunet.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    ref_opt = gpunet.optim.SGD(reference.parameters(), lr=0.1, momentum=0.9)
    x, t = _data()
    part = numpy.array_split(numpy.arange(len(x)), world)[rank]
    for _ in range(3):
        opt.zero_grad()
        ddp.grad_scale = len(part) / len(x)
        F.cross_entropy(ddp(gpunet.tensor(x[part])), gpunet.tensor(t[part])).backward()
        ddp.finish()
        opt.step()
        ref_opt.zero_grad()
        F.cross_entropy(reference(gpunet.tensor(x)), gpunet.tensor(t)).backward()
        ref_opt.step()
    diff = max(float(abs(p.data - q.data).max().item()) for p, q in zip(model.parameters(), reference.parameters()))
    order = cupy.cuda._ORDER
    reduces = [e for e in order if e["op"] == "allReduce"]
    waits = [e for e in order if e["op"] == "wait_event" and e["stream"] == 0 and e["on"] != 0]
    with open(f"{out}.{rank}.json", "w") as f:
        json.dump({"reducer": ddp.reducer.name, "buckets": len(ddp.buckets), "device": model.parameters()[0].device,
                   "max_param_diff": diff, "reduces": len(reduces),
                   "nccl_streams": sorted({e["stream"] for e in reduces}),
                   "reduces_after_their_writer": all(e["after"] == e["clock"] for e in reduces),
                   "compute_waits_on_nccl": len(waits)}, f)


def fail(how: str, backend_name: str = "numpy") -> None:
    if backend_name == "cupy":
        _use_standin()
    dist.init()
    gpunet.manual_seed(0)
    model = nn.MLP([16, 32, 10])
    ddp = dist.DistributedDataParallel(model)
    if dist.get_rank() == 0:
        print(f"reducer {ddp.reducer.name}", flush=True)
    opt = gpunet.optim.SGD(model.parameters(), lr=0.01)
    x, t = _data()
    for step in range(10_000):
        if dist.get_rank() == 1 and step == 3:
            if how == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
            if how == "raise":
                raise RuntimeError("rank 1 failed on purpose")
            if how == "exit":
                sys.exit(0)
        opt.zero_grad()
        F.cross_entropy(ddp(gpunet.tensor(x)), gpunet.tensor(t)).backward()
        ddp.finish()
        opt.step()
    print("unreachable: no rank failed")


def _trainer(checkpoint: str, epochs: int):
    from gpunet.training import make_settings, prepare_run, recipe_trainer

    recipe, split, net = prepare_run("mlp", None, 0, None)
    settings = make_settings(recipe, seed=0, epochs=epochs)
    return recipe_trainer(recipe, net, split, settings, checkpoint=checkpoint, distributed=dist.get_world_size() > 1)


def partial(checkpoint: str) -> None:
    dist.init()
    trainer = _trainer(checkpoint, 2)
    for i, batch in enumerate(trainer.train_loader.iterate(trainer.epoch, trainer.batch)):
        if i == 7:
            break
        trainer.train_step(batch)
    trainer.save()


def resume(checkpoint: str, out: str) -> None:
    dist.init()
    trainer = _trainer(checkpoint, 2)
    if checkpoint != "-":
        trainer.restore(checkpoint)
    trainer.checkpoint = None
    history = trainer.fit()
    if dist.get_rank() == 0:
        with open(out, "w") as f:
            json.dump(history.epochs, f)


if __name__ == "__main__":
    mode, *args = sys.argv[1:]
    if mode != "cupy_steps" and "cupy" not in args:
        gpunet.use("numpy", quiet=True)
    {"overlap": overlap, "fail": fail, "partial": partial, "resume": resume, "cupy_steps": cupy_steps}[mode](*args)
