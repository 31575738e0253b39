"""Build runs: a recipe adapted to its dataset, a fresh model, settings, or a trained checkpoint.

Bad combinations of options raise :class:`UsageError` naming the option (``param_hint``); the
CLI shows them as usage errors. Nothing here depends on click.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gpunet.autograd import no_grad, tensor
from gpunet.data import DataLoader, Split
from gpunet.nn.module import Module
from gpunet.optim import OPTIMIZERS, Optimizer
from gpunet.random import manual_seed
from gpunet.training.callbacks import Callback
from gpunet.training.errors import TrainingError, UsageError
from gpunet.training.recipes import RECIPES, Recipe, get_recipe
from gpunet.training.settings import Settings
from gpunet.training.tasks import task_of
from gpunet.training.trainer import Progress, Trainer
from gpunet.training.user_model import is_model_file


def prepare_run(model: str, dataset: str | None, seed: int, data_dir: str | None) -> tuple[Recipe, Split, Module]:
    """Recipe (adapted to the dataset), split and a freshly initialised model.

    A model that cannot take the dataset (wrong input shape or input count) is a usage error
    naming both, found by one forward pass on two test samples (the RNG state is preserved).
    """
    from gpunet.data import load_dataset

    recipe = check_recipe(model, dataset)
    name = dataset or recipe.dataset
    options = {"data_dir": data_dir} if data_dir else {}
    try:
        split = load_dataset(name, seed=seed, **options)
    except TypeError as exc:
        if "data_dir" not in str(exc):
            raise
        raise UsageError(f"dataset {name!r} reads no files", param_hint="--data-dir") from exc
    if recipe.loss in ("bce", "perceptron") and not split.info.get("binary"):
        if recipe.loss == "perceptron":
            raise UsageError(f"the perceptron is a binary classifier; dataset {name!r} has "
                             f"{split.info.get('num_classes')} classes", param_hint="--dataset")
        recipe = dataclasses.replace(recipe, loss="cross_entropy")
    manual_seed(seed)
    try:
        net = recipe.build(split.info)
        dry_run(recipe, net, split)
    except (TypeError, ValueError, KeyError, IndexError) as exc:
        shape = split.info.get("input_shape")
        raise UsageError(f"model {model!r} does not fit dataset {name!r} (input shape {shape}): {exc}",
                         param_hint="--dataset") from exc
    return recipe, split, net


def check_recipe(model: str, dataset: str | None) -> Recipe:
    """The recipe of ``model``, refusing (before any data is read) a built-in dataset it cannot take."""
    from gpunet.data import DATASETS

    try:
        recipe = get_recipe(model)
    except KeyError as exc:
        raise UsageError(exc.args[0], param_hint="MODEL") from exc
    name = dataset or recipe.dataset
    if name not in DATASETS:
        raise UsageError(f"unknown dataset {name!r}; expected one of {sorted(DATASETS)}", param_hint="--dataset")
    if recipe.datasets and name not in recipe.datasets:
        raise UsageError(f"model {model!r} takes the dataset(s) {', '.join(recipe.datasets)}; got {name!r}",
                         param_hint="--dataset")
    return recipe


def check_model(model: str, dataset: str | None, data: str | None, data_dir: str | None) -> None:
    """Refuse, before any data is read, MODEL with options it cannot take: a built-in recipe with
    ``--data``, or a model file (``FILE.py:FUNC``) without ``--data`` or with a built-in dataset."""
    from gpunet.training.user_model import parse_model

    if not is_model_file(model):
        if data is not None:
            raise UsageError(f"--data trains a model from a file (MODEL as FILE.py:FUNC), not the built-in "
                             f"{model!r}; use --dataset for a built-in model", param_hint="--data")
        check_recipe(model, dataset)
        return
    parse_model(model)
    for option, value in (("--dataset", dataset), ("--data-dir", data_dir)):
        if value is not None:
            raise UsageError(f"a model from a file trains on --data FILE.npz, not on {option} {value!r}",
                             param_hint=option)
    if data is None:
        raise UsageError(f"model {model!r} from a file needs --data FILE.npz (arrays x, y and optionally "
                         "x_test, y_test)", param_hint="--data")


def check_resume_model(recipe: Recipe, info: dict[str, Any], checkpoint: str) -> None:
    """Refuse (a usage error, before any training) a checkpoint written by another model."""
    import json

    from gpunet import io
    from gpunet.training.checkpoint import check_header

    state = io.load(checkpoint)
    check_header(state, checkpoint, "resume", complete=False)
    if state["recipe"] != recipe.name:
        raise UsageError(f"{checkpoint} is a checkpoint of {state['recipe']!r}, not of {recipe.name!r}",
                         param_hint="--checkpoint")
    if state.get("dataset") != info.get("name"):
        raise UsageError(f"{checkpoint} was trained on {state.get('dataset')!r}, not on {info.get('name')!r}",
                         param_hint="--data")
    saved = state.get("model_config") or {}
    now = json.loads(json.dumps(recipe.config(info)))  # tuples as saved: lists
    if saved == now:
        return
    old, new = saved.get("parameters", {}), now.get("parameters", {})
    differ = [f"{name} {old.get(name)} (checkpoint) vs {new.get(name)} (now)" for name in sorted({*old, *new})
              if old.get(name) != new.get(name)]
    what = ", ".join(differ[:3]) + (f" and {len(differ) - 3} more" if len(differ) > 3 else "") if differ else \
        f"config {saved} (checkpoint) vs {now} (now)"
    raise UsageError(f"{checkpoint} holds another model than {recipe.name!r} builds now: {what}",
                     param_hint="--checkpoint")


def reported_history(recipe: Recipe, epochs: list[dict[str, float]]) -> list[dict[str, float]]:
    """The per-epoch records as reported: regression has no accuracy (the Trainer counts none; a
    checkpoint of an older gpunet may still hold a constant one), so those entries are left out."""
    if recipe.task != "regression":
        return list(epochs)
    return [{k: v for k, v in e.items() if not k.endswith("accuracy")} for e in epochs]


def dry_run(recipe: Recipe, net: Module, split: Split) -> None:
    """One forward pass on two test samples, without touching the RNG or the graph."""
    from gpunet import random as gpunet_random

    state = gpunet_random.get_state()
    *inputs, _ = split.test[:2]
    net.eval()
    try:
        with no_grad():
            recipe.forward(net, *(tensor(a) for a in inputs))
    finally:
        net.train()
        gpunet_random.set_state(state)


def compile_kernels(trainer: Trainer, split: Split, batch_size: int) -> float:
    """One forward and backward of a training batch with nothing kept (the gradients, the model's
    mode and the RNG are as before), so that numba compiles the step's CPU kernels now rather
    than inside the first epoch; returns the seconds it took. The model runs in eval mode (no
    dropout draws, no batch-norm statistics updated), which compiles the same kernels."""
    import time

    from gpunet import random as gpunet_random

    params = list(trainer.model.parameters())
    grads, state, mode = [p.grad for p in params], gpunet_random.get_state(), trainer.model.training
    *inputs, target = (tensor(a) for a in split.train[:batch_size])
    started = time.perf_counter()
    trainer.model.eval()
    try:
        trainer.task.loss(trainer.task.forward(trainer.model, *inputs), target).backward()
    finally:
        for p, g in zip(params, grads):
            p.grad = g
        trainer.model.train(mode)
        gpunet_random.set_state(state)
    return time.perf_counter() - started


def make_settings(recipe: Recipe, seed: int = 0, epochs: int | None = None, batch_size: int | None = None,
                  lr: float | None = None, optimizer: str | None = None, weight_decay: float | None = None,
                  schedule: str | None = None, clip: float | None = None) -> Settings:
    """The run's settings: each value given, else the recipe's (``weight_decay=0.0`` counts as given)."""
    return Settings(epochs=epochs or recipe.epochs, batch_size=batch_size or recipe.batch_size,
                    lr=lr or recipe.lr, optimizer=optimizer or recipe.optimizer, seed=seed,
                    momentum=recipe.momentum, clip=clip or recipe.clip, schedule=schedule or recipe.schedule,
                    weight_decay=recipe.weight_decay if weight_decay is None else weight_decay)


def make_optimizer(model: Module, settings: Settings) -> Optimizer:
    """The optimizer named by ``settings`` over the model's parameters."""
    name = settings.optimizer.lower()
    if name not in OPTIMIZERS:
        raise ValueError(f"optimizer: expected one of {sorted(OPTIMIZERS)}, got {settings.optimizer!r}")
    if name == "sgd":
        return OPTIMIZERS[name](model.parameters(), lr=settings.lr, momentum=settings.momentum,
                                weight_decay=settings.weight_decay)
    return OPTIMIZERS[name](model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)


def recipe_trainer(recipe: Recipe, model: Module, split: Split, settings: Settings,
                   checkpoint: str | Path | None = None, checkpoint_every: int = 0, progress: Progress | None = None,
                   distributed: bool = False, check_every: int = 25, callbacks: Sequence[Callback] = ()) -> Trainer:
    """The Trainer of a recipe's run: its optimizer, task, shuffled train and test loaders, LR
    schedule and checkpoint identity (recipe, dataset, model config) handed to the one loop."""
    train = DataLoader(split.train, settings.batch_size, shuffle=True, seed=settings.seed)
    test = DataLoader(split.test, max(settings.batch_size, 256))
    identity = {"recipe": recipe.name, "dataset": split.info.get("name"), "model_config": recipe.config(split.info)}
    trainer = Trainer(model, make_optimizer(model, settings), task_of(recipe), train, test, settings=settings,
                      epochs=settings.epochs, scheduler=settings.lr_at, callbacks=callbacks, clip=settings.clip,
                      checkpoint=checkpoint, checkpoint_every=checkpoint_every, progress=progress,
                      distributed=distributed, check_every=check_every, identity=identity,
                      num_classes=int(split.info.get("num_classes", 2)))
    trainer.recipe, trainer.split = recipe, split
    return trainer


def load_trained(checkpoint: str, data_dir: str | None, command: str) -> tuple[Recipe, Split, Module, dict[str, Any]]:
    """Rebuild a checkpoint's recipe, split and model, with the trained weights loaded.

    ``command`` prefixes the error messages (``"evaluate: ... is not a training checkpoint"``).
    """
    from gpunet import io
    from gpunet.training.checkpoint import TrainingCheckpointError, check_header, check_weights

    state = io.load(checkpoint)
    check_header(state, checkpoint, command, complete=False)
    if is_model_file(state["recipe"]):
        raise TrainingCheckpointError(f"{command}: {checkpoint} holds the model {state['recipe']!r} from a file; "
                                      f"{command} takes the built-in models {sorted(RECIPES)}", checkpoint, "recipe")
    if state["recipe"] not in RECIPES:
        raise TrainingCheckpointError(f"{command}: {checkpoint}: field 'recipe' names an unknown model "
                                      f"{state['recipe']!r}; expected one of {sorted(RECIPES)}", checkpoint, "recipe")
    seed = state.get("settings", {}).get("seed", 0)
    recipe, split, model = prepare_run(state["recipe"], state.get("dataset"), seed, data_dir)
    check_weights(state, model, checkpoint, command)
    try:
        model.load_state_dict(state["model"])
    except (KeyError, ValueError) as exc:
        raise TrainingError(f"{command}: {checkpoint} does not fit model {state['recipe']!r}: {exc}") from exc
    return recipe, split, model, state
