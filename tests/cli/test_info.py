"""``gpunet info``."""

from __future__ import annotations

import json


def test_info_text_names_backend_and_reason(run_cli) -> None:
    outcome = run_cli("info")
    assert outcome.code == 0, outcome
    assert "backend" in outcome.stdout and "gpu_reason" in outcome.stdout


def test_info_json_has_the_facts(run_cli) -> None:
    outcome = run_cli("info", "--json")
    assert outcome.code == 0, outcome
    facts = json.loads(outcome.stdout)
    for key in ("gpunet", "python", "numpy", "cpu_cores", "blas", "gpu_usable", "gpu_reason", "backend",
                "kernels"):
        assert key in facts
    assert set(facts["kernels"]) == {"raw", "numba", "cupy"}
    if not facts["gpu_usable"]:
        assert facts["backend"] == "numpy" and facts["gpu_reason"]


def test_info_rejects_arguments(run_cli) -> None:
    assert run_cli("info", "extra").code == 2
