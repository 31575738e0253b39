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

    The loss sum and the confusion counts are summed on the device and read once, at the end.
    ``reduce`` (data parallel: each rank's loader holds its shard) sums a float64 host array over
    the ranks; the loss sum, the count and the confusion matrix are reduced together, so every rank
    gets the metrics of the whole split."""
    model.eval()
    cells = num_classes * num_classes
    sums: list[Any] | None = None  # [loss sum (float64), confusion counts (int64), labels out of range]
    count = 0
    with no_grad():
        for batch in loader.iterate(0):
            *inputs, target = batch
            if len(target) == 0:  # this rank's part of a short last batch
                continue
            logits = recipe.forward(model, *inputs)
            term = compute_loss(recipe, logits, target).data.astype("float64") * len(target)
            true = labels_of(recipe, target.data).astype("int64")
            pred = predictions(recipe, logits.data).astype("int64")
            xp = backend.get_array_module(true)
            valid = (true >= 0) & (true < num_classes) & (pred >= 0) & (pred < num_classes)
            if sums is None:
                sums = [term, xp.zeros(cells, dtype="int64"), (~valid).sum()]
            else:
                sums = [sums[0] + term, sums[1], sums[2] + (~valid).sum()]
            backend.scatter_add(xp, sums[1], xp.where(valid, true * num_classes + pred, 0), valid.astype("int64"))
            count += len(target)
    model.train()
    if sums is None:  # no batch here (an empty split, or this rank's shard of a tiny one)
        read = numpy.zeros(cells + 2)
    else:
        xp = backend.get_array_module(sums[1])
        read = backend.to_numpy(xp.concatenate([sums[1].astype("float64"),  # the one host sync
                                                xp.stack([sums[0], sums[2].astype("float64")])]))
    if reduce is not None:
        summed = reduce(numpy.concatenate([read, [float(count)]]).astype(numpy.float64))
        read, count = summed[:-1], int(round(summed[-1]))
    confusion = numpy.rint(read[:cells]).astype(numpy.int64).reshape(num_classes, num_classes)
    if read[-1]:
        raise ValueError(f"evaluate: {int(read[-1])} label(s) or prediction(s) outside the {num_classes} classes "
                         f"0..{num_classes - 1}")
    accuracy = float(numpy.trace(confusion) / max(confusion.sum(), 1))
    return {"loss": float(read[cells]) / max(count, 1), "accuracy": accuracy, "confusion": confusion}
