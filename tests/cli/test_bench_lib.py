"""The library side of ``gpunet bench``: analytic FLOPs, timing statistics, shared inputs."""

from __future__ import annotations

import numpy
import pytest

from gpunet.bench import WORKLOADS, flops, make_inputs
from gpunet.bench.timing import measure, measure_interleaved, no_sync, summarize
from gpunet.models.cnn import LeNet

# LeNet-5 per image: conv1 6x28x28 outputs of 25 taps, conv2 16x10x10 of 150, fc 400-120-84-10
LENET_MACS = {"conv1": 6 * 28 * 28 * 25, "conv2": 16 * 10 * 10 * 150, "fc": 400 * 120 + 120 * 84 + 84 * 10}


def test_lenet_flops_by_hand() -> None:
    params = LeNet(num_classes=10, in_channels=1, input_size=32).num_parameters()
    assert params == 61706  # the well-known LeNet-5 count
    by_hand = 2 * (2 * LENET_MACS["conv1"] + 3 * LENET_MACS["conv2"] + 3 * LENET_MACS["fc"]) + 2 * params
    assert flops.lenet_step(1, 1, 32, 10) == by_hand
    assert WORKLOADS["lenet"].flops == 2 * 64 * (2 * LENET_MACS["conv1"] + 3 * LENET_MACS["conv2"]
                                                 + 3 * LENET_MACS["fc"]) + 2 * params


def test_mlp_and_recurrent_flops_by_hand() -> None:
    # 2 -> 3 -> 4 on 5 rows: first layer no input gradient
    assert flops.mlp_step(5, [2, 3, 4]) == 2 * 5 * (2 * 6 + 3 * 12) + 2 * (6 + 3 + 12 + 4)
    # one LSTM layer T=2, B=1, I=1, H=1 (4 gates): projection 2*2*4 twice (forward, weight grad);
    # recurrence 2*4 per step: forward and weight grad at both steps, state grad at the second only
    assert flops.recurrent("lstm", 2, 1, 1, 1, input_grad=False) == 16 * 2 + 8 * 5


def test_flops_agree_with_torch_flop_counter() -> None:
    """PyTorch counts the GEMM/conv FLOPs it runs; ours add the SGD update (2 per parameter).
    (Its CPU LSTM is one fused op the counter cannot see, so LSTM is checked by hand above.)"""
    pytest.importorskip("torch")
    from torch.utils.flop_counter import FlopCounterMode

    from gpunet.bench import peers_torch

    for name in ("lenet", "mlp", "rnn", "gru", "conv2d"):
        case = peers_torch.build(name, threads=1)
        with FlopCounterMode(display=False) as counter:
            case.step()
        w = WORKLOADS[name]
        params = 0 if w.kind == "kernel" else sum(p.numel() for p in peers_torch._model(name).parameters())
        assert counter.get_total_flops() + 2 * params == w.flops, name


def test_summarize_quartiles_and_range() -> None:
    t = summarize([5.0, 1.0, 3.0, 2.0, 4.0], calls=3)
    assert (t.median, t.q1, t.q3, t.min, t.max, t.iqr) == (3.0, 2.0, 4.0, 1.0, 5.0, 2.0)
    assert t.repeat == 5 and t.calls_per_sample == 3 and t.as_dict()["iqr"] == 2.0
    with pytest.raises(ValueError):
        summarize([])


def test_measure_counts_calls_and_syncs() -> None:
    calls, syncs = [], []
    t = measure(lambda: calls.append(1), repeat=4, warmup=2, sync=lambda: syncs.append(1), max_calls=5)
    assert t.repeat == 4 and len(t.samples) == 4 and 1 <= t.calls_per_sample <= 5
    assert len(calls) == 2 + 1 + 4 * t.calls_per_sample
    assert len(syncs) >= 2 * 4  # before and after every sample
    with pytest.raises(ValueError):
        measure(lambda: None, repeat=0, warmup=0)


def test_inputs_are_identical_for_every_implementation() -> None:
    for name in WORKLOADS:
        a, b = make_inputs(name), make_inputs(name)
        assert a.keys() == b.keys()
        for key in a:
            numpy.testing.assert_array_equal(a[key], b[key])
            assert a[key].dtype in (numpy.float32, numpy.int64)


def test_interleaved_timing_alternates_implementations() -> None:
    order: list[str] = []
    steps = [(lambda: order.append("a"), no_sync, 2), (lambda: order.append("b"), no_sync, 1)]
    first, second = measure_interleaved(steps, repeat=3)
    assert order == ["a", "a", "b"] * 3
    assert (first.repeat, first.calls_per_sample, second.calls_per_sample) == (3, 2, 1)


def test_a_failing_peer_is_recorded_and_gpunet_still_timed() -> None:
    from gpunet.bench.cases import Case
    from gpunet.bench.report import format_table
    from gpunet.bench.runner import Options, _Entry, _ratios, _time

    def broken() -> None:
        raise RuntimeError("peer exploded")

    entries = [_Entry({"implementation": "gpunet", "label": "gpunet numpy"}, Case(lambda: None)),
               _Entry({"implementation": "torch", "label": "torch x cpu"}, Case(broken))]
    ours, theirs = _time(entries, 1000, Options(repeat=2, warmup=0))
    assert ours["ms"]["repeat"] == 2 and "error" not in ours
    assert theirs["error"] == "RuntimeError: peer exploded" and "ms" not in theirs
    assert _ratios([ours, theirs]) == []
    record = {"settings": {"backend": "numpy", "kernels": ["numpy"], "threads": 1, "repeat": 2, "warmup": 0},
              "workloads": [{"name": "w", "description": "d", "flops": 1000, "runs": [ours, theirs],
                             "best": "gpunet numpy", "ratios": []}], "skipped": [], "notes": []}
    assert "peer exploded" in format_table(record)


def test_measure_clocks_gives_wall_and_cpu_from_the_same_samples() -> None:
    from gpunet.bench.timing import measure_clocks

    steps = [(lambda: sum(range(1000)), no_sync, 3), (lambda: None, no_sync, 1)]
    (wall, cpu), (wall2, cpu2) = measure_clocks(steps, repeat=4)
    assert cpu is not None and cpu2 is not None
    assert (wall.repeat, cpu.repeat, cpu.calls_per_sample, cpu2.calls_per_sample) == (4, 4, 3, 1)
    assert all(v >= 0 for v in cpu.samples)
    ((_, none),) = measure_clocks(steps[:1], repeat=1, cpu_time=False)
    assert none is None
    with pytest.raises(ValueError):
        measure_clocks(steps, repeat=0)


def test_library_layering() -> None:
    """Nothing outside the CLI imports the CLI; only the CLI (and the bench package) imports bench."""
    import re
    from pathlib import Path

    import gpunet

    root = Path(gpunet.__file__).parent
    cli = re.compile(r"^\s*(from gpunet\.cli\b|import gpunet\.cli\b|from gpunet import .*\bcli\b)", re.M)
    bench = re.compile(r"^\s*(from gpunet\.bench\b|import gpunet\.bench\b|from gpunet import .*\bbench\b)", re.M)
    offenders = []
    for path in root.rglob("*.py"):
        part = path.relative_to(root).parts[0]
        text = path.read_text()
        if part != "cli" and cli.search(text):
            offenders.append(f"{path.relative_to(root)} imports the CLI")
        if part not in ("cli", "bench") and bench.search(text):
            offenders.append(f"{path.relative_to(root)} imports gpunet.bench")
    assert offenders == []
