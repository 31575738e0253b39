"""``bench/``: one harness (no scripts) and every recorded result in the ``gpunet bench --json`` schema."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from gpunet.bench import SCHEMA, validate
from gpunet.bench.report import format_table

BENCH = Path(__file__).resolve().parents[2] / "bench"
RESULTS = sorted((BENCH / "results").glob("*.json"))


def test_bench_folder_holds_only_docs_results_and_the_gpu_check() -> None:
    """No second harness: besides docs and results only ``gpu_check.sh``, which drives ``gpunet bench``."""
    assert RESULTS
    extra = [p.name for p in BENCH.iterdir() if p.name != "results" and p.suffix != ".md"]
    assert extra in ([], ["gpu_check.sh"])
    assert all(p.suffix == ".json" or (p.is_dir() and p.name.startswith("gpu-"))
               for p in (BENCH / "results").iterdir())


@pytest.mark.parametrize("path", RESULTS, ids=[p.name for p in RESULTS])
def test_every_recorded_result_is_a_bench_record(path: Path) -> None:
    record = json.loads(path.read_text())
    assert record["schema"] == SCHEMA
    assert validate(record) == []
    table = format_table(record)
    assert all(w["name"] in table for w in record["workloads"])


def test_validate_names_what_is_wrong() -> None:
    record = json.loads(RESULTS[0].read_text())
    assert validate({"benchmark": "lenet_step"})[0] == "record: missing 'schema'"
    broken = copy.deepcopy(record)
    broken["schema"] = "other/1"
    del broken["settings"]["repeat"]
    run = broken["workloads"][0]["runs"][0]
    run["ms"]["samples"] = run["ms"]["samples"][:1]
    problems = validate(broken)
    assert any(p.startswith("schema:") for p in problems)
    assert "settings: missing 'repeat'" in problems
    assert any("samples, repeat" in p for p in problems)
    run.pop("ms")
    assert any("neither 'ms' nor 'cpu_ms'" in p for p in validate(broken))
