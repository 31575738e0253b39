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


def test_info_json_is_the_diagnostics_plus_the_kernel_table(run_cli) -> None:
    from gpunet import diagnostics

    facts = json.loads(run_cli("info", "--json").stdout)
    expected = diagnostics.facts()
    assert list(facts) == [*expected, "kernels"]
    for key in ("gpunet", "python", "numpy", "cpu_cores", "blas", "numba", "gpu_usable", "backend"):
        assert facts[key] == expected[key], key


def test_diagnostics_helpers() -> None:
    from gpunet import diagnostics

    assert diagnostics.blas_threads() >= 1 and diagnostics.cpu_cores() >= 1
    assert isinstance(diagnostics.blas_name(), str) and diagnostics.blas_name()
    assert isinstance(diagnostics.cpu_model(), str)
    load = diagnostics.load_average()
    assert load is None or (len(load) == 3 and all(v >= 0 for v in load))
    version = diagnostics.numba_version()
    assert version is None or version[0].isdigit()


def test_info_text_lists_every_fact(run_cli) -> None:
    outcome = run_cli("info")
    facts = json.loads(run_cli("info", "--json").stdout)
    names = [line.split()[0].rstrip(":") for line in outcome.stdout.splitlines() if not line.startswith(" ")]
    assert names == list(facts)
