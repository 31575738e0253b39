"""``fit``: train any Module on DataLoaders or arrays, with callbacks and an LR scheduler.

A thin wrapper over :class:`~gpunet.training.trainer.Trainer`, the one training loop, so a ``fit``
run gets its deferred device-side metrics, NaN/inf roll-back naming the step, checkpoints and
exact resume.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from gpunet.autograd import Tensor
from gpunet.nn.module import Module
from gpunet.optim import Optimizer
from gpunet.training.callbacks import Callback
from gpunet.training.tasks import LOSSES, Counter, make_task
from gpunet.training.trainer import Trainer

__all__ = ["LOSSES", "fit", "fit_trainer"]


def fit_trainer(model: Module, optimizer: Optimizer, loss: str | Callable[[Tensor, Tensor], Tensor], train: Any,
                validation: Any = None, *, epochs: int = 1, batch_size: int = 32, seed: int = 0,
                scheduler: Any = None, callbacks: Sequence[Callback] = (), accuracy: bool | Counter | None = None,
                checkpoint: str | Path | None = None, check_every: int = 25) -> Trainer:
    """The Trainer that :func:`fit` runs (``checkpoint``/``check_every`` as the Trainer's)."""
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"fit: epochs expected an int >= 1, got {epochs!r}")
    return Trainer(model, optimizer, make_task(loss, accuracy), train, validation, epochs=epochs,
                   batch_size=batch_size, seed=seed, scheduler=scheduler, callbacks=callbacks,
                   checkpoint=checkpoint, check_every=check_every)


def fit(model: Module, optimizer: Optimizer, loss: str | Callable[[Tensor, Tensor], Tensor], train: Any,
        validation: Any = None, *, epochs: int = 1, batch_size: int = 32, seed: int = 0,
        scheduler: Any = None, callbacks: Sequence[Callback] = (), accuracy: bool | Counter | None = None,
        checkpoint: str | Path | None = None, check_every: int = 25) -> list[dict[str, float]]:
    """Train ``model`` for ``epochs``; returns the per-epoch records (epoch, train_loss, test_loss, ...).

    ``train``/``validation``: DataLoaders or ``(x, y)`` arrays. ``loss``: ``cross_entropy``, ``bce``,
    ``perceptron``, ``mse`` or a callable. ``accuracy`` defaults to on for the classification losses
    (none for ``mse``: no ``*_accuracy`` keys); a callable ``(logits, target) -> correct count`` is
    a metric of one's own. ``ReduceLROnPlateau`` is stepped with the validation (else train) loss.
    """
    return fit_trainer(model, optimizer, loss, train, validation, epochs=epochs, batch_size=batch_size, seed=seed,
                       scheduler=scheduler, callbacks=callbacks, accuracy=accuracy, checkpoint=checkpoint,
                       check_every=check_every).fit().epochs
