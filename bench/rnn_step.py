"""Training-step benchmark of a 2-layer tanh RNN: gpunet vs PyTorch CPU in the same run.

Workload: T=50, B=32, input 32, hidden 128, 2 layers; loss = MSE of a linear head on the last
layer's final state; one SGD step (forward, backward, update). Prints the median wall-clock and
process-CPU ms/step of each framework (steps alternate between them) and the ratios. PyTorch is
optional (skipped when not importable). For a like-for-like single-core comparison run
``OPENBLAS_NUM_THREADS=1 python bench/rnn_step.py --threads 1``.

    python bench/rnn_step.py [--steps 50] [--threads N] [--json out.json]

OpenBLAS tuning variables set on some machines (``OPENBLAS_CORETYPE``, ``OPENBLAS_L2_SIZE``)
slow NumPy's small GEMMs; to measure without them run
``env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/rnn_step.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Callable

import numpy

T, B, I, H, LAYERS = 50, 32, 32, 128, 2


def interleaved_ms(steps: dict[str, Callable[[], None]], rounds: int, warmup: int = 5
                   ) -> dict[str, dict[str, float]]:
    """Median wall and process-CPU ms per call of each step, timed in alternation.

    Alternating makes load changes hit every framework alike; on a busy machine the CPU time
    (all threads of this process) is the steadier measure of the work done.
    """
    for step in steps.values():
        for _ in range(warmup):
            step()
    times: dict[str, dict[str, list[float]]] = {name: {"wall": [], "cpu": []} for name in steps}
    for _ in range(rounds):
        for name, step in steps.items():
            wall, cpu = time.perf_counter(), time.process_time()
            step()
            times[name]["cpu"].append((time.process_time() - cpu) * 1e3)
            times[name]["wall"].append((time.perf_counter() - wall) * 1e3)
    return {name: {kind: statistics.median(v) for kind, v in t.items()} for name, t in times.items()}


def data() -> tuple[numpy.ndarray, numpy.ndarray]:
    rng = numpy.random.default_rng(0)
    return rng.standard_normal((T, B, I)).astype("float32"), rng.standard_normal((B, 1)).astype("float32")


def gpunet_step() -> Callable[[], None]:
    import gpunet
    from gpunet import functional as F
    from gpunet import nn
    from gpunet.autograd import Tensor
    from gpunet.optim import SGD

    gpunet.use("numpy", quiet=True)
    x, y = data()
    rnn, head = nn.RNN(I, H, num_layers=LAYERS), nn.Linear(H, 1)
    opt = SGD(rnn.parameters() + head.parameters(), lr=0.01)
    xt, yt = Tensor(x), Tensor(y)

    def step() -> None:
        _, h_n = rnn(xt)
        loss = F.mse_loss(head(h_n[LAYERS - 1]), yt)
        opt.zero_grad()
        loss.backward()
        opt.step()

    return step


def torch_step() -> Callable[[], None] | None:
    try:
        import torch
    except ImportError:
        return None
    x, y = data()
    rnn, head = torch.nn.RNN(I, H, num_layers=LAYERS), torch.nn.Linear(H, 1)
    opt = torch.optim.SGD(list(rnn.parameters()) + list(head.parameters()), lr=0.01)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)

    def step() -> None:
        _, h_n = rnn(xt)
        loss = torch.nn.functional.mse_loss(head(h_n[LAYERS - 1]), yt)
        opt.zero_grad()
        loss.backward()
        opt.step()

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=50, help="timed steps per framework")
    parser.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch's default)")
    parser.add_argument("--json", default=None, help="also write the results to this JSON file")
    args = parser.parse_args()
    env = {k: os.environ[k] for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS",
                                      "OMP_NUM_THREADS") if k in os.environ}
    print(f"2-layer tanh RNN, T={T} B={B} I={I} H={H}, SGD step; env {env or '{}'}")
    steps = {f"gpunet (numpy {numpy.__version__})": gpunet_step()}
    peer = torch_step()
    if peer is None:
        print("torch: not installed, peer skipped")
    else:
        import torch

        if args.threads:
            torch.set_num_threads(args.threads)
        steps[f"torch {torch.__version__} ({torch.get_num_threads()} threads)"] = peer
    result = interleaved_ms(steps, args.steps)
    for name, ms in result.items():
        print(f"{name}: {ms['wall']:8.2f} ms/step wall, {ms['cpu']:8.2f} ms/step CPU (medians of {args.steps})")
    if len(result) == 2:
        ours, theirs = result.values()
        for kind in ("wall", "cpu"):
            ratio = theirs[kind] / ours[kind]
            print(f"ratio torch/gpunet ({kind}): {ratio:.2f}x ({'gpunet' if ratio > 1 else 'torch'} faster)")
    if args.json:
        record = {"workload": {"T": T, "B": B, "I": I, "H": H, "layers": LAYERS}, "env": env,
                  "steps": args.steps, "median_ms": result, "load_average": os.getloadavg()}
        with open(args.json, "w") as fh:
            json.dump(record, fh, indent=2)


if __name__ == "__main__":
    main()
