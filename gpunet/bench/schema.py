"""The ``gpunet bench --json`` record (schema ``gpunet-bench/1``): a structural check.

Every file in ``bench/results/`` passes :func:`validate`. Keys marked optional were added after
the first records (``cpu_ms``, ``settings.cpu_time``/``peer_threads``, ``environment.machine``);
a statistic is ``null`` only in a record converted from a script that kept medians alone.
"""

from __future__ import annotations

from typing import Any

SCHEMA = "gpunet-bench/1"
TOP = ("schema", "created", "command", "settings", "environment", "workloads", "skipped", "notes", "peers")
SETTINGS = ("backend", "kernels", "repeat", "warmup", "threads", "peers", "seed")
ENVIRONMENT = ("gpunet", "python", "numpy", "blas", "blas_threads", "cpu", "cpu_count", "platform", "backend",
               "backend_reason", "env", "gpu", "load_average")
WORKLOAD = ("name", "kind", "description", "shapes", "flops", "runs", "best", "ratios")
TIMING = ("median", "q1", "q3", "iqr", "min", "max", "repeat", "calls_per_sample", "samples")
STATS = ("q1", "q3", "iqr", "min", "max")


def _missing(where: str, obj: Any, keys: tuple[str, ...]) -> list[str]:
    if not isinstance(obj, dict):
        return [f"{where}: expected an object"]
    return [f"{where}: missing {key!r}" for key in keys if key not in obj]


def _timing(where: str, ms: Any) -> list[str]:
    problems = _missing(where, ms, TIMING)
    if problems:
        return problems
    if not isinstance(ms["median"], (int, float)) or ms["median"] <= 0:
        problems.append(f"{where}.median: expected a positive number")
    if ms["samples"]:
        if len(ms["samples"]) != ms["repeat"]:
            problems.append(f"{where}: {len(ms['samples'])} samples, repeat {ms['repeat']}")
        if any(ms[k] is None for k in STATS):
            problems.append(f"{where}: null statistics next to samples")
    return problems


def _run(where: str, run: Any) -> list[str]:
    problems = _missing(where, run, ("implementation", "label"))
    if problems or "error" in run:
        return problems
    if run.get("ms") is None and run.get("cpu_ms") is None:
        return [f"{where}: neither 'ms' nor 'cpu_ms' nor 'error'"]
    for key in ("ms", "cpu_ms"):
        if run.get(key) is not None:
            problems += _timing(f"{where}.{key}", run[key])
    if "gflops" not in run:
        problems.append(f"{where}: missing 'gflops'")
    return problems


def validate(record: Any) -> list[str]:
    """Problems that keep ``record`` from being a ``gpunet-bench/1`` record (empty when it is one)."""
    problems = _missing("record", record, TOP)
    if problems:
        return problems
    if record["schema"] != SCHEMA:
        problems.append(f"schema: expected {SCHEMA!r}, got {record['schema']!r}")
    problems += _missing("settings", record["settings"], SETTINGS)
    problems += _missing("environment", record["environment"], ENVIRONMENT)
    for i, w in enumerate(record["workloads"]):
        where = f"workloads[{i}]"
        found = _missing(where, w, WORKLOAD)
        problems += found
        if found:
            continue
        for j, run in enumerate(w["runs"]):
            problems += _run(f"{where}.runs[{j}]", run)
        labels = {r.get("label") for r in w["runs"]}
        for k, ratio in enumerate(w["ratios"]):
            problems += _missing(f"{where}.ratios[{k}]", ratio, ("gpunet", "peer"))
            if not {ratio.get("gpunet"), ratio.get("peer")} <= labels:
                problems.append(f"{where}.ratios[{k}]: names a label that has no run")
    return problems
