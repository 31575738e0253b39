"""Timing one step: warmup, calibration, repeated samples, median and spread.

On a GPU the clock is read only after ``sync()`` (``cupy.cuda.Device().synchronize()``), so a
sample covers the kernels it launched, not just their launch. Several implementations of one
workload are timed interleaved (round-robin samples), so load from other processes hits all
of them alike. Fast steps run several times per
sample (``calls`` per sample, chosen so a sample lasts about ``min_sample_s``) so that the clock's
resolution and Python's call overhead do not dominate; times are reported per step.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass


def no_sync() -> None:
    """The CPU needs no synchronization."""


def cupy_sync() -> None:
    """Wait for every kernel queued on the current CUDA device."""
    import cupy

    cupy.cuda.Device().synchronize()


@dataclass
class Timing:
    """Per-step times in milliseconds over ``repeat`` samples."""

    median: float
    q1: float
    q3: float
    min: float
    max: float
    repeat: int
    calls_per_sample: int
    samples: list[float]

    @property
    def iqr(self) -> float:
        return self.q3 - self.q1

    def as_dict(self) -> dict[str, object]:
        return {**asdict(self), "iqr": self.iqr}


def summarize(samples: list[float], calls: int = 1) -> Timing:
    """Median, quartiles and range of per-step ``samples`` (ms)."""
    if not samples:
        raise ValueError("summarize: no samples")
    ordered = sorted(samples)
    if len(ordered) > 1:
        q1, _, q3 = statistics.quantiles(ordered, n=4, method="inclusive")
    else:
        q1 = q3 = ordered[0]
    return Timing(median=statistics.median(ordered), q1=q1, q3=q3, min=ordered[0], max=ordered[-1],
                  repeat=len(ordered), calls_per_sample=calls, samples=list(samples))


def calibrate(step: Callable[[], object], warmup: int, sync: Callable[[], None] = no_sync,
              min_sample_s: float = 0.002, max_calls: int = 1000) -> int:
    """Run ``step`` ``warmup`` times, time one more call; return the calls per sample to use."""
    if warmup < 0:
        raise ValueError(f"calibrate: expected warmup >= 0, got {warmup}")
    for _ in range(warmup):
        step()
    sync()
    start = time.perf_counter()
    step()
    sync()
    first = time.perf_counter() - start
    return max(1, min(max_calls, math.ceil(min_sample_s / max(first, 1e-9))))


def sample(step: Callable[[], object], calls: int, sync: Callable[[], None] = no_sync) -> float:
    """One sample: milliseconds per call over ``calls`` back-to-back calls."""
    sync()
    start = time.perf_counter()
    for _ in range(calls):
        step()
    sync()
    return (time.perf_counter() - start) * 1e3 / calls


def measure(step: Callable[[], object], repeat: int, warmup: int, sync: Callable[[], None] = no_sync,
            min_sample_s: float = 0.002, max_calls: int = 1000) -> Timing:
    """Run ``step`` ``warmup`` times, then time ``repeat`` samples of it (ms per step)."""
    if repeat < 1:
        raise ValueError(f"measure: expected repeat >= 1, got {repeat}")
    calls = calibrate(step, warmup, sync, min_sample_s, max_calls)
    return summarize([sample(step, calls, sync) for _ in range(repeat)], calls)


def sample_clocks(step: Callable[[], object], calls: int, sync: Callable[[], None] = no_sync
                  ) -> tuple[float, float]:
    """One sample on both clocks: (wall, process CPU) milliseconds per call over ``calls`` calls.

    The CPU clock (``time.process_time``) sums every thread of this process, so it is the
    steadier measure of the work done on a busy machine, and equals the wall time with one
    thread on an idle core. It includes the ``sync()`` wait (a GPU sync spins a CPU core).
    """
    sync()
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(calls):
        step()
    sync()
    return (time.perf_counter() - wall) * 1e3 / calls, (time.process_time() - cpu) * 1e3 / calls


def measure_interleaved(steps: list[tuple[Callable[[], object], Callable[[], None], int]], repeat: int
                        ) -> list[Timing]:
    """Time calibrated ``(step, sync, calls)`` triples round-robin, ``repeat`` rounds (wall clock).

    Interleaving gives every implementation the same share of whatever else the machine is
    doing, so their ratio stays fair on a busy machine (a drift hits all of them alike).
    """
    return [wall for wall, _ in measure_clocks(steps, repeat, cpu_time=False)]


def measure_clocks(steps: list[tuple[Callable[[], object], Callable[[], None], int]], repeat: int,
                   cpu_time: bool = True) -> list[tuple[Timing, Timing | None]]:
    """:func:`measure_interleaved` on the wall clock and, with ``cpu_time``, on the process CPU
    clock from the same samples: one ``(wall, cpu or None)`` pair per step."""
    if repeat < 1:
        raise ValueError(f"measure_interleaved: expected repeat >= 1, got {repeat}")
    walls: list[list[float]] = [[] for _ in steps]
    cpus: list[list[float]] = [[] for _ in steps]
    for _ in range(repeat):
        for k, (step, sync, calls) in enumerate(steps):
            if cpu_time:
                wall, cpu = sample_clocks(step, calls, sync)
                cpus[k].append(cpu)
            else:
                wall = sample(step, calls, sync)
            walls[k].append(wall)
    return [(summarize(w, calls), summarize(c, calls) if cpu_time else None)
            for w, c, (_, _, calls) in zip(walls, cpus, steps)]
