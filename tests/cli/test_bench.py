"""``gpunet bench``: structure of the table and the JSON record (never the timings themselves)."""

from __future__ import annotations

import json
import sys

import pytest

from gpunet.bench import WORKLOADS, Options, peers_torch, run
from gpunet.bench.report import format_table

FAST = ["mlp", "conv2d", "rnn_step", "lstm_step", "gru_step"]


def _torch() -> bool:
    return peers_torch.available()[0]


def test_list_names_every_workload(run_cli) -> None:
    outcome = run_cli("bench", "--list")
    assert outcome.code == 0, outcome
    listed = [line.split()[0] for line in outcome.stdout.splitlines()]
    assert listed == list(WORKLOADS)
    assert all("MFLOP/step" in line for line in outcome.stdout.splitlines())


def test_json_record_structure(run_cli, tmp_path) -> None:
    path = tmp_path / "out" / "bench.json"
    outcome = run_cli("bench", *FAST, "--backend", "numpy", "--repeat", "2", "--warmup", "0", "--json", path)
    assert outcome.code == 0, outcome
    record = json.loads(path.read_text())
    assert record["schema"] == "gpunet-bench/1"
    assert record["command"].startswith("gpunet bench mlp conv2d")
    assert record["settings"]["backend"] == "numpy" and record["settings"]["repeat"] == 2
    env = record["environment"]
    for key in ("gpunet", "numpy", "blas", "blas_threads", "cpu", "python", "env", "load_average"):
        assert key in env
    assert [w["name"] for w in record["workloads"]] == FAST
    for w in record["workloads"]:
        assert w["flops"] == WORKLOADS[w["name"]].flops > 0
        (run,) = w["runs"]
        assert run["implementation"] == "gpunet" and run["kernels"] == "numpy"
        ms = run["ms"]
        assert len(ms["samples"]) == 2 and ms["min"] <= ms["q1"] <= ms["median"] <= ms["q3"] <= ms["max"]
        assert ms["iqr"] == pytest.approx(ms["q3"] - ms["q1"])
        assert run["gflops"] == pytest.approx(w["flops"] / (ms["median"] * 1e6))
        assert w["ratios"] == [] and w["best"] == "gpunet numpy"
    assert "mlp" in outcome.stdout and "GFLOP/s" in outcome.stdout


def test_peers_give_ratios_when_torch_is_importable(run_cli, tmp_path) -> None:
    path = tmp_path / "peers.json"
    outcome = run_cli("bench", "mlp", "gru_step", "--backend", "numpy", "--repeat", "1", "--warmup", "0",
                      "--peers", "--threads", "1", "--json", path)
    assert outcome.code == 0, outcome
    record = json.loads(path.read_text())
    assert record["settings"]["threads"] == 1
    assert set(record["peers"]) == {"torch", "chainer", "dezero"}
    for w in record["workloads"]:
        peers = [r for r in w["runs"] if r["implementation"] == "torch"]
        if not _torch():
            assert peers == [] and w["ratios"] == []
            continue
        (run,) = peers
        assert run["threads"] == 1 and run["device"] == "cpu"
        (ratio,) = w["ratios"]
        assert ratio["gpunet"] == "gpunet numpy" and ratio["peer"] == run["label"]
        assert ratio["ratio"] == pytest.approx(w["runs"][0]["ms"]["median"] / run["ms"]["median"])
        assert f"{ratio['ratio']:.3g}x" in outcome.stdout
        assert ratio["paired_ratio"] > 0
        assert ratio["min_ratio"] == pytest.approx(w["runs"][0]["ms"]["min"] / run["ms"]["min"])
    if not _torch():
        assert any("torch not importable" in n for n in record["notes"])


def test_kernels_on_numpy_say_only_the_numpy_path_exists(run_cli) -> None:
    outcome = run_cli("bench", "rnn_step", "--backend", "numpy", "--repeat", "1", "--warmup", "0",
                      "--kernels", "raw", "--kernels", "numba")
    assert outcome.code == 0, outcome
    assert "only the NumPy path" in outcome.stdout


def test_unknown_workload_is_a_usage_error(run_cli) -> None:
    outcome = run_cli("bench", "mlp", "resnet50")
    assert outcome.code == 2
    assert "unknown workload 'resnet50'" in outcome.stderr and "lenet" in outcome.stderr


@pytest.mark.parametrize("args", [["--repeat", "0"], ["--warmup", "-1"], ["--kernels", "opencl"],
                                  ["--threads", "0"], ["--backend", "tpu"]])
def test_bad_options_are_usage_errors(run_cli, args: list[str]) -> None:
    assert run_cli("bench", "mlp", *args).code == 2


def test_missing_model_fails_with_one_line(run_cli, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "gpunet.models.cnn", None)  # as if LeNet were not written yet
    line = run_cli("bench", "lenet", "--backend", "numpy", "--repeat", "1", "--warmup", "0").error_line()
    assert "workload 'lenet' needs LeNet" in line


def test_missing_recurrent_layer_fails_with_one_line(run_cli, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "gpunet.nn.recurrent", None)
    line = run_cli("bench", "gru", "--backend", "numpy", "--repeat", "1", "--warmup", "0").error_line()
    assert "workload 'gru' needs the GRU layer" in line


def test_without_named_workloads_missing_ones_are_skipped(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "gpunet.models.cnn", None)
    record = run(["lenet", "rnn_step"], Options(repeat=1, warmup=0, strict=False))
    assert [w["name"] for w in record["workloads"]] == ["rnn_step"]
    (skipped,) = record["skipped"]
    assert skipped["workload"] == "lenet" and "needs LeNet" in skipped["reason"]
    assert "skipped: workload 'lenet' needs LeNet" in format_table(record)


def test_cupy_backend_without_a_gpu_is_one_line(run_cli) -> None:
    from gpunet import backend

    if backend.gpu_status()[0]:
        pytest.skip("a GPU is present: covered by test_bench_gpu")
    line = run_cli("bench", "mlp", "--backend", "cupy").error_line()
    assert "CuPy backend is not usable" in line


@pytest.mark.gpu
def test_kernels_side_by_side_on_gpu(run_cli, tmp_path) -> None:
    path = tmp_path / "gpu.json"
    outcome = run_cli("bench", "conv2d", "lstm_step", "mlp", "--backend", "cupy", "--repeat", "2", "--warmup", "1",
                      "--kernels", "raw", "--kernels", "numba", "--kernels", "cupy", "--json", path)
    assert outcome.code == 0, outcome
    record = json.loads(path.read_text())
    assert record["environment"]["gpu"]["name"]
    for w in record["workloads"]:
        assert [r["kernels"] for r in w["runs"]] == ["raw", "numba", "cupy"]
        assert all("ms" in r for r in w["runs"]), w["runs"]


def test_cpu_time_records_both_clocks(run_cli, tmp_path) -> None:
    from gpunet.bench import validate

    path = tmp_path / "cpu.json"
    outcome = run_cli("bench", "mlp", "rnn_step", "--backend", "numpy", "--repeat", "2", "--warmup", "0",
                      "--cpu-time", "--json", path)
    assert outcome.code == 0, outcome
    record = json.loads(path.read_text())
    assert validate(record) == []
    assert record["settings"]["cpu_time"] is True and record["settings"]["peer_threads"] is None
    assert "--cpu-time" in record["command"]
    for w in record["workloads"]:
        (run,) = w["runs"]
        wall, cpu = run["ms"], run["cpu_ms"]
        assert len(wall["samples"]) == len(cpu["samples"]) == 2 and cpu["calls_per_sample"] == wall["calls_per_sample"]
        assert cpu["min"] <= cpu["median"] <= cpu["max"] and cpu["median"] > 0
    assert outcome.stdout.count("CPU time") >= 3  # the header and one row per workload


def test_without_cpu_time_there_is_no_cpu_clock() -> None:
    record = run(["rnn_step"], Options(repeat=1, warmup=0))
    (run_,) = record["workloads"][0]["runs"]
    assert "cpu_ms" not in run_ and record["settings"]["cpu_time"] is False
    assert "CPU time" not in format_table(record)


def test_peer_threads_and_cpu_ratios(monkeypatch) -> None:
    """--peer-threads reaches the PyTorch peer independently of BLAS; --cpu-time adds CPU ratios."""
    from gpunet.bench import runner, validate
    from gpunet.bench.cases import Case

    seen: list[int] = []

    def fake_torch(name: str, threads: int, device: str = "cpu", seed: int = 0) -> Case:
        seen.append(threads)
        return Case(lambda: None, info={"implementation": "torch", "version": "0", "device": device,
                                        "threads": threads})

    monkeypatch.setattr(runner, "available_peers", lambda: ({"torch": "0"}, {}))
    monkeypatch.setattr(runner.peers_torch, "build", fake_torch)
    record = run(["rnn_step"], Options(repeat=2, warmup=0, peers=True, peer_threads=3, cpu_time=True))
    assert seen == [3] and record["settings"]["peer_threads"] == 3
    (w,) = record["workloads"]
    assert [r["implementation"] for r in w["runs"]] == ["gpunet", "torch"] and w["runs"][1]["threads"] == 3
    (ratio,) = w["ratios"]
    ours, theirs = w["runs"]
    assert ratio["cpu_ratio"] == pytest.approx(ours["cpu_ms"]["median"] / theirs["cpu_ms"]["median"])
    assert ratio["cpu_min_ratio"] == pytest.approx(ours["cpu_ms"]["min"] / theirs["cpu_ms"]["min"])
    assert "cpu_paired_ratio" in ratio and ratio["ratio"] > 0
    assert validate(record) == []
    assert f"{ratio['cpu_ratio']:.3g}x" in format_table(record)


def test_bad_peer_threads_is_a_usage_error(run_cli) -> None:
    assert run_cli("bench", "mlp", "--peer-threads", "0").code == 2
