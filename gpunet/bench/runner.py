"""Run a set of workloads on gpunet (one or more kernel implementations) and its peers."""

from __future__ import annotations

import contextlib
import datetime
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from gpunet.bench import cases, peers_other, peers_torch, report
from gpunet.bench.timing import measure
from gpunet.bench.workloads import WORKLOADS, WorkloadUnavailable, get_workload

NUMPY_ONLY = "the NumPy backend has only the NumPy path: --kernels applies to the CuPy backend (GPU)"


@dataclass
class Options:
    """How to run: timing repeats, kernel implementations (CuPy only), peers, BLAS/torch threads."""

    repeat: int = 20
    warmup: int = 3
    kernels: Sequence[str] = ("auto",)
    peers: bool = False
    threads: int | None = None
    seed: int = 0
    strict: bool = True  # an unavailable workload raises (else it is skipped with the reason)


@contextlib.contextmanager
def _blas_limit(threads: int | None) -> Iterator[None]:
    if threads is None:
        yield
        return
    try:
        from threadpoolctl import threadpool_limits
    except ImportError as exc:
        raise RuntimeError("--threads needs threadpoolctl: pip install threadpoolctl") from exc
    with threadpool_limits(limits=threads, user_api="blas"):
        yield


def _timed(case: cases.Case, label: str, flops: int, opts: Options) -> dict[str, Any]:
    timing = measure(case.step, opts.repeat, opts.warmup, case.sync)
    return {**case.info, "label": label, "ms": timing.as_dict(), "gflops": flops / (timing.median * 1e6)}


def _gpunet_runs(name: str, flops: int, opts: Options, on_gpu: bool) -> list[dict[str, Any]]:
    from gpunet import config

    runs = []
    for impl in (opts.kernels if on_gpu else ("numpy",)):
        label = f"gpunet cupy/{impl}" if on_gpu else "gpunet numpy"
        scope = config.set_kernels(impl) if on_gpu else contextlib.nullcontext()
        with scope:
            try:
                runs.append(_timed(cases.build(name, opts.seed), label, flops, opts))
            except WorkloadUnavailable:
                raise
            except RuntimeError as exc:  # a kernel implementation that cannot run here
                runs.append({"implementation": "gpunet", "kernels": impl, "label": label, "error": str(exc)})
    return runs


def _peer_runs(name: str, flops: int, opts: Options, peers: dict[str, str], on_gpu: bool,
               threads: int) -> list[dict[str, Any]]:
    runs = []
    if "torch" in peers:
        device = "cuda" if on_gpu and _torch_cuda() else "cpu"
        runs.append(_try_peer(lambda: peers_torch.build(name, threads, device, opts.seed),
                              f"torch {peers['torch']} {device}", flops, opts))
    for peer in peers_other.PEERS:
        if peer in peers:
            runs.append(_try_peer(lambda p=peer: peers_other.build(p, name, opts.seed),
                                  f"{peer} {peers[peer]} cpu", flops, opts))
    return [r for r in runs if r is not None]


def _torch_cuda() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def _try_peer(make: Callable[[], cases.Case | None], label: str, flops: int, opts: Options) -> dict[str, Any] | None:
    implementation = label.split()[0]
    try:
        case = make()
        return None if case is None else _timed(case, label, flops, opts)
    except Exception as exc:  # a peer's failure must not stop gpunet's own measurements
        return {"implementation": implementation, "label": label, "error": f"{type(exc).__name__}: {exc}"}


def _ratios(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    ours = [r for r in runs if r["implementation"] == "gpunet" and "ms" in r]
    theirs = [r for r in runs if r["implementation"] != "gpunet" and "ms" in r]
    return [{"gpunet": a["label"], "peer": b["label"], "ratio": a["ms"]["median"] / b["ms"]["median"]}
            for a in ours for b in theirs]


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
    record: dict[str, Any] = {"schema": report.SCHEMA, "created": _now(), "command": command,
                              "workloads": [], "skipped": skipped,
                              "notes": notes, "peers": {**peers, **missing}}
    with _blas_limit(opts.threads):
        threads = report.blas_threads()
        record["environment"] = report.environment()
        record["settings"] = {"backend": backend.current(), "kernels": list(opts.kernels) if on_gpu else ["numpy"],
                              "repeat": opts.repeat, "warmup": opts.warmup, "threads": threads,
                              "peers": opts.peers, "seed": opts.seed}
        for w in workloads:
            if progress:
                progress(f"timing {w.name} ...")
            runs = _gpunet_runs(w.name, w.flops, opts, on_gpu)
            runs += _peer_runs(w.name, w.flops, opts, peers, on_gpu, threads)
            timed = [r for r in runs if r["implementation"] == "gpunet" and "ms" in r]
            best = min(timed, key=lambda r: r["ms"]["median"])["label"] if timed else None
            record["workloads"].append({"name": w.name, "kind": w.kind, "description": w.description,
                                        "shapes": w.shapes, "flops": w.flops, "runs": runs, "best": best,
                                        "ratios": _ratios(runs)})
    if opts.peers and missing:
        record["notes"].append("peers not compared: " + "; ".join(f"{k} {v}" for k, v in missing.items()))
    return record


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
