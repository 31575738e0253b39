"""The Trainer's deferred checks: metrics and the NaN/inf check read once per ``check_every`` steps.

A NaN found at a check rolls back to the last check and redoes the steps checked, so the error
names the exact step and leaves the parameters as a check-every-step run leaves them (before the
bad step); a checkpoint is only written after a check.
"""

from __future__ import annotations

from pathlib import Path

import numpy
import pytest

import gpunet
from gpunet import io
from gpunet.data import ArrayDataset, Split, load_dataset
from gpunet.training import Settings, Trainer, TrainingError, get_recipe, recipe_trainer

BATCH = 32


def make(check_every: int, poison_batch: int | None = None, checkpoint: Path | None = None,
         checkpoint_every: int = 0, epochs: int = 1, clip: float = 0.0) -> Trainer:
    recipe = get_recipe("mlp")
    split = load_dataset(recipe.dataset, seed=0)
    x, y = (a.copy() for a in split.train.arrays)
    settings = Settings(epochs=epochs, batch_size=BATCH, lr=0.05, optimizer="adam", seed=0, clip=clip or None)
    if poison_batch is not None:  # the row that epoch 0's batch ``poison_batch`` (0-based) takes first
        from gpunet.data import DataLoader

        row = DataLoader(ArrayDataset(x, y), BATCH, shuffle=True, seed=settings.seed).order(0)[poison_batch * BATCH]
        x[row, 0] = numpy.nan
    split = Split(ArrayDataset(x, y), split.test, split.info)
    gpunet.manual_seed(0)
    return recipe_trainer(recipe, recipe.build(split.info), split, settings, checkpoint=checkpoint,
                          checkpoint_every=checkpoint_every, check_every=check_every)


def weights(trainer: Trainer) -> dict[str, numpy.ndarray]:
    return {k: numpy.array(v) for k, v in trainer.model.state_dict().items()}


def test_metrics_and_weights_do_not_depend_on_the_check_interval() -> None:
    every_step, deferred = make(1, epochs=2), make(7, epochs=2)
    every_step.fit()
    deferred.fit()
    drop = {"seconds"}
    assert [{k: v for k, v in r.items() if k not in drop} for r in every_step.history.epochs] == \
           [{k: v for k, v in r.items() if k not in drop} for r in deferred.history.epochs]  # bit for bit
    a, b = weights(every_step), weights(deferred)
    assert all(numpy.array_equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("clip", [0.0, 1.0])
def test_a_nan_between_checks_names_its_step_and_is_not_applied(clip: float) -> None:
    deferred, every_step = make(50, poison_batch=4, clip=clip), make(1, poison_batch=4, clip=clip)
    with pytest.raises(TrainingError, match=r"^bce loss is nan at step 5 \(epoch 1, batch 5\); the data is the "
                                            r"cause: the input of this batch holds 1 NaN/inf") as deferred_error:
        deferred.fit()
    with pytest.raises(TrainingError) as every_step_error:
        every_step.fit()
    assert str(deferred_error.value) == str(every_step_error.value)
    assert (deferred.step, deferred.batch) == (every_step.step, every_step.batch) == (4, 4)
    a, b = weights(deferred), weights(every_step)
    assert all(numpy.isfinite(v).all() and numpy.array_equal(v, b[k]) for k, v in a.items())
    assert deferred.totals == every_step.totals and deferred.totals["seen"] == 4 * BATCH


def test_a_checkpoint_is_written_only_after_a_check(tmp_path: Path) -> None:
    path = tmp_path / "run.npz"
    trainer = make(50, poison_batch=4, checkpoint=path, checkpoint_every=3)
    with pytest.raises(TrainingError, match=r"loss is nan at step 5 "):
        trainer.fit()  # the save after step 6 checks first: the NaN of step 5 never reaches the file
    state = io.load(path)
    assert state["step"] == 3
    assert all(numpy.isfinite(numpy.asarray(v)).all() for v in state["model"].values())


def test_resume_from_a_checkpoint_between_checks_is_exact(tmp_path: Path) -> None:
    path = tmp_path / "run.npz"
    straight = make(5, epochs=2)
    straight.fit()
    first = make(5, checkpoint=path, checkpoint_every=7, epochs=2)
    first.progress = lambda event: _stop_at(event, 11)
    with pytest.raises(KeyboardInterrupt):
        first.fit()
    resumed = make(5, epochs=2)
    resumed.restore(path)
    assert resumed.step == 11
    resumed.fit()
    drop = {"seconds"}
    assert [{k: v for k, v in r.items() if k not in drop} for r in straight.history.epochs] == \
           [{k: v for k, v in r.items() if k not in drop} for r in resumed.history.epochs]
    a, b = weights(straight), weights(resumed)
    assert all(numpy.array_equal(a[k], b[k]) for k in a)


def _stop_at(event: dict, step: int) -> None:
    if event.get("step") == step:
        raise KeyboardInterrupt


def test_check_every_is_validated() -> None:
    with pytest.raises(ValueError, match=r"^Trainer: check_every expected an int >= 1, got 0$"):
        make(0)


def test_evaluate_refuses_labels_outside_the_classes() -> None:
    from gpunet.training.metrics import evaluate

    trainer = make(1)
    good = evaluate(trainer.recipe, trainer.model, trainer.test_loader, 2)
    n = len(trainer.split.test)
    assert good["confusion"].sum() == n and good["accuracy"] == numpy.trace(good["confusion"]) / n
    outside = n - int(good["confusion"][0, 0])  # rows with class 1 as label or prediction
    with pytest.raises(ValueError, match=rf"^evaluate: {outside} label\(s\) or prediction\(s\) outside the 1 "
                                         rf"classes 0\.\.0$"):
        evaluate(trainer.recipe, trainer.model, trainer.test_loader, 1)
