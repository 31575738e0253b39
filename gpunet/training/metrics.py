"""Loss, predictions and test-split evaluation of a recipe's model."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy

from gpunet import backend
from gpunet import functional as F
from gpunet.autograd import Tensor, no_grad
from gpunet.data import DataLoader
from gpunet.nn.module import Module
from gpunet.training.recipes import Recipe


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
    """Class predictions (raw array) from logits: argmax, or ``logit > 0`` for binary models.

    Regression (``mse``) has no classes: every sample is class 0, so the counts stay integers and
    the accuracy is a constant 1 that the reports leave out (see ``Recipe.task``).
    """
    if recipe.loss == "mse":
        return _no_class(logits)
    if recipe.loss == "cross_entropy":
        return logits.argmax(axis=1)
    return (logits[:, 0] > 0).astype("int64")


def labels_of(recipe: Recipe, target: Any) -> Any:
    """Class labels (raw array) of a target batch: as is, or ``target > 0.5`` for binary models."""
    if recipe.loss == "mse":
        return _no_class(target)
    if recipe.loss == "cross_entropy":
        return target
    return (target[:, 0] > 0.5).astype("int64")


def _no_class(array: Any) -> Any:
    return backend.get_array_module(array).zeros(len(array), dtype="int64")


def evaluate(recipe: Recipe, model: Module, loader: DataLoader, num_classes: int,
             reduce: Callable[[numpy.ndarray], numpy.ndarray] | None = None) -> dict[str, Any]:
    """Mean loss, accuracy and the confusion matrix (rows: true class, columns: predicted).

    ``reduce`` (data parallel: each rank's loader holds its shard) sums a float64 host array over
    the ranks; the loss sum, the count and the confusion matrix are reduced together, so every rank
    gets the metrics of the whole split."""
    model.eval()
    confusion = numpy.zeros((num_classes, num_classes), dtype=numpy.int64)
    total_loss, count = 0.0, 0
    with no_grad():
        for batch in loader.iterate(0):
            *inputs, target = batch
            if len(target) == 0:  # this rank's part of a short last batch
                continue
            logits = recipe.forward(model, *inputs)
            total_loss += float(compute_loss(recipe, logits, target).item()) * len(target)
            count += len(target)
            pred = backend.to_numpy(predictions(recipe, logits.data))
            true = backend.to_numpy(labels_of(recipe, target.data))
            numpy.add.at(confusion, (true, pred), 1)
    model.train()
    if reduce is not None:
        sums = reduce(numpy.concatenate([[total_loss, count], confusion.ravel()]).astype(numpy.float64))
        total_loss, count = float(sums[0]), int(round(sums[1]))
        confusion = numpy.rint(sums[2:]).astype(numpy.int64).reshape(confusion.shape)
    accuracy = float(numpy.trace(confusion) / max(confusion.sum(), 1))
    return {"loss": total_loss / max(count, 1), "accuracy": accuracy, "confusion": confusion}
