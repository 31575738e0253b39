"""Loss, predictions and test-split evaluation of a recipe's model."""

from __future__ import annotations

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
    """Class predictions (raw array) from logits: argmax, or ``logit > 0`` for binary models."""
    if recipe.loss == "cross_entropy":
        return logits.argmax(axis=1)
    return (logits[:, 0] > 0).astype("int64")


def labels_of(recipe: Recipe, target: Any) -> Any:
    """Class labels (raw array) of a target batch: as is, or ``target > 0.5`` for binary models."""
    if recipe.loss == "cross_entropy":
        return target
    return (target[:, 0] > 0.5).astype("int64")


def evaluate(recipe: Recipe, model: Module, loader: DataLoader, num_classes: int) -> dict[str, Any]:
    """Mean loss, accuracy and the confusion matrix (rows: true class, columns: predicted).

    The loss sum and the confusion counts are summed on the device and read once, at the end.
    """
    model.eval()
    cells = num_classes * num_classes
    sums: list[Any] | None = None  # [loss sum (float64), confusion counts (int64), labels out of range]
    count = 0
    with no_grad():
        for batch in loader.iterate(0):
            *inputs, target = batch
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
    if sums is None:
        return {"loss": 0.0, "accuracy": 0.0, "confusion": numpy.zeros((num_classes, num_classes), dtype=numpy.int64)}
    xp = backend.get_array_module(sums[1])
    read = backend.to_numpy(xp.concatenate([sums[1].astype("float64"),  # the one host sync
                                            xp.stack([sums[0], sums[2].astype("float64")])]))
    confusion = read[:cells].astype(numpy.int64).reshape(num_classes, num_classes)
    if read[-1]:
        raise ValueError(f"evaluate: {int(read[-1])} label(s) or prediction(s) outside the {num_classes} classes "
                         f"0..{num_classes - 1}")
    accuracy = float(numpy.trace(confusion) / max(confusion.sum(), 1))
    return {"loss": float(read[cells]) / max(count, 1), "accuracy": accuracy, "confusion": confusion}
