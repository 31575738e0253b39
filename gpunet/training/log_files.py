"""Resuming the per-epoch log files (CSV, JSON lines): keep the rows up to the resumed epoch."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path


def csv_epoch(line: str) -> int:
    """A CSVLogger row's epoch: its first column."""
    return int(line.split(",", 1)[0])


def jsonl_epoch(line: str) -> int:
    """A JSONLinesLogger line's epoch."""
    epoch = json.loads(line)["epoch"]
    if type(epoch) is not int:
        raise ValueError(f"epoch expected an int, got {epoch!r}")
    return epoch


def keep_rows_up_to(path: Path, last_epoch: int, epoch_of: Callable[[str], int], header: bool) -> None:
    """Truncate ``path`` before its first row past ``last_epoch`` (or one whose epoch cannot be
    read): the rows an interrupted run wrote after its checkpoint are written again on resume.
    The kept bytes are untouched; a missing file stays missing."""
    if not path.exists():
        return
    with path.open(newline="") as f:
        lines = f.readlines()
    keep = 1 if header and lines else 0
    for line in lines[keep:]:
        try:
            if epoch_of(line) > last_epoch:
                break
        except (ValueError, KeyError, TypeError):
            break
        keep += 1
    if keep == len(lines):
        return
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with temp.open("w", newline="") as f:
        f.writelines(lines[:keep])
    os.replace(temp, path)
