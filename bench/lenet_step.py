"""LeNet-5 training step on the CPU: gpunet (NumPy) vs PyTorch CPU, same model and threads.

One step = forward, softmax cross-entropy, backward, SGD (lr 0.01) on a batch of 64 1x32x32
images. Prints the median ms/step over repeats and the ratio gpunet / torch. PyTorch is
optional: without it only gpunet is timed. Run from the repository root:

    python bench/lenet_step.py [--repeats 50] [--warmup 5] [--json out.json]

OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE, when set on a machine, can slow NumPy's BLAS; to time
without them: ``env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/lenet_step.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gpunet.bench.report import blas_threads  # noqa: E402

BATCH, SIZE, CLASSES, LR = 64, 32, 10, 0.01


def time_steps(steps: dict[str, Callable[[], None]], repeats: int, warmup: int,
               clock: Callable[[], float] = time.perf_counter) -> dict[str, list[float]]:
    """ms per step of each contender, interleaved step by step so that load from other processes
    on the machine hits all of them alike."""
    for step in steps.values():
        for _ in range(warmup):
            step()
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(repeats):
        for name, step in steps.items():
            start = clock()
            step()
            times[name].append((clock() - start) * 1e3)
    return times


def gpunet_step(x: numpy.ndarray, t: numpy.ndarray) -> Callable[[], None]:
    import gpunet
    from gpunet import functional as F
    from gpunet.models.cnn import LeNet
    from gpunet.optim import SGD

    gpunet.use("numpy")
    gpunet.manual_seed(0)
    model = LeNet()
    opt = SGD(model.parameters(), lr=LR)
    xs, ts = gpunet.tensor(x), gpunet.tensor(t)

    def step() -> None:
        loss = F.cross_entropy(model(xs), ts)
        opt.zero_grad()
        loss.backward()
        opt.step()

    return step


def torch_step(x: numpy.ndarray, t: numpy.ndarray, threads: int) -> Callable[[], None] | None:
    try:
        import torch
    except ImportError:
        return None
    from torch import nn

    torch.set_num_threads(threads)
    torch.manual_seed(0)

    class LeNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv1, self.conv2 = nn.Conv2d(1, 6, 5), nn.Conv2d(6, 16, 5)
            self.fc1, self.fc2, self.fc3 = nn.Linear(400, 120), nn.Linear(120, 84), nn.Linear(84, CLASSES)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = torch.max_pool2d(torch.relu(self.conv1(x)), 2)
            x = torch.max_pool2d(torch.relu(self.conv2(x)), 2).flatten(1)
            return self.fc3(torch.relu(self.fc2(torch.relu(self.fc1(x)))))

    model = LeNet()
    opt = torch.optim.SGD(model.parameters(), lr=LR)
    xs, ts = torch.from_numpy(x), torch.from_numpy(t)

    def step() -> None:
        loss = nn.functional.cross_entropy(model(xs), ts)
        opt.zero_grad()
        loss.backward()
        opt.step()

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--json", default=None, help="also write the results here")
    parser.add_argument("--threads", type=int, default=None,
                        help="BLAS threads for NumPy (threadpoolctl) and torch [default: NumPy's own]")
    parser.add_argument("--cpu-time", action="store_true",
                        help="time with the process CPU clock instead of the wall clock (for a busy "
                             "machine; meaningful with --threads 1)")
    args = parser.parse_args()
    if args.threads:
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=args.threads, user_api="blas")
    rng = numpy.random.default_rng(0)
    x = rng.random((BATCH, 1, SIZE, SIZE), dtype=numpy.float32)
    t = rng.integers(0, CLASSES, BATCH).astype(numpy.int64)
    threads = blas_threads()
    runs = {"gpunet": gpunet_step(x, t), "torch": torch_step(x, t, threads)}
    for name in [name for name, step in runs.items() if step is None]:
        print(f"{name:>7}: not installed, skipped")
        del runs[name]
    clock = time.process_time if args.cpu_time else time.perf_counter
    times = time_steps(runs, args.repeats, args.warmup, clock)  # type: ignore[arg-type]
    results = {name: statistics.median(values) for name, values in times.items()}
    for name, value in results.items():
        print(f"{name:>7}: {value:7.2f} ms/step (median of {args.repeats}, min {min(times[name]):.2f}"
              f"{', CPU time' if args.cpu_time else ''})")
    if "torch" in results:
        print(f"  ratio: {results['gpunet'] / results['torch']:.2f}x (gpunet / torch, {threads} threads)")
    if args.json:
        record = {"benchmark": "lenet_step", "batch": BATCH, "input": [1, SIZE, SIZE], "threads": threads,
                  "clock": "process_time" if args.cpu_time else "perf_counter",
                  "ms_per_step": results, "machine": platform.machine(), "python": platform.python_version(),
                  "numpy": numpy.__version__, "openblas_env": {k: v for k, v in os.environ.items()
                                                               if k.startswith("OPENBLAS")}}
        Path(args.json).write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
