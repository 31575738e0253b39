"""``gpunet train`` and ``gpunet evaluate``, including the bad-argument paths."""

from __future__ import annotations

import json
import sys

import pytest

from gpunet import io


def test_train_writes_checkpoint_and_json(run_cli, tmp_path) -> None:
    ckpt, report = tmp_path / "run.npz", tmp_path / "run.json"
    outcome = run_cli("train", "linear", "--epochs", "2", "--backend", "numpy", "--quiet",
                      "--checkpoint", ckpt, "--json", report)
    assert outcome.code == 0, outcome
    assert "linear: test accuracy" in outcome.stdout
    state = io.load(ckpt)
    assert state["recipe"] == "linear" and state["epoch"] == 2
    record = json.loads(report.read_text())
    assert record["model"] == "linear" and len(record["history"]) == 2


def test_resume_continues_to_more_epochs(run_cli, tmp_path) -> None:
    ckpt = tmp_path / "run.npz"
    args = ["train", "linear", "--backend", "numpy", "--quiet", "--checkpoint", ckpt, "--resume"]
    assert run_cli(*args, "--epochs", "1").code == 0
    outcome = run_cli(*args, "--epochs", "2")
    assert outcome.code == 0, outcome
    assert "resumed from" in outcome.stderr
    assert io.load(ckpt)["epoch"] == 2


def test_train_unknown_model_is_one_line(run_cli) -> None:
    outcome = run_cli("train", "resnet", "--backend", "numpy")
    assert outcome.code == 2 and len(outcome.stderr.splitlines()) == 1  # a bad argument: a usage error
    assert "unknown model 'resnet'" in outcome.stderr and "mlp" in outcome.stderr


def test_train_unknown_dataset_is_one_line(run_cli) -> None:
    outcome = run_cli("train", "mlp", "--dataset", "imagenet", "--backend", "numpy")
    assert outcome.code == 2 and len(outcome.stderr.splitlines()) == 1
    assert "unknown dataset 'imagenet'" in outcome.stderr


def test_resume_without_checkpoint_is_a_usage_error(run_cli) -> None:
    outcome = run_cli("train", "mlp", "--resume", "--backend", "numpy")
    assert outcome.code == 2
    assert "--resume needs --checkpoint" in outcome.stderr


@pytest.mark.parametrize("args", [["--epochs", "0"], ["--lr", "-1"], ["--optimizer", "rmsprop"],
                                  ["--backend", "tpu"], ["--kernels", "opencl"]])
def test_train_rejects_bad_options(run_cli, args: list[str]) -> None:
    outcome = run_cli("train", "mlp", *args)
    assert outcome.code == 2
    assert "Invalid value" in outcome.stderr


def test_train_perceptron_on_multiclass_data_is_a_usage_error(run_cli) -> None:
    pytest.importorskip("sklearn")
    outcome = run_cli("train", "perceptron", "--dataset", "digits", "--backend", "numpy")
    assert outcome.code == 2 and "model 'perceptron' takes the dataset(s) credit, xor" in outcome.stderr


def test_evaluate_reports_accuracy_and_confusion(run_cli, mlp_checkpoint) -> None:
    outcome = run_cli("evaluate", mlp_checkpoint, "--backend", "numpy", "--json")
    assert outcome.code == 0, outcome
    result = json.loads(outcome.stdout)
    assert result["recipe"] == "mlp" and 0.0 <= result["accuracy"] <= 1.0
    confusion = result["confusion"]
    assert len(confusion) == 2 and sum(map(sum, confusion)) > 0
    text = run_cli("evaluate", mlp_checkpoint, "--backend", "numpy")
    assert text.code == 0 and "accuracy" in text.stdout and "true\\pred" in text.stdout


def test_evaluate_missing_checkpoint_is_a_usage_error(run_cli, tmp_path) -> None:
    outcome = run_cli("evaluate", tmp_path / "nope.npz")
    assert outcome.code == 2
    assert "does not exist" in outcome.stderr


def test_evaluate_a_directory_is_a_usage_error(run_cli, tmp_path) -> None:
    assert run_cli("evaluate", tmp_path).code == 2


def test_evaluate_a_file_that_is_not_a_checkpoint_is_one_line(run_cli, tmp_path) -> None:
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip file at all")
    line = run_cli("evaluate", junk, "--backend", "numpy").error_line()
    assert "junk.npz" in line and ("corrupted" in line or "not a gpunet checkpoint" in line)


def test_evaluate_a_non_training_checkpoint_is_one_line(run_cli, tmp_path) -> None:
    other = io.save({"kind": "weights", "w": [1.0]}, tmp_path / "other.npz")
    line = run_cli("evaluate", other, "--backend", "numpy").error_line()
    assert "not a training checkpoint" in line


@pytest.mark.parametrize(("model", "dataset"), [("mlp", "dna"), ("lenet", "credit"), ("rnn", "xor")])
def test_model_that_does_not_fit_the_dataset_is_a_usage_error(run_cli, model: str, dataset: str) -> None:
    outcome = run_cli("train", model, "--dataset", dataset, "--backend", "numpy", "--epochs", "1")
    assert outcome.code == 2, outcome
    assert "Traceback" not in outcome.stderr
    assert f"model {model!r} takes the dataset(s) " in outcome.stderr and f"got {dataset!r}" in outcome.stderr


def test_data_dir_for_a_generated_dataset_is_a_usage_error(run_cli, tmp_path) -> None:
    outcome = run_cli("train", "mlp", "--data-dir", tmp_path, "--backend", "numpy")
    assert outcome.code == 2 and "dataset 'credit' reads no files" in outcome.stderr


def test_train_schedule_weight_decay_and_threads(run_cli, tmp_path) -> None:
    pytest.importorskip("threadpoolctl")
    ckpt = tmp_path / "run.npz"
    outcome = run_cli("train", "mlp", "--epochs", "2", "--backend", "numpy", "--quiet", "--threads", "1",
                      "--schedule", "cosine", "--weight-decay", "1e-4", "--checkpoint", ckpt)
    assert outcome.code == 0, outcome
    settings = io.load(ckpt)["settings"]
    assert settings["schedule"] == "cosine" and settings["weight_decay"] == pytest.approx(1e-4)


def test_train_bad_schedule_is_a_usage_error(run_cli) -> None:
    outcome = run_cli("train", "mlp", "--schedule", "linear-warmup", "--backend", "numpy")
    assert outcome.code == 2 and "--schedule" in outcome.stderr


def test_library_usage_errors_are_one_line_naming_the_option(run_cli) -> None:
    """The library raises UsageError(param_hint=...); the CLI shows it as one usage-error line."""
    outcome = run_cli("train", "perceptron", "--dataset", "digits", "--backend", "numpy")
    assert outcome.code == 2
    assert outcome.stderr == ("gpunet: error: train: Invalid value for --dataset: model 'perceptron' takes the "
                              "dataset(s) credit, xor; got 'digits' (see 'gpunet train --help')\n")
    summary = run_cli("summary", "mlp", "--dataset", "dna")
    assert summary.code == 2 and summary.stderr.startswith("gpunet: error: summary: Invalid value for --dataset: ")
    assert "model 'mlp' takes the dataset(s) credit, xor, digits, mnist; got 'dna'" in summary.stderr


def test_threads_without_threadpoolctl_is_a_usage_error(run_cli, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "threadpoolctl", None)
    outcome = run_cli("train", "linear", "--epochs", "1", "--backend", "numpy", "--quiet", "--threads", "1")
    assert outcome.code == 2
    assert outcome.stderr == ("gpunet: error: train: --threads needs threadpoolctl: pip install threadpoolctl "
                              "(see 'gpunet train --help')\n")
