"""``gpunet bench --distributed`` (under ``mpiexec -n N``): all-reduce bandwidth by message size,
and the data-parallel training step per rank against one process, with the overlap fraction.

Definitions (every rank measures; rank 0 reports the slowest rank, which sets the pace):
- all-reduce: median time of a sum-all-reduce of ``size`` bytes of float32, on the reducer the
  gradients use; ``algbw = bytes / t`` and ``busbw = algbw * 2 (N-1) / N`` (nccl-tests' convention:
  the bytes each link carries in a ring all-reduce).
- ``one_process_ms``: one process, the global batch, no communication (rank 0 alone, the others
  wait at a barrier).
- ``local_ms``: every rank at once, its batch of ``global / N``, no communication (what the step
  would cost with free communication on this machine).
- ``ddp_ms``: the same step through DistributedDataParallel (bucketed, overlapped all-reduce).
- ``comm_ms``: the buckets' all-reduces alone, launched after each other and waited for.
- ``overlap = 1 - (ddp_ms - local_ms) / comm_ms``, clipped to [0, 1]: the share of the
  communication hidden behind backward.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy

SIZES = [2**k for k in range(12, 23, 2)]  # 4 KiB .. 4 MiB


def _median_ms(step: Callable[[], object], repeat: int, warmup: int, sync: Callable[[], None]) -> float:
    from gpunet import distributed as dist

    for _ in range(warmup):
        step()
    sync()
    samples = []
    for _ in range(repeat):
        dist.barrier()
        start = time.perf_counter()
        step()
        sync()
        samples.append((time.perf_counter() - start) * 1e3)
    return statistics.median(samples)


def _slowest(value: float) -> float:
    from gpunet.distributed import comm

    g = comm.group()
    return float(g.comm.allreduce(value, op=g.mpi.MAX))


class _FlatBucket:
    def __init__(self, index: int, flat: Any) -> None:
        self.index, self.flat = index, flat
        self.request = self.done = self.host = None


def _sync() -> Callable[[], None]:
    from gpunet import backend

    if backend.current() == "cupy":
        import cupy

        return lambda: cupy.cuda.Device().synchronize()
    return lambda: None


def allreduce_bandwidth(repeat: int, warmup: int, sizes: list[int] = SIZES) -> list[dict[str, float]]:
    from gpunet import backend
    from gpunet import distributed as dist
    from gpunet.distributed import reducers

    reducer = reducers.choose(backend.current())
    world = dist.get_world_size()
    rows = []
    for nbytes in sizes:
        bucket = _FlatBucket(0, backend.xp().ones(nbytes // 4, dtype="float32"))

        def step(bucket: _FlatBucket = bucket) -> None:
            reducer.launch(bucket)
            reducer.wait(bucket)

        ms = _slowest(_median_ms(step, repeat, warmup, _sync()))
        algbw = nbytes / (ms / 1e3) / 1e9
        rows.append({"bytes": nbytes, "ms": ms, "algbw_gbs": algbw, "busbw_gbs": algbw * 2 * (world - 1) / world,
                     "reducer": reducer.name})
    return rows


def _step_builder(name: str, batch: slice | None) -> tuple[Any, Callable[[Any], None]]:
    from gpunet import functional as F
    from gpunet import optim, random
    from gpunet.autograd import tensor
    from gpunet.bench.cases import _model
    from gpunet.bench.workloads import make_inputs

    random.manual_seed(0)
    model = _model(name)
    arrays = make_inputs(name)
    x, t = arrays["x"], arrays["t"]
    if batch is not None:
        x, t = x[batch], t[batch]
    xs, ts = tensor(x), tensor(t)
    opt = optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    def step(forward: Any) -> None:
        opt.zero_grad()
        F.cross_entropy(forward(xs), ts).backward()
        finish = getattr(forward, "finish", None)
        if finish is not None:
            finish()
        opt.step()

    return model, step


def training_step(name: str, repeat: int, warmup: int, bucket_cap_mb: float) -> dict[str, Any]:
    from gpunet import distributed as dist
    from gpunet.bench.workloads import make_inputs

    rank, world = dist.get_rank(), dist.get_world_size()
    sync = _sync()
    global_batch = len(make_inputs(name)["t"])
    one_ms = float("nan")
    if rank == 0:  # the others wait: one process has the machine to itself
        model, step = _step_builder(name, None)
        for _ in range(warmup):
            step(model)
        samples = []
        for _ in range(repeat):
            start = time.perf_counter()
            step(model)
            sync()
            samples.append((time.perf_counter() - start) * 1e3)
        one_ms = statistics.median(samples)
    dist.barrier()
    part = numpy.array_split(numpy.arange(global_batch), world)[rank]
    local = slice(int(part[0]), int(part[-1]) + 1)
    model, step = _step_builder(name, local)
    local_ms = _slowest(_median_ms(lambda: step(model), repeat, warmup, sync))
    ddp = dist.DistributedDataParallel(model, bucket_cap_mb=bucket_cap_mb)
    ddp_ms = _slowest(_median_ms(lambda: step(ddp), repeat, warmup, sync))
    buckets = [_FlatBucket(b.index, b.flat) for b in ddp.buckets]

    def communicate() -> None:
        for b in buckets:
            ddp.reducer.launch(b)
        for b in buckets:
            ddp.reducer.wait(b)

    comm_ms = _slowest(_median_ms(communicate, repeat, warmup, sync))
    ddp.remove_hooks()
    overlap = min(max(1.0 - (ddp_ms - local_ms) / comm_ms, 0.0), 1.0) if comm_ms > 0 else float("nan")
    return {"workload": name, "world_size": world, "global_batch": global_batch, "per_rank_batch": len(part),
            "buckets": len(ddp.buckets), "gradient_mb": sum(b.size * b.flat.itemsize for b in ddp.buckets) / 2**20,
            "reducer": ddp.reducer.name, "one_process_ms": one_ms, "local_ms": local_ms, "ddp_ms": ddp_ms,
            "comm_ms": comm_ms, "overlap": overlap, "speedup": one_ms / ddp_ms}


def run(names: list[str], repeat: int, warmup: int, bucket_cap_mb: float = 25.0,
        progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """The whole record (every rank must call it; only rank 0's copy is complete)."""
    from gpunet import backend, diagnostics
    from gpunet import distributed as dist

    say = progress if progress and dist.is_main_process() else (lambda line: None)
    say(f"all-reduce bandwidth over {dist.get_world_size()} processes ...")
    bandwidth = allreduce_bandwidth(repeat, warmup)
    steps = []
    for name in names:
        say(f"training step {name} ...")
        steps.append(training_step(name, repeat, warmup, bucket_cap_mb))
    return {"kind": "distributed", "world_size": dist.get_world_size(), "backend": backend.current(),
            "cpu": diagnostics.cpu_model(), "cpu_cores": diagnostics.cpu_cores(),
            "load_average": diagnostics.load_average(), "repeat": repeat, "warmup": warmup,
            "allreduce": bandwidth, "steps": steps}


def format_table(record: dict[str, Any]) -> str:
    lines = [f"all-reduce over {record['world_size']} processes ({record['allreduce'][0]['reducer']})",
             f"{'bytes':>10} {'ms':>9} {'algbw GB/s':>11} {'busbw GB/s':>11}"]
    for r in record["allreduce"]:
        lines.append(f"{r['bytes']:>10,} {r['ms']:>9.3f} {r['algbw_gbs']:>11.3f} {r['busbw_gbs']:>11.3f}")
    lines.append("")
    lines.append(f"{'step':<7} {'batch':>11} {'buckets':>7} {'1 proc ms':>10} {'local ms':>9} {'ddp ms':>8} "
                 f"{'comm ms':>8} {'overlap':>8} {'speedup':>8}")
    for s in record["steps"]:
        lines.append(f"{s['workload']:<7} {s['global_batch']:>5}/{s['per_rank_batch']:<5} {s['buckets']:>7} "
                     f"{s['one_process_ms']:>10.2f} {s['local_ms']:>9.2f} {s['ddp_ms']:>8.2f} {s['comm_ms']:>8.2f} "
                     f"{s['overlap']:>8.0%} {s['speedup']:>7.2f}x")
    return "\n".join(lines)
