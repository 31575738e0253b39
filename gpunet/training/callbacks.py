"""Callbacks of the Trainer (and ``fit``): a small protocol with a ``logs`` dict of host floats.

Hooks: ``on_train_begin(trainer)``, ``on_batch_end(batch, logs)`` (after every step; ``logs`` holds
the metrics up to the last deferred check, so it costs no host sync), ``on_epoch_end(epoch, logs)``
(the epoch's history record without ``epoch``), ``on_train_end(logs)``.
A callback stops training by setting ``trainer.stop_training = True`` (``EarlyStopping`` does).
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any


class Callback:
    """Base class: every hook does nothing."""

    trainer: Any = None

    def on_train_begin(self, trainer: Any) -> None:
        self.trainer = trainer

    def on_batch_end(self, batch: int, logs: dict[str, Any]) -> None:
        pass

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        pass

    def on_train_end(self, logs: dict[str, float]) -> None:
        pass


def _check_mode(op: str, mode: str) -> str:
    if mode not in ("min", "max"):
        raise ValueError(f"{op}: mode expected 'min' or 'max', got {mode!r}")
    return mode


def _monitored(op: str, monitor: str, logs: dict[str, float]) -> float:
    if monitor not in logs:
        raise KeyError(f"{op}: monitor expected one of {sorted(logs)}, got {monitor!r}")
    return float(logs[monitor])


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved by more than ``min_delta`` for ``patience`` epochs."""

    def __init__(self, monitor: str = "test_loss", patience: int = 0, min_delta: float = 0.0,
                 mode: str = "min") -> None:
        if not isinstance(patience, int) or patience < 0:
            raise ValueError(f"EarlyStopping: patience expected an int >= 0, got {patience!r}")
        if not math.isfinite(min_delta) or min_delta < 0:
            raise ValueError(f"EarlyStopping: min_delta expected a finite float >= 0, got {min_delta!r}")
        self.monitor, self.patience, self.min_delta = monitor, patience, float(min_delta)
        self.mode = _check_mode("EarlyStopping", mode)
        self.best: float | None = None
        self.wait = 0
        self.stopped_epoch: int | None = None

    def _improved(self, value: float) -> bool:
        if self.best is None:
            return True
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        value = _monitored("EarlyStopping", self.monitor, logs)
        if self._improved(value):
            self.best, self.wait = value, 0
            return
        self.wait += 1
        if self.wait > self.patience:
            self.stopped_epoch = epoch
            if self.trainer is not None:
                self.trainer.stop_training = True


class ModelCheckpoint(Callback):
    """Save the model's state_dict to ``path`` (atomically, via ``gpunet.io.save``) at each epoch's
    end, or only when ``monitor`` is the best so far with ``save_best_only``."""

    def __init__(self, path: str | Path, monitor: str = "test_loss", mode: str = "min",
                 save_best_only: bool = True) -> None:
        self.path, self.monitor, self.save_best_only = Path(path), monitor, bool(save_best_only)
        self.mode = _check_mode("ModelCheckpoint", mode)
        self.best: float | None = None
        self.best_epoch: int | None = None

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        from gpunet import io

        if self.save_best_only:
            value = _monitored("ModelCheckpoint", self.monitor, logs)
            better = self.best is None or (value < self.best if self.mode == "min" else value > self.best)
            if not better:
                return
            self.best, self.best_epoch = value, epoch
        io.save(dict(self.trainer.model.state_dict()), self.path)


class CSVLogger(Callback):
    """One CSV row per epoch (header from the first epoch's keys)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._keys: list[str] | None = None

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        row = {"epoch": epoch, **logs}
        new = self._keys is None
        if new:
            self._keys = list(row)
        with self.path.open("w" if new else "a", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=self._keys, extrasaction="ignore")
            if new:
                writer.writeheader()
            writer.writerow(row)


class JSONLinesLogger(Callback):
    """One JSON object per epoch and line."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._started = False

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        with self.path.open("a" if self._started else "w") as f:
            f.write(json.dumps({"epoch": epoch, **logs}) + "\n")
        self._started = True


class TensorBoardLogger(Callback):
    """Scalar event files in ``log_dir`` through the optional ``tensorboard`` package."""

    def __init__(self, log_dir: str | Path) -> None:
        try:
            from tensorboard.summary import Writer
        except ImportError as exc:
            raise ImportError("TensorBoardLogger: needs the optional 'tensorboard' package "
                              "(pip install tensorboard), which is not importable") from exc
        self.writer = Writer(str(log_dir))

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        for key, value in logs.items():
            self.writer.add_scalar(key, float(value), step=epoch)
        self.writer.flush()

    def on_train_end(self, logs: dict[str, float]) -> None:
        self.writer.close()
