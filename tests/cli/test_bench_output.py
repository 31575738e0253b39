"""``gpunet bench`` through the real command line (a fresh process): ``--json -`` puts only the JSON on
standard output, an unwritable ``--json`` is refused before anything is timed, the table's columns line up."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from gpunet.bench import machine as machine_ref
from gpunet.bench import validate
from gpunet.bench.report import HEADER

TINY = ["rnn_step", "gru_step", "--backend", "numpy", "--repeat", "2", "--warmup", "0"]


def bench(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GPUNET_QUIET": "1"}
    return subprocess.run([sys.executable, "-m", "gpunet.cli", "bench", *args], capture_output=True, text=True,
                          env=env, timeout=600)


def test_json_dash_writes_the_record_to_stdout_and_the_table_to_stderr(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "gpunet.cli", "bench", *TINY, "--json", "-"], capture_output=True,
                          text=True, env={**os.environ, "GPUNET_QUIET": "1"}, timeout=600, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    record = json.loads(done.stdout)  # standard output is the JSON and nothing else
    assert validate(record) == [] and [w["name"] for w in record["workloads"]] == ["rnn_step", "gru_step"]
    assert "GFLOP/s" in done.stderr and "timing rnn_step" in done.stderr
    assert list(tmp_path.iterdir()) == []  # no file named '-'


@pytest.mark.parametrize("where", ["file-as-folder", "folder"])
def test_unwritable_json_is_refused_before_any_timing(tmp_path: Path, where: str) -> None:
    blocker = tmp_path / "plain.txt"
    blocker.write_text("x")
    target = blocker / "out" / "b.json" if where == "file-as-folder" else tmp_path
    done = bench(*TINY, "--json", str(target))
    assert done.returncode == 2 and done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("gpunet: error: bench: "), done.stderr  # no "timing ..." line
    assert "--json" in lines[0]


def _right_edges(header: str) -> dict[str, int]:
    return {name: header.index(name) + len(name) for name in HEADER[2:]}


NUMBER = re.compile(r"^(-|[\d.,]+x?|[\d.]+\.\.[\d.]+)$")


def test_table_columns_line_up(tmp_path: Path) -> None:
    """Every timed row (wall and CPU time, 1 and 2 threads, gpunet and the PyTorch peer when importable,
    whose labels are the longest) ends each number at its header's right edge, and every label starts
    under ``implementation``."""
    peers = ["--peers"] if _torch() else []
    done = bench(*TINY, "--cpu-time", "--scaling", "--threads", "2", *peers)  # labels "... (2 threads)"
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    header = next(line for line in lines if line.startswith("workload"))
    assert re.split(r"\s{2,}", header) == list(HEADER)
    edges = list(_right_edges(header).values())
    label_at = header.index("implementation")
    rows = [line for line in lines[lines.index(header) + 1:]
            if line.startswith(" ") and NUMBER.match(line.split()[-1]) and ".." in line]
    assert len(rows) >= 8 * (2 if peers else 1), done.stdout  # 2 workloads x 2 thread counts x (wall + CPU)
    for row in rows:
        label = row[label_at:]
        assert row[:label_at].strip() == "" and (label[0] != " " or label.startswith("  CPU time ")), row
        tokens = list(re.finditer(r"\S+", row))
        numbers = []
        while tokens and NUMBER.match(tokens[-1].group()):  # the trailing numeric cells
            numbers.insert(0, tokens.pop())
        assert [m.end() for m in numbers] == edges[:len(numbers)], (row, header)
        assert len(numbers) in (4, 6), row  # median, IQR, min..max, GFLOP/s (+ ratio and ratio by min)
    if peers:
        assert any(len(row.split()) >= 8 and row.rstrip().endswith("x") for row in rows), done.stdout


def _torch() -> bool:
    from gpunet.bench import peers_torch

    return peers_torch.available()[0]


def test_scaling_times_the_machine_reference_with_the_workloads() -> None:
    """``--scaling`` on the CPU adds the compute-only reference at 1 and 2 threads: its speedup is
    printed and recorded, it has its own FLOP count, and it is never a peer in the ratios."""
    done = bench(*TINY[:1], *TINY[2:], "--scaling", "--threads", "2", "--json", "-")
    assert done.returncode == 0, done.stderr
    record = json.loads(done.stdout)
    assert validate(record) == []
    w = record["workloads"][0]
    machine = [r for r in w["runs"] if r["implementation"] == "machine"]
    assert [r["threads"] for r in machine] == [1, 2] and all(r["flops"] == machine_ref.FLOPS for r in machine)
    assert {s["implementation"] for s in w["scaling"]} == {"gpunet numpy", machine_ref.LABEL}
    assert all(r["peer"].split()[0] != "machine:" for r in w["ratios"])
    assert f"scaling {machine_ref.LABEL}: 1 -> 2 threads" in done.stderr
