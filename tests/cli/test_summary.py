"""``gpunet summary``."""

from __future__ import annotations

import pytest


def test_summary_mlp_counts_parameters_and_layers(run_cli) -> None:
    outcome = run_cli("summary", "mlp")
    assert outcome.code == 0, outcome
    # credit data: 2 inputs -> 16 -> 16 -> 1
    params = (2 * 16 + 16) + (16 * 16 + 16) + (16 * 1 + 1)
    assert f"total parameters: {params:,}" in outcome.stdout
    assert "layers (input layer not counted): 3" in outcome.stdout and "-> deep" in outcome.stdout


def test_summary_linear_is_not_deep(run_cli) -> None:
    outcome = run_cli("summary", "linear")
    assert outcome.code == 0, outcome
    assert "total parameters: 3" in outcome.stdout and "not deep" in outcome.stdout


def test_summary_lenet_shows_conv_layers(run_cli) -> None:
    pytest.importorskip("sklearn")
    outcome = run_cli("summary", "lenet")
    assert outcome.code == 0, outcome
    assert "Conv2d" in outcome.stdout and "conv1" in outcome.stdout


def test_summary_unknown_model_is_one_line(run_cli) -> None:
    outcome = run_cli("summary", "transformer")
    assert outcome.code == 2 and len(outcome.stderr.splitlines()) == 1
    assert outcome.stderr.startswith("gpunet: error: summary: ") and "unknown model 'transformer'" in outcome.stderr


def test_summary_needs_a_model(run_cli) -> None:
    outcome = run_cli("summary")
    assert outcome.code == 2 and "Missing argument" in outcome.stderr
