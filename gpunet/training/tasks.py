"""What a run optimises and counts: a loss, and whether and how accuracy is counted.

A :class:`Task` is the loss the Trainer minimises plus an optional ``correct(logits, target)``
that counts the right predictions of a batch as a device array (no host sync). Built-in tasks:
``cross_entropy`` (argmax), ``bce``/``perceptron`` (one logit, ``logit > 0`` vs ``target > 0.5``),
``mse`` (regression: no accuracy at all). :func:`make_task` also takes a loss callable and a
user metric.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gpunet import functional as F
from gpunet.autograd import Tensor

LossFn = Callable[[Tensor, Tensor], Tensor]
Counter = Callable[[Any, Any], Any]

LOSSES: dict[str, LossFn] = {"cross_entropy": F.cross_entropy, "bce": F.binary_cross_entropy_with_logits,
                             "perceptron": F.perceptron_loss, "mse": F.mse_loss}


def _call(model: Any, *inputs: Any) -> Any:
    return model(*inputs)


def argmax_correct(logits: Any, target: Any) -> Any:
    """Correct count of a multi-class batch: ``argmax(logits) == target`` (a device scalar)."""
    return (logits.argmax(axis=1) == target).sum()


def binary_correct(logits: Any, target: Any) -> Any:
    """Correct count of a one-logit batch: ``logit > 0`` against ``target > 0.5``."""
    return ((logits[:, 0] > 0).astype("int64") == (target[:, 0] > 0.5).astype("int64")).sum()


@dataclass(frozen=True)
class Task:
    """``loss(output, target)``; ``correct(logits, target)`` (raw arrays -> device count) or None
    when the task has no accuracy (regression); ``forward(model, *inputs)`` gives the output."""

    name: str
    loss: LossFn
    correct: Counter | None = None
    forward: Callable[..., Any] = _call

    @property
    def accuracy(self) -> bool:
        """Whether accuracy is counted (and reported)."""
        return self.correct is not None

    @property
    def classes(self) -> bool:
        """Whether accuracy is the built-in class count of its loss (so a confusion matrix applies)."""
        return self.correct is not None and _DEFAULT_COUNTERS.get(self.name) is self.correct


_DEFAULT_COUNTERS: dict[str, Counter | None] = {"cross_entropy": argmax_correct, "bce": binary_correct,
                                                "perceptron": binary_correct, "mse": None}


def make_task(loss: str | LossFn | Task, accuracy: bool | Counter | None = None,
              forward: Callable[..., Any] | None = None) -> Task:
    """A Task from a loss name (``cross_entropy``, ``bce``, ``perceptron``, ``mse``) or callable.

    ``accuracy``: None counts it as the loss implies (not for ``mse`` or a callable), True counts
    argmax (binary for ``bce``/``perceptron``), False counts none, a callable is the user's counter.
    """
    if isinstance(loss, Task):
        return loss
    if isinstance(loss, str):
        if loss not in LOSSES:
            raise ValueError(f"task: loss expected one of {sorted(LOSSES)} or a callable, got {loss!r}")
        name, fn, default = loss, LOSSES[loss], _DEFAULT_COUNTERS[loss]
    elif callable(loss):
        name, fn, default = getattr(loss, "__name__", "loss"), loss, None
    else:
        raise TypeError(f"task: loss expected a name, a callable or a Task, got {type(loss).__name__}")
    if accuracy is None:
        counter = default
    elif accuracy is True:
        counter = default or argmax_correct
    elif accuracy is False:
        counter = None
    elif callable(accuracy):
        counter = accuracy
    else:
        raise TypeError(f"task: accuracy expected None, a bool or a callable, got {type(accuracy).__name__}")
    return Task(name, fn, counter, forward or _call)


def task_of(recipe: Any) -> Task:
    """The task of a recipe (anything with ``loss`` and ``forward``); a Task is returned as is."""
    if isinstance(recipe, Task):
        return recipe
    return make_task(recipe.loss, forward=recipe.forward)
