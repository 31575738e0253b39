"""Run a set of workloads on gpunet (one or more kernel implementations) and its peers."""

from __future__ import annotations

import contextlib
import datetime
import statistics
import time
import tracemalloc
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from gpunet import diagnostics
from gpunet.bench import cases, peers_other, peers_torch, report
from gpunet.bench.schema import SCHEMA
from gpunet.bench.timing import calibrate, measure_clocks
from gpunet.bench.timing import no_sync as timing_no_sync
from gpunet.bench.workloads import WORKLOADS, WorkloadUnavailable, get_workload

NUMPY_ONLY = "the NumPy backend has only the NumPy path: --kernels applies to the CuPy backend (GPU)"


@dataclass
class Options:
    """How to run: timing repeats, kernel implementations (CuPy only), peers, BLAS/torch threads, clocks."""

    repeat: int = 20
    warmup: int = 3
    kernels: Sequence[str] = ("auto",)
    peers: bool = False
    threads: int | None = None
    peer_threads: int | None = None  # PyTorch intra-op threads [default: the BLAS thread count]
    cpu_time: bool = False  # also record process CPU time per step (``cpu_ms``) and its ratios
    scaling: bool = False  # time gpunet (and peers) at 1 thread and at ``threads`` (default: every core)
    seed: int = 0
    strict: bool = True  # an unavailable workload raises (else it is skipped with the reason)


@contextlib.contextmanager
def _blas_limit(threads: int | None) -> Iterator[None]:
    """The ``threads`` setting (BLAS and numba together, :mod:`gpunet.parallel`) for the run."""
    from gpunet import parallel, settings

    parallel.refresh()  # the peers may have loaded another BLAS since the last run
    with settings.using() if threads is None else settings.using(threads=threads):
        yield


@dataclass
class _Entry:
    """One implementation of a workload: its facts, its case, or why it cannot run."""

    info: dict[str, Any]
    case: cases.Case | None = None
    error: str | None = None
    calls: int = 1
    first_ms: float | None = None


#: Untimed steps after a thread-count switch, before a ``--scaling`` sample starts its clock.
SETTLE_STEPS = 2


def _with_threads(case: cases.Case, threads: int, torch_peer: bool) -> cases.Case:
    """``case`` whose step runs with ``threads`` threads (gpunet's setting, or PyTorch's).

    The switch happens in the case's ``sync``, which the timer calls before it starts the clock,
    followed by :data:`SETTLE_STEPS` untimed steps: a sample then times steady steps at its
    thread count, as in a run that never switches. Without them a sample timed the switch
    (threadpoolctl calls, the first region of a sleeping pool), and a 1-thread sample ran while
    the pool's other thread still spun after the 2-thread sample before it (its CPU time was
    twice its wall time)."""
    step, sync = case.step, case.sync
    if torch_peer:
        import torch

        def switch() -> bool:
            if torch.get_num_threads() == threads:
                return False
            torch.set_num_threads(threads)
            return True
    else:
        from gpunet import settings

        def switch() -> bool:  # the run's scope is restored after it; no switch when unchanged
            if settings.current().threads == threads:
                return False
            settings.replace(threads=threads)
            return True

    def run_step() -> object:  # also for the warm-up and first step, which call no sync first
        switch()
        return step()

    def switch_then_sync() -> None:
        if switch():
            for _ in range(SETTLE_STEPS):
                step()
        sync()

    return cases.Case(run_step, switch_then_sync, {**case.info, "threads": threads})


def _thread_variants(entries: list[_Entry], counts: list[int]) -> list[_Entry]:
    """Each timed entry once per thread count in ``counts`` (labels say how many)."""
    out = []
    for e in entries:
        if e.case is None:
            out.append(e)
            continue
        for k in counts:
            label = f"{e.info['label']} ({k} thread{'s' if k > 1 else ''})"
            case = _with_threads(e.case, k, e.info["implementation"] == "torch")
            out.append(_Entry({**case.info, "label": label}, case))
    return out


def _peak_mib(step: Callable[[], object]) -> float:
    """Peak memory allocated during one step (tracemalloc: NumPy's buffers and Python objects)."""
    tracemalloc.start()
    try:
        step()
        return tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


def _scoped(step: Callable[[], object], impl: str) -> Callable[[], object]:
    """``step`` run with kernel implementation ``impl`` (ops look it up at call time)."""
    from gpunet import config

    def run_step() -> object:
        with config.set_kernels(impl):
            return step()

    return run_step


def _gpunet_entries(name: str, opts: Options, on_gpu: bool) -> list[_Entry]:
    from gpunet import config

    entries = []
    for impl in (opts.kernels if on_gpu else ("numpy",)):
        label = f"gpunet cupy/{impl}" if on_gpu else "gpunet numpy"
        try:
            with config.set_kernels(impl) if on_gpu else contextlib.nullcontext():
                case = cases.build(name, opts.seed)
        except WorkloadUnavailable:
            raise
        except RuntimeError as exc:  # a kernel implementation that cannot run here
            entries.append(_Entry({"implementation": "gpunet", "kernels": impl, "label": label}, error=str(exc)))
            continue
        if on_gpu:
            case.step = _scoped(case.step, impl)
        entries.append(_Entry({**case.info, "label": label}, case))
    return entries


def _machine_entry() -> _Entry:
    """With ``--scaling`` on the CPU: :mod:`gpunet.bench.machine`, the speedup this machine gave."""
    from gpunet.bench import machine

    info = {"implementation": "machine", "label": machine.LABEL, "flops": machine.FLOPS}
    return _Entry(info, cases.Case(machine.step(), info=info))


def _peer_entries(name: str, opts: Options, peers: dict[str, str], on_gpu: bool, threads: int) -> list[_Entry]:
    makers: list[tuple[str, Callable[[], cases.Case | None]]] = []
    if "torch" in peers:
        device = "cuda" if on_gpu and _torch_cuda() else "cpu"
        makers.append((f"torch {peers['torch']} {device}",
                       lambda: peers_torch.build(name, threads, device, opts.seed)))
    for peer in peers_other.PEERS:
        if peer in peers:
            makers.append((f"{peer} {peers[peer]} cpu", lambda p=peer: peers_other.build(p, name, opts.seed)))
    entries = []
    for label, make in makers:
        try:
            case = make()
        except Exception as exc:  # a peer's failure must not stop gpunet's own measurements
            entries.append(_Entry({"implementation": label.split()[0], "label": label},
                                  error=f"{type(exc).__name__}: {exc}"))
            continue
        if case is not None:
            entries.append(_Entry({**case.info, "label": label}, case))
    return entries


def _torch_cuda() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def _time(entries: list[_Entry], flops: int, opts: Options) -> list[dict[str, Any]]:
    """Warm up and calibrate each entry, then time them interleaved; one run record each."""
    live = []
    for e in entries:
        if e.case is None:
            continue
        try:
            start = time.perf_counter()  # the first step: numba's compilation or cache load, buffers
            e.case.step()
            e.case.sync()
            e.first_ms = (time.perf_counter() - start) * 1e3
            e.calls = calibrate(e.case.step, opts.warmup, e.case.sync)
            live.append(e)
        except Exception as exc:
            if e.info["implementation"] == "gpunet" and not isinstance(exc, RuntimeError):
                raise
            e.error = f"{type(exc).__name__}: {exc}"
    timings = dict(zip(map(id, live), measure_clocks(
        [(e.case.step, e.case.sync, e.calls) for e in live if e.case is not None], opts.repeat, opts.cpu_time)))
    runs = []
    for e in entries:
        if e.error is not None or id(e) not in timings:
            runs.append({**e.info, "error": e.error or "no equivalent"})
            continue
        wall, cpu = timings[id(e)]
        run = {**e.info, "ms": wall.as_dict(), "gflops": e.info.get("flops", flops) / (wall.median * 1e6),
               "first_step_ms": e.first_ms}
        if cpu is not None:
            run["cpu_ms"] = cpu.as_dict()
        if e.info["implementation"] == "gpunet" and e.case is not None and e.case.sync is timing_no_sync:
            run["peak_mib"] = _peak_mib(e.case.step)
        runs.append(run)
    return runs


def _ratio_stats(a: dict[str, Any] | None, b: dict[str, Any] | None, prefix: str = "") -> dict[str, float]:
    """Ratio of medians, median of per-round ratios and ratio of minima of two timing dicts
    (empty when either is missing or lacks the statistic, as in converted old records)."""
    if not a or not b:
        return {}
    out = {f"{prefix}ratio": a["median"] / b["median"]}
    if a["samples"] and len(a["samples"]) == len(b["samples"]):
        out[f"{prefix}paired_ratio"] = statistics.median(x / y for x, y in zip(a["samples"], b["samples"]))
    if a["min"] is not None and b["min"] is not None:
        out[f"{prefix}min_ratio"] = a["min"] / b["min"]
    return out


def _ratios(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """gpunet/peer for every pair: ratio of medians, median of per-round ratios, ratio of minima
    (the least-disturbed samples: the steadiest estimate on a busy machine); the same on the
    CPU clock (``cpu_ratio``...) when both runs have ``cpu_ms``."""
    def timed(r: dict[str, Any]) -> bool:
        return bool(r.get("ms") or r.get("cpu_ms"))

    ours = [r for r in runs if r["implementation"] == "gpunet" and timed(r)]
    theirs = [r for r in runs if r["implementation"] not in ("gpunet", "machine") and timed(r)]
    return [{"gpunet": a["label"], "peer": b["label"], **_ratio_stats(a.get("ms"), b.get("ms")),
             **_ratio_stats(a.get("cpu_ms"), b.get("cpu_ms"), "cpu_")}
            for a in ours for b in theirs]


def _speedups(runs: list[dict[str, Any]], counts: list[int]) -> list[dict[str, Any]]:
    """Per implementation: step time at 1 thread over step time at ``max(counts)`` threads
    (medians, and minima), from the interleaved runs of one workload."""
    out = []
    by_label = {r["label"]: r for r in runs if r.get("ms")}
    for r in runs:
        if r.get("threads") != 1 or not r.get("ms"):
            continue
        base = r["label"].rsplit(" (", 1)[0]
        top = max(counts)
        other = by_label.get(f"{base} ({top} thread{'s' if top > 1 else ''})")
        if other is None:
            continue
        out.append({"implementation": base, "threads": [1, top],
                    "speedup": r["ms"]["median"] / other["ms"]["median"],
                    "min_speedup": r["ms"]["min"] / other["ms"]["min"]})
    return out


def available_peers() -> tuple[dict[str, str], dict[str, str]]:
    """``({peer: version}, {peer: why not})`` over PyTorch, Chainer and DeZero."""
    found, missing = {}, {}
    for peer, (ok, text) in [("torch", peers_torch.available()),
                             *((p, peers_other.available(p)) for p in peers_other.PEERS)]:
        (found if ok else missing)[peer] = text
    return found, missing


def run(names: Sequence[str], opts: Options, progress: Callable[[str], None] | None = None,
        command: str = "") -> dict[str, Any]:
    """Time ``names`` (default: every workload); returns the record :mod:`gpunet.bench.report` prints."""
    from gpunet import backend

    workloads = [get_workload(n) for n in (names or WORKLOADS)]
    skipped = []
    for w in list(workloads):
        try:
            cases.require(w.name)
        except WorkloadUnavailable as exc:
            if opts.strict:
                raise
            workloads.remove(w)
            skipped.append({"workload": w.name, "reason": str(exc)})
    on_gpu = backend.current() == "cupy"
    notes = [] if on_gpu or tuple(opts.kernels) == ("auto",) else [NUMPY_ONLY]
    peers, missing = available_peers() if opts.peers else ({}, {})
    record: dict[str, Any] = {"schema": SCHEMA, "created": _now(), "command": command,
                              "workloads": [], "skipped": skipped,
                              "notes": notes, "peers": {**peers, **missing}}
    from gpunet import parallel

    top = opts.threads or parallel.available_cores()
    counts = sorted({1, top})
    with _blas_limit(None if opts.scaling else opts.threads):
        threads = top if opts.scaling else (opts.threads or diagnostics.blas_threads())
        record["environment"] = report.environment()
        record["settings"] = {"backend": backend.current(), "kernels": list(opts.kernels) if on_gpu else ["numpy"],
                              "repeat": opts.repeat, "warmup": opts.warmup, "threads": threads,
                              "peers": opts.peers, "peer_threads": opts.peer_threads,
                              "cpu_time": opts.cpu_time, "seed": opts.seed, "scaling": opts.scaling}
        for w in workloads:
            if progress:
                progress(f"timing {w.name} ...")
            peer_threads = opts.peer_threads or threads
            entries = (_gpunet_entries(w.name, opts, on_gpu)
                       + _peer_entries(w.name, opts, peers, on_gpu, peer_threads))
            if opts.scaling:
                entries = _thread_variants(entries + ([] if on_gpu else [_machine_entry()]), counts)
            runs = _time(entries, w.flops, opts)
            timed = [r for r in runs if r["implementation"] == "gpunet" and "ms" in r]
            best = min(timed, key=lambda r: r["ms"]["median"])["label"] if timed else None
            record["workloads"].append({"name": w.name, "kind": w.kind, "description": w.description,
                                        "shapes": w.shapes, "flops": w.flops, "runs": runs, "best": best,
                                        "ratios": _ratios(runs)})
            if opts.scaling:
                record["workloads"][-1]["scaling"] = _speedups(runs, counts)
    if opts.peers and missing:
        record["notes"].append("peers not compared: " + "; ".join(f"{k} {v}" for k, v in missing.items()))
    return record


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
