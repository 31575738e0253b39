"""The fit callbacks: EarlyStopping's stop epoch, ModelCheckpoint's best, CSV/JSONL contents."""

import csv
import json
import types

import numpy
import pytest

from gpunet import io, nn
from gpunet.training.callbacks import CSVLogger, EarlyStopping, JSONLinesLogger, ModelCheckpoint


def _run(callback, values, key="test_loss"):
    trainer = types.SimpleNamespace(stop_training=False, model=nn.Linear(2, 1))
    callback.on_train_begin(trainer)
    for epoch, v in enumerate(values, 1):
        trainer.model.weight.data[...] = v
        callback.on_epoch_end(epoch, {key: v})
        if trainer.stop_training:
            return epoch
    return None


def test_early_stopping_stops_after_patience():
    assert _run(EarlyStopping(patience=2), [3.0, 2.0, 2.5, 2.1, 2.2, 1.0]) == 5
    assert _run(EarlyStopping(patience=0, min_delta=0.5), [3.0, 2.8]) == 2
    assert _run(EarlyStopping(monitor="acc", mode="max", patience=1), [0.1, 0.5, 0.4, 0.6], "acc") is None


def test_early_stopping_refuses_bad_options():
    with pytest.raises(ValueError, match="mode expected"):
        EarlyStopping(mode="up")
    with pytest.raises(KeyError, match="monitor expected"):
        _run(EarlyStopping(monitor="nope"), [1.0])


def test_model_checkpoint_keeps_best(tmp_path):
    cb = ModelCheckpoint(tmp_path / "best.npz", monitor="test_loss")
    _run(cb, [3.0, 1.5, 2.0, 4.0])
    assert cb.best_epoch == 2
    assert numpy.all(io.load(tmp_path / "best.npz")["weight"] == 1.5)


def test_csv_and_jsonl_contents(tmp_path):
    _run(CSVLogger(tmp_path / "log.csv"), [3.0, 2.0])
    rows = list(csv.DictReader((tmp_path / "log.csv").open()))
    assert [(r["epoch"], float(r["test_loss"])) for r in rows] == [("1", 3.0), ("2", 2.0)]
    _run(JSONLinesLogger(tmp_path / "log.jsonl"), [3.0, 2.0])
    lines = [json.loads(s) for s in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert lines == [{"epoch": 1, "test_loss": 3.0}, {"epoch": 2, "test_loss": 2.0}]


def test_tensorboard_logger_writes_event_file(tmp_path):
    pytest.importorskip("tensorboard")
    from gpunet.training.callbacks import TensorBoardLogger

    cb = TensorBoardLogger(tmp_path / "tb")
    _run(cb, [3.0, 2.0])
    cb.on_train_end({})
    events = list((tmp_path / "tb").glob("events.out.tfevents.*"))
    assert events and events[0].stat().st_size > 0


def test_tensorboard_logger_names_missing_package(monkeypatch):
    import sys

    from gpunet.training.callbacks import TensorBoardLogger

    monkeypatch.setitem(sys.modules, "tensorboard", None)
    monkeypatch.setitem(sys.modules, "tensorboard.summary", None)
    with pytest.raises(ImportError, match="'tensorboard' package"):
        TensorBoardLogger("unused")
