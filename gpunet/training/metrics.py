"""Loss, predictions and test-split evaluation of a task's (or recipe's) model."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy

from gpunet import backend
from gpunet.autograd import Tensor, no_grad
from gpunet.data import DataLoader
from gpunet.nn.module import Module
from gpunet.training.tasks import Task, task_of


def compute_loss(task: Any, logits: Tensor, target: Tensor) -> Tensor:
    """The task's (or recipe's) loss on the model's output."""
    return task_of(task).loss(logits, target)


def predictions(task: Any, logits: Any) -> Any:
    """Class predictions (raw array) from logits: argmax, or ``logit > 0`` for binary models."""
    name = _classifying(task, "predictions")
    return logits.argmax(axis=1) if name == "cross_entropy" else (logits[:, 0] > 0).astype("int64")


def labels_of(task: Any, target: Any) -> Any:
    """Class labels (raw array) of a target batch: as is, or ``target > 0.5`` for binary models."""
    name = _classifying(task, "labels_of")
    return target if name == "cross_entropy" else (target[:, 0] > 0.5).astype("int64")


def _classifying(task: Any, op: str) -> str:
    name = task_of(task).name
    if name not in ("cross_entropy", "bce", "perceptron"):
        raise ValueError(f"{op}: expected a classification loss (cross_entropy, bce, perceptron), got {name!r}")
    return name


def evaluate(task: Any, model: Module, loader: DataLoader, num_classes: int | None,
             reduce: Callable[[numpy.ndarray], numpy.ndarray] | None = None) -> dict[str, Any]:
    """Mean loss, accuracy and the confusion matrix (rows: true class, columns: predicted).

    ``task``: a Task or a recipe. Without ``num_classes``, for a counter of one's own or a task
    without accuracy it gives the loss and, when counted, the accuracy (no confusion matrix).

    The loss sum and the confusion counts are summed on the device and read once, at the end.
    ``reduce`` (data parallel: each rank's loader holds its shard) sums a float64 host array over
    the ranks; the loss sum, the count and the confusion matrix are reduced together, so every rank
    gets the metrics of the whole split."""
    task = task_of(task)
    if num_classes is None or not task.classes:
        return _loss_and_count(task, model, loader, reduce)
    model.eval()
    cells = num_classes * num_classes
    sums: list[Any] | None = None  # [loss sum (float64), confusion counts (int64), labels out of range]
    count = 0
    with no_grad():
        for batch in loader.iterate(0):
            *inputs, target = batch
            if len(target) == 0:  # this rank's part of a short last batch
                continue
            logits = task.forward(model, *inputs)
            term = compute_loss(task, logits, target).data.astype("float64") * len(target)
            true = labels_of(task, target.data).astype("int64")
            pred = predictions(task, logits.data).astype("int64")
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


def _loss_and_count(task: Task, model: Module, loader: DataLoader,
                    reduce: Callable[[numpy.ndarray], numpy.ndarray] | None) -> dict[str, Any]:
    """Mean loss and (when the task counts it) accuracy, summed on the device and read once."""
    model.eval()
    sums: Any = None  # [loss sum, correct count] as one float64 device vector
    count = 0
    with no_grad():
        for *inputs, target in loader.iterate(0):
            if len(target) == 0:  # this rank's part of a short last batch
                continue
            out = task.forward(model, *inputs)
            term = task.loss(out, target).data.astype("float64") * len(target)
            xp = backend.get_array_module(term)
            correct = task.correct(out.data, target.data) if task.correct else xp.zeros((), dtype="int64")
            pair = xp.stack([term.reshape(()), xp.asarray(correct).astype("float64").reshape(())])
            sums = pair if sums is None else sums + pair
            count += len(target)
    model.train()
    read = numpy.zeros(2) if sums is None else backend.to_numpy(sums).astype(numpy.float64)  # the one host sync
    if reduce is not None:
        summed = reduce(numpy.concatenate([read, [float(count)]]))
        read, count = summed[:2], int(round(summed[2]))
    result: dict[str, Any] = {"loss": float(read[0]) / max(count, 1)}
    if task.accuracy:
        result["accuracy"] = float(read[1]) / max(count, 1)
    return result
