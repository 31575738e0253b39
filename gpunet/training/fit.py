"""``fit``: train any Module on DataLoaders or arrays, with callbacks and an LR scheduler.

Metrics are summed on the device (loss times batch size, correct count) and read once per epoch,
so a step does no host sync of its own.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from gpunet import backend
from gpunet import functional as F
from gpunet.autograd import Tensor, no_grad
from gpunet.data import DataLoader, TensorDataset
from gpunet.nn.module import Module
from gpunet.optim import Optimizer
from gpunet.training.callbacks import Callback

LOSSES: dict[str, Callable[[Tensor, Tensor], Tensor]] = {"cross_entropy": F.cross_entropy, "mse": F.mse_loss}


def _loader(op: str, data: Any, batch_size: int, shuffle: bool, seed: int) -> DataLoader | None:
    if data is None or isinstance(data, DataLoader):
        return data
    if isinstance(data, (tuple, list)) and len(data) == 2:
        return DataLoader(TensorDataset(*data), batch_size, shuffle=shuffle, seed=seed)
    raise TypeError(f"fit: {op} expected a DataLoader or an (x, y) pair, got {type(data).__name__}")


class FitLoop:
    """The state of one ``fit`` run; callbacks see it as ``trainer`` (``model``, ``optimizer``,
    ``history``, ``stop_training``)."""

    def __init__(self, model: Module, optimizer: Optimizer, loss: str | Callable[[Tensor, Tensor], Tensor],
                 accuracy: bool) -> None:
        if isinstance(loss, str):
            if loss not in LOSSES:
                raise ValueError(f"fit: loss expected one of {sorted(LOSSES)} or a callable, got {loss!r}")
            loss = LOSSES[loss]
        self.model, self.optimizer, self.loss_fn, self.accuracy = model, optimizer, loss, accuracy
        self.history: list[dict[str, float]] = []
        self.stop_training = False

    def _batch_sums(self, out: Tensor, target: Tensor, loss: Tensor) -> tuple[Any, Any]:
        n = len(target)
        correct = (out.data.argmax(axis=1) == target.data).sum() if self.accuracy else 0
        return loss.data * n, correct

    def run_epoch(self, loader: DataLoader, epoch: int, train: bool) -> dict[str, float]:
        loss_sum: Any = 0.0
        correct: Any = 0
        seen = 0
        self.model.train(train)
        for *inputs, target in loader.iterate(epoch):
            if train:
                out = self.model(*inputs)
                loss = self.loss_fn(out, target)
                self.optimizer.zero_grad()
                loss.backward()
                self.optimizer.step()
            else:
                with no_grad():
                    out = self.model(*inputs)
                    loss = self.loss_fn(out, target)
            s, c = self._batch_sums(out, target, loss)
            loss_sum, correct, seen = loss_sum + s, correct + c, seen + len(target)
        self.model.train()
        prefix = "train" if train else "test"
        loss_sum, correct = _read(loss_sum, correct)  # the epoch's one read
        logs = {f"{prefix}_loss": loss_sum / max(seen, 1)}
        if self.accuracy:
            logs[f"{prefix}_accuracy"] = correct / max(seen, 1)
        return logs


def _read(loss_sum: Any, correct: Any) -> tuple[float, float]:
    """Both device sums back in one host sync (plain numbers pass through)."""
    if not (hasattr(loss_sum, "dtype") and hasattr(correct, "dtype")):
        return float(loss_sum), float(correct)
    xp = backend.get_array_module(loss_sum)
    read = backend.to_numpy(xp.stack([loss_sum.astype("float64"), correct.astype("float64")]))
    return float(read[0]), float(read[1])


def fit(model: Module, optimizer: Optimizer, loss: str | Callable[[Tensor, Tensor], Tensor], train: Any,
        validation: Any = None, *, epochs: int = 1, batch_size: int = 32, seed: int = 0,
        scheduler: Any = None, callbacks: Sequence[Callback] = (), accuracy: bool | None = None,
        ) -> list[dict[str, float]]:
    """Train ``model`` for ``epochs``; returns the per-epoch logs (train_loss, test_loss, ...).

    ``train``/``validation``: DataLoaders or ``(x, y)`` arrays. ``accuracy`` defaults to on for
    ``loss="cross_entropy"``. ``ReduceLROnPlateau`` is stepped with the validation (else train) loss.
    """
    if not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"fit: epochs expected an int >= 1, got {epochs!r}")
    loop = FitLoop(model, optimizer, loss, accuracy if accuracy is not None else loss == "cross_entropy")
    train_loader = _loader("train", train, batch_size, True, seed)
    val_loader = _loader("validation", validation, max(batch_size, 256), False, seed)
    for cb in callbacks:
        cb.on_train_begin(loop)
    for epoch in range(epochs):
        logs = loop.run_epoch(train_loader, epoch, train=True)
        if val_loader is not None:
            logs.update(loop.run_epoch(val_loader, 0, train=False))
        if scheduler is not None:
            if type(scheduler).__name__ == "ReduceLROnPlateau":
                scheduler.step(logs.get("test_loss", logs["train_loss"]))
            else:
                scheduler.step()
        loop.history.append({"epoch": epoch + 1, **logs})
        for cb in callbacks:
            cb.on_epoch_end(epoch + 1, logs)
        if loop.stop_training:
            break
    for cb in callbacks:
        cb.on_train_end(loop.history[-1] if loop.history else {})
    return loop.history
