"""Callbacks of the Trainer (and ``fit``): a small protocol with a ``logs`` dict of host floats.

Hooks: ``on_train_begin(trainer)``, ``on_batch_end(batch, logs)`` (after every step; ``logs`` holds
the metrics up to the last deferred check, so it costs no host sync), ``on_epoch_end(epoch, logs)``
(the epoch's history record without ``epoch``), ``on_train_end(logs)``.
A callback stops training by setting ``trainer.stop_training = True`` (``EarlyStopping`` does).

State (as PyTorch Lightning's callbacks): ``state_dict()`` is saved in the Trainer's checkpoints
under ``state_key`` (the class name, plus the options that tell two instances apart) and handed
back by ``load_state_dict`` on resume, so EarlyStopping keeps its best and wait count,
ModelCheckpoint its best, and the loggers append to their files instead of starting them again.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

from gpunet.training.log_files import csv_epoch, jsonl_epoch, keep_rows_up_to


class Callback:
    """Base class: every hook does nothing."""

    trainer: Any = None

    @property
    def state_key(self) -> str:
        """The key of this callback's state in a checkpoint: stable across runs, unique in one."""
        return type(self).__name__

    def state_dict(self) -> dict[str, Any]:
        """What a resumed run needs of this callback (plain numbers, strings, lists; empty: nothing)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Take back a ``state_dict()`` on resume (raise ValueError/TypeError on a malformed one)."""

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


def _keyed(name: str, **options: Any) -> str:
    """Lightning's key layout: ``EarlyStopping{'monitor': 'test_loss', 'mode': 'min'}``."""
    return f"{name}{options!r}"


def _saved(op: str, state: dict[str, Any], field: str, kind: str) -> Any:
    """``state[field]`` checked against ``kind``: ``number``/``epoch``/``count``, ``?`` for None too."""
    if not isinstance(state, dict) or field not in state:
        raise ValueError(f"{op}.load_state_dict: expected a {field!r} entry, got {state!r:.80}")
    value = state[field]
    if value is None and kind.endswith("?"):
        return None
    base = kind.rstrip("?")
    if base == "number" and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if base in ("epoch", "count") and type(value) is int and value >= (1 if base == "epoch" else 0):
        return value
    wanted = {"number": "a number", "epoch": "an int >= 1", "count": "an int >= 0"}[base]
    raise ValueError(f"{op}.load_state_dict: {field!r} expected {wanted}{' or None' if kind.endswith('?') else ''}, "
                     f"got {value!r:.80}")


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
        self._restored = False

    @property
    def state_key(self) -> str:
        return _keyed("EarlyStopping", monitor=self.monitor, mode=self.mode)

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "wait": self.wait, "stopped_epoch": self.stopped_epoch}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        values = [_saved("EarlyStopping", state, f, k)
                  for f, k in (("best", "number?"), ("wait", "count"), ("stopped_epoch", "epoch?"))]
        self.best, self.wait, self.stopped_epoch = values
        self._restored = True

    def on_train_begin(self, trainer: Any) -> None:
        """A resumed run that had stopped early stays stopped (as the uninterrupted run did)."""
        super().on_train_begin(trainer)
        if self._restored and self.stopped_epoch is not None and trainer is not None:
            trainer.stop_training = True
        self._restored = False

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

    @property
    def state_key(self) -> str:
        return _keyed("ModelCheckpoint", monitor=self.monitor, mode=self.mode, path=str(self.path))

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "best_epoch": self.best_epoch}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        best = _saved("ModelCheckpoint", state, "best", "number?")
        self.best, self.best_epoch = best, _saved("ModelCheckpoint", state, "best_epoch", "epoch?")

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        from gpunet import io

        if self.save_best_only:
            value = _monitored("ModelCheckpoint", self.monitor, logs)
            better = self.best is None or (value < self.best if self.mode == "min" else value > self.best)
            if not better:
                return
            self.best, self.best_epoch = value, epoch
        io.save(dict(self.trainer.model.state_dict()), self.path)


class _EpochFileLogger(Callback):
    """A file with one row per epoch. Resumed, it drops any rows past the checkpoint's epoch (written
    after it, before a crash) and appends. Subclasses say how a row names its epoch."""

    has_header = False

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.last_epoch = 0  # the last epoch written
        self._restored = False

    @property
    def state_key(self) -> str:
        return _keyed(type(self).__name__, path=str(self.path))

    def _row_epoch(self, row: str) -> int:
        raise NotImplementedError

    def _saved_last_epoch(self, state: dict[str, Any]) -> int:
        return _saved(type(self).__name__, state, "last_epoch", "count")

    def on_train_begin(self, trainer: Any) -> None:
        super().on_train_begin(trainer)
        if self._restored:
            keep_rows_up_to(self.path, self.last_epoch, self._row_epoch, header=self.has_header)
        self._restored = False


class CSVLogger(_EpochFileLogger):
    """One CSV row per epoch (header from the first epoch's keys). Resumed, it appends under the
    same header, after dropping any rows past the checkpoint's epoch."""

    has_header = True

    def __init__(self, path: str | Path) -> None:
        super().__init__(path)
        self._keys: list[str] | None = None

    def _row_epoch(self, row: str) -> int:
        return csv_epoch(row)

    def state_dict(self) -> dict[str, Any]:
        return {"last_epoch": self.last_epoch, "keys": None if self._keys is None else list(self._keys)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        last = self._saved_last_epoch(state)
        keys = state.get("keys")
        if keys is not None and not (isinstance(keys, list) and all(isinstance(k, str) for k in keys)):
            raise ValueError(f"CSVLogger.load_state_dict: 'keys' expected a list of names or None, got {keys!r:.80}")
        self.last_epoch, self._keys, self._restored = last, None if keys is None else list(keys), True

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        row = {"epoch": epoch, **logs}
        new = self._keys is None or not self.path.exists()
        if self._keys is None:
            self._keys = list(row)
        with self.path.open("w" if new else "a", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=self._keys, extrasaction="ignore")
            if new:
                writer.writeheader()
            writer.writerow(row)
        self.last_epoch = epoch


class JSONLinesLogger(_EpochFileLogger):
    """One JSON object per epoch and line. Resumed, it appends after dropping any lines past the
    checkpoint's epoch."""

    def __init__(self, path: str | Path) -> None:
        super().__init__(path)
        self._started = False

    def _row_epoch(self, row: str) -> int:
        return jsonl_epoch(row)

    def state_dict(self) -> dict[str, Any]:
        return {"last_epoch": self.last_epoch, "started": self._started}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        last = self._saved_last_epoch(state)
        started = state.get("started")
        if not isinstance(started, bool):
            raise ValueError(f"JSONLinesLogger.load_state_dict: 'started' expected a bool, got {started!r:.80}")
        self.last_epoch, self._started, self._restored = last, started, True

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        with self.path.open("a" if self._started else "w") as f:
            f.write(json.dumps({"epoch": epoch, **logs}) + "\n")
        self._started = True
        self.last_epoch = epoch


class TensorBoardLogger(Callback):
    """Scalar event files in ``log_dir`` through the optional ``tensorboard`` package."""

    def __init__(self, log_dir: str | Path) -> None:
        try:
            from tensorboard.summary import Writer
        except ImportError as exc:
            raise ImportError("TensorBoardLogger: needs the optional 'tensorboard' package "
                              "(pip install tensorboard), which is not importable") from exc
        self.writer = Writer(str(log_dir))
        self.log_dir = str(log_dir)

    @property
    def state_key(self) -> str:
        return _keyed("TensorBoardLogger", log_dir=self.log_dir)

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        for key, value in logs.items():
            self.writer.add_scalar(key, float(value), step=epoch)
        self.writer.flush()

    def on_train_end(self, logs: dict[str, float]) -> None:
        self.writer.close()
