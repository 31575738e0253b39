"""The training loop: epochs over a DataLoader, metrics, checkpoints, exact resume.

A run is fully determined by (recipe, seed, hyperparameters): the initial weights come from the
seeded generator and each epoch's shuffle from ``(seed, epoch)``, so resuming from a checkpoint
(model, optimizer, position) reproduces the uninterrupted run bit for bit on the CPU.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy

from gpunet import backend, io
from gpunet import functional as F
from gpunet.autograd import Tensor, no_grad
from gpunet.data import DataLoader, Split
from gpunet.nn.module import Module
from gpunet.optim import OPTIMIZERS, Optimizer, clip_grad_norm
from gpunet.recipes import Recipe


class TrainingError(RuntimeError):
    """Training cannot go on (NaN/inf loss or gradient, incompatible checkpoint)."""


@dataclass
class Settings:
    """The hyperparameters of one run (defaults come from the recipe)."""

    epochs: int
    batch_size: int
    lr: float
    optimizer: str
    seed: int = 0
    momentum: float = 0.9
    weight_decay: float = 0.0
    clip: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return dict(vars(self))


@dataclass
class History:
    """Per-epoch metrics."""

    epochs: list[dict[str, float]] = field(default_factory=list)

    @property
    def last(self) -> dict[str, float]:
        return self.epochs[-1] if self.epochs else {}


def compute_loss(recipe: Recipe, logits: Tensor, target: Tensor) -> Tensor:
    """The recipe's loss on the model's logits."""
    if recipe.loss == "cross_entropy":
        return F.cross_entropy(logits, target)
    if recipe.loss == "bce":
        return F.binary_cross_entropy_with_logits(logits, target)
    if recipe.loss == "perceptron":
        return F.perceptron_loss(logits, target)
    if recipe.loss == "mse":
        return F.mse_loss(logits, target)
    raise ValueError(f"compute_loss: unknown loss {recipe.loss!r}")


def predictions(recipe: Recipe, logits: Any) -> Any:
    """Class predictions (raw array) from logits: argmax, or ``logit > 0`` for binary models."""
    if recipe.loss == "cross_entropy":
        return logits.argmax(axis=1)
    return (logits[:, 0] > 0).astype("int64")


def labels_of(recipe: Recipe, target: Any) -> Any:
    if recipe.loss == "cross_entropy":
        return target
    return (target[:, 0] > 0.5).astype("int64")


def make_optimizer(model: Module, settings: Settings) -> Optimizer:
    name = settings.optimizer.lower()
    if name not in OPTIMIZERS:
        raise ValueError(f"optimizer: expected one of {sorted(OPTIMIZERS)}, got {settings.optimizer!r}")
    if name == "sgd":
        return OPTIMIZERS[name](model.parameters(), lr=settings.lr, momentum=settings.momentum,
                                weight_decay=settings.weight_decay)
    return OPTIMIZERS[name](model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)


def evaluate(recipe: Recipe, model: Module, loader: DataLoader, num_classes: int) -> dict[str, Any]:
    """Mean loss, accuracy and the confusion matrix (rows: true class, columns: predicted)."""
    model.eval()
    confusion = numpy.zeros((num_classes, num_classes), dtype=numpy.int64)
    total_loss, count = 0.0, 0
    with no_grad():
        for batch in loader.iterate(0):
            *inputs, target = batch
            logits = recipe.forward(model, *inputs)
            total_loss += float(compute_loss(recipe, logits, target).item()) * len(target)
            count += len(target)
            pred = backend.to_numpy(predictions(recipe, logits.data))
            true = backend.to_numpy(labels_of(recipe, target.data))
            numpy.add.at(confusion, (true, pred), 1)
    model.train()
    accuracy = float(numpy.trace(confusion) / max(confusion.sum(), 1))
    return {"loss": total_loss / max(count, 1), "accuracy": accuracy, "confusion": confusion}


Progress = Callable[[dict[str, Any]], None]


class Trainer:
    """Runs a recipe's model on a split; checkpoints to ``checkpoint`` every ``checkpoint_every``
    steps, at each epoch's end and on Ctrl-C."""

    def __init__(self, recipe: Recipe, model: Module, split: Split, settings: Settings,
                 checkpoint: str | Path | None = None, checkpoint_every: int = 0,
                 progress: Progress | None = None) -> None:
        self.recipe, self.model, self.split, self.settings = recipe, model, split, settings
        self.optimizer = make_optimizer(model, settings)
        self.train_loader = DataLoader(split.train, settings.batch_size, shuffle=True, seed=settings.seed)
        self.test_loader = DataLoader(split.test, max(settings.batch_size, 256))
        self.checkpoint = Path(checkpoint) if checkpoint else None
        self.checkpoint_every = checkpoint_every
        self.progress = progress
        self.epoch = self.batch = self.step = 0
        self.history = History()
        self.num_classes = int(split.info.get("num_classes", 2))

    # ----- checkpoints ----------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return {"kind": "training", "recipe": self.recipe.name, "dataset": self.split.info.get("name"),
                "settings": self.settings.as_dict(), "model_config": self.recipe.config(self.split.info),
                "model": dict(self.model.state_dict()), "optimizer": self.optimizer.state_dict(),
                "epoch": self.epoch, "batch": self.batch, "step": self.step, "history": self.history.epochs}

    def save(self) -> None:
        if self.checkpoint is not None:
            io.save(self.state(), self.checkpoint)

    def restore(self, path: str | Path) -> None:
        """Continue from a checkpoint of the same recipe and settings."""
        state = io.load(path)
        if state.get("kind") != "training" or state.get("recipe") != self.recipe.name:
            raise TrainingError(f"resume: {path} is a checkpoint of {state.get('recipe')!r}, "
                                f"not of {self.recipe.name!r}")
        try:
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
        except (KeyError, ValueError) as exc:
            raise TrainingError(f"resume: {path} does not fit this model: {exc}") from exc
        self.epoch, self.batch, self.step = int(state["epoch"]), int(state["batch"]), int(state["step"])
        self.history = History(list(state.get("history", [])))

    # ----- the loop -------------------------------------------------------------------------
    def train_step(self, batch: tuple[Tensor, ...]) -> tuple[float, int]:
        *inputs, target = batch
        logits = self.recipe.forward(self.model, *inputs)
        loss = compute_loss(self.recipe, logits, target)
        value = float(loss.item())
        if not math.isfinite(value):
            raise TrainingError(f"loss is {value} at step {self.step} (epoch {self.epoch + 1}, "
                                f"batch {self.batch}); lower --lr or enable gradient clipping")
        self.optimizer.zero_grad()
        loss.backward()
        self._check_grads()
        if self.settings.clip:
            clip_grad_norm(self.model.parameters(), self.settings.clip)
        self.optimizer.step()
        correct = int((predictions(self.recipe, logits.data) == labels_of(self.recipe, target.data)).sum())
        return value, correct

    def _check_grads(self) -> None:
        for name, p in self.model.named_parameters():
            if p.grad is not None and not bool(p.xp.isfinite(p.grad).all()):
                raise TrainingError(f"gradient of {name} has NaN/inf at step {self.step} "
                                    f"(epoch {self.epoch + 1}, batch {self.batch})")

    def fit(self) -> History:
        """Train until ``settings.epochs``; returns the history (also kept on the trainer)."""
        try:
            while self.epoch < self.settings.epochs:
                self._run_epoch()
        except KeyboardInterrupt:
            self.save()
            raise
        return self.history

    def _run_epoch(self) -> None:
        start, seen, loss_sum, correct = time.perf_counter(), 0, 0.0, 0
        total = len(self.train_loader)
        for batch in self.train_loader.iterate(self.epoch, self.batch):
            value, right = self.train_step(batch)
            n = len(batch[-1])
            seen, loss_sum, correct = seen + n, loss_sum + value * n, correct + right
            self.batch += 1
            self.step += 1
            if self.checkpoint_every and self.step % self.checkpoint_every == 0:
                self.save()
            if self.progress:
                elapsed = time.perf_counter() - start
                self.progress({"epoch": self.epoch + 1, "epochs": self.settings.epochs, "batch": self.batch,
                               "batches": total, "loss": loss_sum / seen, "accuracy": correct / seen,
                               "samples_per_s": seen / max(elapsed, 1e-9)})
        test = evaluate(self.recipe, self.model, self.test_loader, self.num_classes)
        record = {"epoch": self.epoch + 1, "train_loss": loss_sum / max(seen, 1),
                  "train_accuracy": correct / max(seen, 1), "test_loss": test["loss"],
                  "test_accuracy": test["accuracy"], "seconds": time.perf_counter() - start}
        self.history.epochs.append(record)
        self.epoch, self.batch = self.epoch + 1, 0
        self.save()
        if self.progress:
            self.progress({"end_of_epoch": True, **record, "epochs": self.settings.epochs})
