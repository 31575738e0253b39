"""One training loop: fit(), the recipes and the CLI all run the same Trainer, with callbacks,
the NaN check naming the step, exact resume and no accuracy for regression."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy
import pytest

import gpunet
from gpunet import io, nn, optim
from gpunet.training import (
    Callback,
    CSVLogger,
    EarlyStopping,
    JSONLinesLogger,
    ModelCheckpoint,
    Trainer,
    TrainingError,
    fit,
    fit_trainer,
    get_recipe,
    make_settings,
    make_task,
    prepare_run,
    recipe_trainer,
)


def _classes(seed: int = 0, n: int = 96) -> tuple[numpy.ndarray, numpy.ndarray]:
    rng = numpy.random.default_rng(seed)
    x = rng.normal(size=(n, 4)).astype("float32")
    return x, (x[:, 0] + x[:, 1] > 0).astype("int64")


def _regression(n: int = 80) -> tuple[numpy.ndarray, numpy.ndarray]:
    rng = numpy.random.default_rng(1)
    x = rng.normal(size=(n, 3)).astype("float32")
    return x, (x @ numpy.array([[1.0], [-2.0], [0.5]], dtype="float32")).astype("float32")


class Spy:
    """Records the Trainers whose ``fit`` runs."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.trainers: list[Trainer] = []
        original = Trainer.fit

        def spied(trainer: Trainer) -> Any:
            self.trainers.append(trainer)
            return original(trainer)

        monkeypatch.setattr(Trainer, "fit", spied)


def test_recipe_cli_and_fit_runs_go_through_the_same_trainer(monkeypatch, tmp_path):
    from click.testing import CliRunner

    from gpunet.cli.train import train

    spy = Spy(monkeypatch)
    x, y = _classes()
    model = nn.Linear(4, 2)
    fit(model, optim.SGD(model.parameters(), lr=0.1), "cross_entropy", (x, y), epochs=1)
    recipe, split, net = prepare_run("linear", None, 0, None)
    recipe_trainer(recipe, net, split, make_settings(recipe, epochs=1)).fit()
    result = CliRunner().invoke(train, ["linear", "--epochs", "1", "--quiet", "--json", str(tmp_path / "r.json")])
    assert result.exit_code == 0, result.output
    assert [type(t) for t in spy.trainers] == [Trainer] * 3
    assert spy.trainers[0].model is model and spy.trainers[1].model is net


def test_early_stopping_stops_a_recipe_trainer_and_fit():
    recipe, split, net = prepare_run("linear", None, 0, None)
    stop = EarlyStopping(monitor="train_loss", patience=0, min_delta=1e9)
    history = recipe_trainer(recipe, net, split, make_settings(recipe, epochs=6), callbacks=[stop]).fit()
    assert len(history.epochs) == 2 and stop.stopped_epoch == 2
    x, y = _classes()
    model = nn.Linear(4, 2)
    stop = EarlyStopping(monitor="test_accuracy", mode="max", patience=1, min_delta=1.0)
    hist = fit(model, optim.SGD(model.parameters(), lr=0.1), "cross_entropy", (x[:64], y[:64]), (x[64:], y[64:]),
               epochs=8, callbacks=[stop])
    assert len(hist) == 3 and stop.stopped_epoch == 3


class Weights(Callback):
    """The model's weights at each epoch's end."""

    def __init__(self) -> None:
        self.seen: dict[int, dict[str, numpy.ndarray]] = {}

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        self.seen[epoch] = {k: gpunet.backend.to_numpy(v).copy() for k, v in self.trainer.model.state_dict().items()}


def test_model_checkpoint_best_only_holds_the_best_epochs_weights(tmp_path):
    x, y = _classes()
    model = nn.Linear(4, 2)
    best, weights = ModelCheckpoint(tmp_path / "best.npz", monitor="test_loss"), Weights()
    hist = fit(model, optim.SGD(model.parameters(), lr=2.0), "cross_entropy", (x[:64], y[:64]), (x[64:], y[64:]),
               epochs=6, callbacks=[best, weights])
    epoch = min(hist, key=lambda r: r["test_loss"])["epoch"]
    assert best.best_epoch == epoch
    saved = io.load(tmp_path / "best.npz")
    assert set(saved) == set(weights.seen[epoch])
    for name, value in weights.seen[epoch].items():
        numpy.testing.assert_array_equal(saved[name], value)
    assert [p.name for p in tmp_path.iterdir()] == ["best.npz"]  # no temp file left behind


def test_model_checkpoint_a_failed_write_keeps_the_previous_best(monkeypatch, tmp_path):
    import gpunet.io.atomic as atomic

    x, y = _classes()
    model = nn.Linear(4, 2)
    best, weights = ModelCheckpoint(tmp_path / "best.npz", monitor="train_loss"), Weights()
    real, calls = atomic.os.replace, []

    def failing(src: Any, dst: Any) -> None:
        calls.append(dst)
        if len(calls) == 2:
            raise OSError("disk full")
        real(src, dst)

    monkeypatch.setattr(atomic.os, "replace", failing)
    with pytest.raises(io.CheckpointError, match="disk full.*the previous checkpoint there, if any, is unchanged"):
        fit(model, optim.SGD(model.parameters(), lr=0.1), "cross_entropy", (x, y), epochs=4,
            callbacks=[weights, best])
    saved = io.load(tmp_path / "best.npz")
    for name, value in weights.seen[1].items():  # epoch 1's weights, whole: the epoch 2 write never landed
        numpy.testing.assert_array_equal(saved[name], value)
    assert [p.name for p in tmp_path.iterdir()] == ["best.npz"]


def test_csv_and_jsonlines_rows_match_the_history(tmp_path):
    x, y = _classes()
    model = nn.Linear(4, 2)
    hist = fit(model, optim.Adam(model.parameters(), lr=0.05), "cross_entropy", (x[:64], y[:64]),
               (x[64:], y[64:]), epochs=3, callbacks=[CSVLogger(tmp_path / "log.csv"),
                                                      JSONLinesLogger(tmp_path / "log.jsonl")])
    lines = [json.loads(s) for s in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert lines == hist
    rows = list(csv.DictReader((tmp_path / "log.csv").open()))
    assert [{k: float(v) for k, v in r.items()} for r in rows] == [{k: float(v) for k, v in r.items()} for r in hist]
    assert list(rows[0]) == ["epoch", "train_loss", "train_accuracy", "test_loss", "test_accuracy", "seconds"]


def test_regression_history_has_no_accuracy_anywhere():
    x, y = _regression()
    model = nn.Linear(3, 1)
    opt = optim.SGD(model.parameters(), lr=0.1)
    events: list[dict[str, Any]] = []
    trainer = Trainer(model, opt, "mse", (x[:60], y[:60]), (x[60:], y[60:]), epochs=3, progress=events.append)
    history = trainer.fit().epochs
    assert [sorted(r) for r in history] == [["epoch", "seconds", "test_loss", "train_loss"]] * 3
    assert history[-1]["test_loss"] < history[0]["test_loss"]
    assert not any("accuracy" in key for event in events for key in event)
    assert not make_task("mse").accuracy and make_task("cross_entropy").accuracy
    other = nn.Linear(3, 1)
    hist = fit(other, optim.SGD(other.parameters(), lr=0.1), "mse", (x, y), epochs=1)
    assert sorted(hist[0]) == ["epoch", "seconds", "train_loss"]


def test_a_metric_of_ones_own_is_counted_on_the_device():
    x, y = _classes()
    model = nn.Linear(4, 2)

    def first_class_right(logits: Any, target: Any) -> Any:  # counts only correct class-0 predictions
        return ((logits.argmax(axis=1) == 0) & (target == 0)).sum()

    hist = fit(model, optim.SGD(model.parameters(), lr=0.1), "cross_entropy", (x, y), (x, y), epochs=1,
               accuracy=first_class_right)
    assert 0 <= hist[0]["test_accuracy"] <= (y == 0).mean()


def test_fit_with_nan_data_names_the_step():
    x, y = _classes()
    x[40, 2] = numpy.nan  # batch 2 of 16 (no shuffle: a DataLoader in order)
    from gpunet.data import DataLoader, TensorDataset

    model = nn.Linear(4, 2)
    with pytest.raises(TrainingError, match=r"^cross_entropy loss is nan at step 3 \(epoch 1, batch 3\); "
                                            r"the data is the cause: the input of this batch holds 1 NaN/inf"):
        fit(model, optim.SGD(model.parameters(), lr=0.1), "cross_entropy",
            DataLoader(TensorDataset(x, y), 16), epochs=1)
    assert all(numpy.isfinite(gpunet.backend.to_numpy(p.data)).all() for p in model.parameters())


class StopAt(Callback):
    """Ctrl-C after ``step`` steps (the Trainer saves its checkpoint and re-raises)."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_batch_end(self, batch: int, logs: dict[str, Any]) -> None:
        if logs["step"] == self.step:
            raise KeyboardInterrupt


def _fit_run(path: Path | None, callbacks: list[Callback]) -> Trainer:
    x, y = _classes(n=100)
    gpunet.manual_seed(4)
    model = nn.Sequential(nn.Linear(4, 8), nn.Dropout(0.2), nn.ReLU(), nn.Linear(8, 2))
    opt = optim.SGD(model.parameters(), lr=0.2, momentum=0.9)
    return fit_trainer(model, opt, "cross_entropy", (x[:80], y[:80]), (x[80:], y[80:]), epochs=3, batch_size=16,
                       seed=7, scheduler=optim.lr_scheduler.StepLR(opt, 1, gamma=0.5), callbacks=callbacks,
                       checkpoint=path, check_every=2)


def test_exact_resume_of_a_fit_trainer_equals_the_uninterrupted_run(tmp_path):
    reference = _fit_run(None, [])
    reference.fit()
    path = tmp_path / "run.npz"
    with pytest.raises(KeyboardInterrupt):
        _fit_run(path, [StopAt(8)]).fit()  # epoch 2, batch 3 of 5
    resumed = _fit_run(path, [])
    resumed.restore(path)
    assert (resumed.epoch, resumed.batch, resumed.step) == (1, 3, 8)
    resumed.fit()
    strip = [{k: v for k, v in r.items() if k != "seconds"} for r in reference.history.epochs]
    assert [{k: v for k, v in r.items() if k != "seconds"} for r in resumed.history.epochs] == strip
    for (name, a), b in zip(reference.model.state_dict().items(), resumed.model.state_dict().values()):
        numpy.testing.assert_array_equal(gpunet.backend.to_numpy(a), gpunet.backend.to_numpy(b), err_msg=name)
    assert resumed.optimizer.lr == reference.optimizer.lr == 0.2 * 0.5 ** 3


def test_a_train_dataloader_gives_the_batch_size_a_resume_counts(tmp_path):
    from gpunet.data import DataLoader, TensorDataset

    x, y = _classes()
    model = nn.Linear(4, 2)
    loader = DataLoader(TensorDataset(x, y), 48, shuffle=True, seed=3)  # more than fit's default 32
    path = tmp_path / "run.npz"
    with pytest.raises(KeyboardInterrupt):
        fit(model, optim.SGD(model.parameters(), lr=0.1), "cross_entropy", loader, epochs=2, checkpoint=path,
            callbacks=[StopAt(3)])
    again = fit_trainer(model, optim.SGD(model.parameters(), lr=0.1), "cross_entropy", loader, epochs=2)
    assert again.settings.batch_size == 48
    again.restore(path)  # epoch 2, 1 batch of 48 seen: within the schema's batch * batch_size
    assert (again.epoch, again.batch, again.step, again.totals["seen"]) == (1, 1, 3, 48)


def test_a_fit_checkpoint_refuses_another_run(tmp_path):
    path = tmp_path / "run.npz"
    with pytest.raises(KeyboardInterrupt):
        _fit_run(path, [StopAt(3)]).fit()
    x, y = _classes(n=100)
    other = nn.Linear(4, 2)
    trainer = fit_trainer(other, optim.SGD(other.parameters(), lr=0.2, momentum=0.9), "cross_entropy",
                          (x[:80], y[:80]), epochs=3, batch_size=16, seed=7)
    with pytest.raises(TrainingError, match=r"^resume: .*run.npz is a checkpoint of 'Sequential \(fit\)', "
                                            r"not of 'Linear \(fit\)'$"):
        trainer.restore(path)


def test_recipe_trainer_is_the_generic_trainer_with_the_recipes_parts():
    recipe = get_recipe("lenet")
    pytest.importorskip("sklearn")
    recipe, split, net = prepare_run("lenet", None, 0, None)
    trainer = recipe_trainer(recipe, net, split, make_settings(recipe, epochs=2))
    assert type(trainer) is Trainer and trainer.task.name == "cross_entropy" and trainer.task.accuracy
    assert trainer.identity == {"recipe": "lenet", "dataset": split.info["name"],
                                "model_config": recipe.config(split.info)}
    assert trainer.scheduler(1) == make_settings(recipe, epochs=2).lr_at(1)  # the cosine schedule
