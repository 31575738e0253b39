"""Callback state survives a resume: an interrupted and resumed run ends with the same
EarlyStopping stop, ModelCheckpoint best (epoch and file) and CSV/JSONL logs as an uninterrupted one."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path
from typing import Any

import numpy
import pytest

import gpunet
from gpunet import io, nn, optim
from gpunet.training import CSVLogger, EarlyStopping, JSONLinesLogger, ModelCheckpoint, Trainer
from gpunet.training.callbacks import Callback
from gpunet.training.checkpoint import TrainingCheckpointError
from gpunet.training.fit import fit_trainer

RNG = numpy.random.default_rng(0)
X = RNG.normal(size=(64, 8)).astype("float32")
Y = (X[:, :1] + RNG.normal(size=(64, 1))).astype("float32")
BEST, STOP = 5, 9  # this run's test_loss is lowest at epoch 5; patience 3 stops it at epoch 9


class InterruptAt(Callback):
    """Ctrl-C at the end of ``epoch`` (first in the list: the other callbacks still see that epoch)."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        if epoch == self.epoch:
            raise KeyboardInterrupt


class CopyCheckpointAt(Callback):
    """Keep the checkpoint as it was before ``epoch``'s (a crash then loses that epoch's checkpoint)."""

    def __init__(self, epoch: int, source: Path, copy: Path) -> None:
        self.epoch, self.source, self.copy = epoch, source, copy

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        if epoch == self.epoch:
            shutil.copyfile(self.source, self.copy)


def callbacks(folder: Path) -> list[Callback]:
    return [EarlyStopping("test_loss", patience=3), ModelCheckpoint(folder / "best.npz"),
            CSVLogger(folder / "log.csv"), JSONLinesLogger(folder / "log.jsonl")]


def make(folder: Path, extra: list[Callback] = (), checkpoint: Path | None = None,
         own: list[Callback] | None = None) -> Trainer:
    gpunet.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 1))
    return fit_trainer(model, optim.Adam(model.parameters(), lr=0.03), "mse", (X[:32], Y[:32]), (X[32:], Y[32:]),
                       epochs=20, batch_size=8, callbacks=[*extra, *(callbacks(folder) if own is None else own)],
                       checkpoint=checkpoint)


def outcome(run: Trainer, folder: Path) -> dict[str, Any]:
    """Everything the callbacks leave behind (the logs without their wall-clock ``seconds``)."""
    stopper, best = run.callbacks[-4], run.callbacks[-3]
    with (folder / "log.csv").open(newline="") as f:
        rows = list(csv.reader(f))
    seconds = rows[0].index("seconds")
    jsonl = [json.loads(line) for line in (folder / "log.jsonl").read_text().splitlines()]
    return {"stopped": stopper.stopped_epoch, "best_epoch": best.best_epoch, "best": best.best,
            "weights": {k: v.tolist() for k, v in io.load(folder / "best.npz").items()},
            "csv": [row[:seconds] + row[seconds + 1:] for row in rows],
            "jsonl": [{k: v for k, v in line.items() if k != "seconds"} for line in jsonl],
            "epochs": run.epoch}


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("whole")
    run = make(folder)
    run.fit()
    result = outcome(run, folder)
    assert (result["stopped"], result["best_epoch"], result["epochs"]) == (STOP, BEST, STOP)  # the premise
    return result


@pytest.mark.parametrize("stop_after", [2, BEST, 7, STOP - 1])
def test_interrupted_run_resumes_with_the_callbacks_state(tmp_path: Path, reference: dict[str, Any],
                                                          stop_after: int) -> None:
    first = make(tmp_path, [InterruptAt(stop_after)], tmp_path / "run.npz")
    with pytest.raises(KeyboardInterrupt):
        first.fit()
    resumed = make(tmp_path, checkpoint=tmp_path / "run.npz")
    resumed.restore(tmp_path / "run.npz")
    assert resumed.epoch == stop_after
    resumed.fit()
    assert outcome(resumed, tmp_path) == reference


def test_rows_written_after_the_checkpoint_are_not_duplicated(tmp_path: Path, reference: dict[str, Any]) -> None:
    """A crash loses epochs 7 and 8's checkpoints after the logs got their rows: they are cut on resume."""
    run = make(tmp_path, [CopyCheckpointAt(7, tmp_path / "run.npz", tmp_path / "crash.npz"), InterruptAt(8)],
               tmp_path / "run.npz")
    with pytest.raises(KeyboardInterrupt):
        run.fit()
    assert len((tmp_path / "log.jsonl").read_text().splitlines()) == 8
    resumed = make(tmp_path, checkpoint=tmp_path / "run.npz")
    resumed.restore(tmp_path / "crash.npz")
    assert resumed.epoch == 6
    resumed.fit()
    assert outcome(resumed, tmp_path) == reference


def test_a_more_epochs_resume_of_an_early_stopped_run_stays_stopped(tmp_path: Path,
                                                                  reference: dict[str, Any]) -> None:
    run = make(tmp_path, checkpoint=tmp_path / "run.npz")
    run.fit()
    again = make(tmp_path, checkpoint=tmp_path / "run.npz")
    again.restore(tmp_path / "run.npz")
    again.fit()
    assert outcome(again, tmp_path) == reference


def test_checkpoint_holds_each_callbacks_state_under_its_key(tmp_path: Path) -> None:
    run = make(tmp_path, [InterruptAt(2)], tmp_path / "run.npz")
    with pytest.raises(KeyboardInterrupt):
        run.fit()
    saved = io.load(tmp_path / "run.npz")["callbacks"]
    assert sorted(saved) == sorted([
        "EarlyStopping{'monitor': 'test_loss', 'mode': 'min'}",
        f"ModelCheckpoint{{'monitor': 'test_loss', 'mode': 'min', 'path': '{tmp_path / 'best.npz'}'}}",
        f"CSVLogger{{'path': '{tmp_path / 'log.csv'}'}}", f"JSONLinesLogger{{'path': '{tmp_path / 'log.jsonl'}'}}"])
    assert saved["EarlyStopping{'monitor': 'test_loss', 'mode': 'min'}"]["wait"] == 0
    assert saved[f"CSVLogger{{'path': '{tmp_path / 'log.csv'}'}}"]["last_epoch"] == 2


def test_old_checkpoint_without_callbacks_still_resumes(tmp_path: Path) -> None:
    run = make(tmp_path, [InterruptAt(3)], tmp_path / "run.npz")
    with pytest.raises(KeyboardInterrupt):
        run.fit()
    state = io.load(tmp_path / "run.npz")
    del state["callbacks"]
    io.save(state, tmp_path / "old.npz")
    resumed = make(tmp_path)
    resumed.restore(tmp_path / "old.npz")
    resumed.fit()
    assert resumed.epoch > 3 and resumed.callbacks[-4].best is not None


def test_state_of_a_callback_this_run_lacks_is_skipped(tmp_path: Path) -> None:
    run = make(tmp_path, [InterruptAt(3)], tmp_path / "run.npz")
    with pytest.raises(KeyboardInterrupt):
        run.fit()
    other = make(tmp_path, own=[EarlyStopping("train_loss", patience=3)])
    other.restore(tmp_path / "run.npz")
    assert other.callbacks[0].best is None and other.epoch == 3


@pytest.mark.parametrize("value, message", [
    ([1], r"field 'callbacks' must be an object of callback states keyed by state_key, got \[1\]"),
    ({"EarlyStopping": 5}, r"field 'callbacks\.EarlyStopping' must be an object of the callback's state, got 5"),
    ({"EarlyStopping": {"best": [1.0, 2j]}}, r"field 'callbacks\.EarlyStopping\.best\[1\]' must be null, a boolean"),
    ({"EarlyStopping{'monitor': 'test_loss', 'mode': 'min'}": {"best": 1.0, "wait": -1, "stopped_epoch": None}},
     r"field \"callbacks\.EarlyStopping\{'monitor': 'test_loss', 'mode': 'min'\}\" is refused by EarlyStopping: "
     r"EarlyStopping\.load_state_dict: 'wait' expected an int >= 0, got -1"),
])
def test_malformed_callbacks_field_is_refused_in_one_line(tmp_path: Path, value: Any, message: str,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    run = make(tmp_path, [InterruptAt(2)], tmp_path / "run.npz")
    with pytest.raises(KeyboardInterrupt):
        run.fit()
    state = io.load(tmp_path / "run.npz")
    state["callbacks"] = value
    monkeypatch.setattr(io, "load", lambda path: state)  # 2j cannot be saved: hand the state over as loaded
    resumed = make(tmp_path)
    with pytest.raises(TrainingCheckpointError, match=f"^resume: {tmp_path / 'bad.npz'}: {message}") as info:
        resumed.restore(tmp_path / "bad.npz")
    assert "\n" not in str(info.value) and info.value.field.startswith("callbacks")
    assert resumed.epoch == 0 and all(cb.best is None for cb in resumed.callbacks[:2])


def test_a_partly_refused_callbacks_state_leaves_every_callback_as_it_was(tmp_path: Path) -> None:
    run = make(tmp_path, [InterruptAt(2)], tmp_path / "run.npz")
    with pytest.raises(KeyboardInterrupt):
        run.fit()
    state = io.load(tmp_path / "run.npz")
    csv_key = f"CSVLogger{{'path': '{tmp_path / 'log.csv'}'}}"
    state["callbacks"][csv_key]["keys"] = "epoch"
    io.save(state, tmp_path / "bad.npz")
    resumed = make(tmp_path)
    with pytest.raises(TrainingCheckpointError, match="'keys' expected a list of names or None"):
        resumed.restore(tmp_path / "bad.npz")
    assert resumed.callbacks[0].best is None and resumed.callbacks[0].wait == 0 and resumed.epoch == 0


def test_two_callbacks_with_one_state_key_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"^Trainer: callbacks expected distinct state keys, got "
                                         r"\"EarlyStopping\{'monitor': 'test_loss', 'mode': 'min'\}\" twice"):
        make(tmp_path, own=[EarlyStopping(patience=1), EarlyStopping(patience=2)])
    make(tmp_path, own=[EarlyStopping(patience=1), EarlyStopping("train_loss"), Callback(), Callback()])
