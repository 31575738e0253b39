"""The training loop: epochs over a DataLoader, metrics, checkpoints, exact resume.

A run is fully determined by (recipe, seed, hyperparameters): the initial weights come from the
seeded generator and each epoch's shuffle from ``(seed, epoch)``, so resuming from a checkpoint
(model, optimizer, position) reproduces the uninterrupted run bit for bit on the CPU.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy

from gpunet import io, random
from gpunet.autograd import Tensor
from gpunet.data import DataLoader, Split
from gpunet.nn.module import Module
from gpunet.optim import OPTIMIZERS, Optimizer, clip_grad_norm
from gpunet.training.checkpoint import check_header, check_resumable
from gpunet.training.errors import TrainingError
from gpunet.training.metrics import compute_loss, evaluate, labels_of, predictions
from gpunet.training.recipes import Recipe
from gpunet.training.settings import History, Settings
from gpunet.training.signals import deferred_interrupts


def make_optimizer(model: Module, settings: Settings) -> Optimizer:
    """The optimizer named by ``settings`` over the model's parameters."""
    name = settings.optimizer.lower()
    if name not in OPTIMIZERS:
        raise ValueError(f"optimizer: expected one of {sorted(OPTIMIZERS)}, got {settings.optimizer!r}")
    if name == "sgd":
        return OPTIMIZERS[name](model.parameters(), lr=settings.lr, momentum=settings.momentum,
                                weight_decay=settings.weight_decay)
    return OPTIMIZERS[name](model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)


Progress = Callable[[dict[str, Any]], None]


class Trainer:
    """Runs a recipe's model on a split; checkpoints to ``checkpoint`` every ``checkpoint_every``
    steps, at each epoch's end and on Ctrl-C."""

    def __init__(self, recipe: Recipe, model: Module, split: Split, settings: Settings,
                 checkpoint: str | Path | None = None, checkpoint_every: int = 0,
                 progress: Progress | None = None, distributed: bool = False) -> None:
        self.recipe, self.model, self.split, self.settings = recipe, model, split, settings
        self.optimizer = make_optimizer(model, settings)
        self.train_loader = DataLoader(split.train, settings.batch_size, shuffle=True, seed=settings.seed)
        self.test_loader = DataLoader(split.test, max(settings.batch_size, 256))
        self.checkpoint = Path(checkpoint) if checkpoint else None
        self.checkpoint_every = checkpoint_every
        self.progress = progress
        self.epoch = self.batch = self.step = 0
        self.totals = _empty_totals()  # running sums of the current epoch (kept in checkpoints)
        self.history = History()
        self.num_classes = int(split.info.get("num_classes", 2))
        self.ddp: Any = None  # DistributedDataParallel when ``distributed`` (gpunet.distributed.init() first)
        if distributed:
            self._setup_distributed()

    # ----- data parallel (gpunet.distributed) -------------------------------------------------
    def _setup_distributed(self) -> None:
        """Each rank trains on its part of every global batch (``batch_size`` stays global) with
        gradients averaged by DistributedDataParallel, and evaluates its shard of the test split
        (the sums are reduced: the metrics are those of the whole split)."""
        from gpunet import distributed as dist

        sampler = dist.DistributedSampler(len(self.split.train), self.settings.batch_size,
                                          seed=self.settings.seed, order=self.train_loader.order)
        self.train_loader.batch_sampler = sampler
        self.test_loader.batch_sampler = dist.DistributedSampler(len(self.split.test), self.test_loader.batch_size,
                                                                 shuffle=False)
        self.ddp = dist.DistributedDataParallel(self.model)

    def _global_totals(self) -> dict[str, float]:
        """The epoch's running sums over all ranks (a collective: every rank calls it)."""
        if self.ddp is None:
            return dict(self.totals)
        from gpunet.distributed import allreduce_sum

        t = self.totals
        seen, loss_sum, correct = allreduce_sum([t["seen"], t["loss_sum"], t["correct"]], "epoch totals")
        return {"seen": int(seen), "loss_sum": float(loss_sum), "correct": int(correct)}

    # ----- checkpoints ----------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """Everything an exact resume needs: weights, optimizer buffers, RNG, position, totals."""
        return {"kind": "training", "recipe": self.recipe.name, "dataset": self.split.info.get("name"),
                "settings": self.settings.as_dict(), "model_config": self.recipe.config(self.split.info),
                "model": dict(self.model.state_dict()), "optimizer": self.optimizer.state_dict(),
                "rng": random.get_state(), "epoch": self.epoch, "batch": self.batch, "step": self.step,
                "totals": self._global_totals(), "history": self.history.epochs}

    def save(self) -> None:
        if self.checkpoint is not None:
            state = self.state()  # a collective when distributed: every rank builds it, rank 0 writes
            if self.ddp is None or _rank() == 0:
                io.save(state, self.checkpoint)

    def restore(self, path: str | Path) -> None:
        """Continue from a checkpoint of the same recipe, model and settings (``epochs`` may differ)."""
        state = io.load(path)
        check_header(state, path, "resume")  # the schema (types and ranges), before anything is compared
        self._check_compatible(state, path)
        check_resumable(state, path, self.model, self.optimizer, len(self.train_loader))
        try:
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
        except (KeyError, ValueError, TypeError, AttributeError) as exc:
            raise TrainingError(f"resume: {path} does not fit this model: {exc}") from exc
        random.set_state(state["rng"])
        self.epoch, self.batch, self.step = state["epoch"], state["batch"], state["step"]
        totals = dict(state["totals"])
        if self.ddp is not None and _rank() != 0:
            totals = {}  # the file holds all ranks' sums; rank 0 carries them on
        self.totals = {**_empty_totals(), **totals}
        self.history = History(list(state["history"]))

    def _check_compatible(self, state: dict[str, Any], path: str | Path) -> None:
        if state.get("recipe") != self.recipe.name:
            raise TrainingError(f"resume: {path} is a checkpoint of {state.get('recipe')!r}, "
                                f"not of {self.recipe.name!r}")
        expected = json.loads(json.dumps(self.recipe.config(self.split.info)))  # tuples as saved: lists
        if state.get("model_config") != expected:
            raise TrainingError(f"resume: {path} holds a model with config {state.get('model_config')}, "
                                f"expected {expected}")
        if state.get("dataset") != self.split.info.get("name"):
            raise TrainingError(f"resume: {path} was trained on {state.get('dataset')!r}, "
                                f"not on {self.split.info.get('name')!r}")
        saved, now = state.get("settings") or {}, self.settings.as_dict()
        differ = [f"{k} {saved.get(k)!r} (checkpoint) vs {v!r} (now)" for k, v in now.items()
                  if k != "epochs" and saved.get(k) != v]
        if differ:
            raise TrainingError(f"resume: {path} was written with other settings: {', '.join(differ)}; "
                                f"resume with the same options (only --epochs may change)")

    # ----- the loop -------------------------------------------------------------------------
    def train_step(self, batch: tuple[Tensor, ...]) -> tuple[float, int]:
        # overflow is reported once, as a TrainingError naming the step, not as NumPy warnings
        with numpy.errstate(over="ignore", invalid="ignore", divide="ignore"):
            return self._train_step(batch)

    def _train_step(self, batch: tuple[Tensor, ...]) -> tuple[float, int]:
        *inputs, target = batch
        if self.ddp is not None and len(target) == 0:
            return self._idle_step()
        logits = self.recipe.forward(self.model, *inputs)
        loss = compute_loss(self.recipe, logits, target)
        value = float(loss.item())
        if not math.isfinite(value):
            raise TrainingError(f"{self.recipe.loss} loss is {value} at step {self.step + 1} "
                                f"(epoch {self.epoch + 1}, batch {self.batch + 1}); {self._nan_cause(batch)}")
        self.optimizer.zero_grad()
        if self.ddp is not None:
            self.ddp.grad_scale = self.train_loader.batch_sampler.weight(self.batch, len(target))
        loss.backward()
        if self.ddp is not None:
            self.ddp.finish()  # usually done by the last gradient hook already
        self._check_grads(batch)
        if self.settings.clip:
            clip_grad_norm(self.model.parameters(), self.settings.clip)
        correct = int((predictions(self.recipe, logits.data) == labels_of(self.recipe, target.data)).sum())
        with deferred_interrupts():  # parameters and position change together, or not at all
            self.optimizer.step()
            n = len(target)
            self.totals = {"seen": self.totals["seen"] + n, "loss_sum": self.totals["loss_sum"] + value * n,
                           "correct": self.totals["correct"] + correct}
            self.batch += 1
            self.step += 1
        return value, correct

    def _idle_step(self) -> tuple[float, int]:
        """A rank with no samples in this (short, last) global batch still takes part in the
        all-reduce, with zero gradients, and applies the same update as its peers."""
        self.optimizer.zero_grad()
        self.ddp.skip_step()
        if self.settings.clip:
            clip_grad_norm(self.model.parameters(), self.settings.clip)
        with deferred_interrupts():
            self.optimizer.step()
            self.batch += 1
            self.step += 1
        return 0.0, 0

    def _check_grads(self, batch: tuple[Tensor, ...]) -> None:
        """One host sync per step: NaN/inf anywhere makes the sum of all gradients non-finite."""
        grads = [(name, p) for name, p in self.model.named_parameters() if p.grad is not None]
        if not grads or math.isfinite(float(sum(p.grad.sum(dtype="float64") for _, p in grads))):
            return
        name = next((name for name, p in grads if not bool(p.xp.isfinite(p.grad).all())), None)
        if name is None:  # the float64 sum overflowed on finite gradients
            return
        raise TrainingError(f"gradient of {name} has NaN/inf at step {self.step + 1} "
                            f"(epoch {self.epoch + 1}, batch {self.batch + 1}); {self._nan_cause(batch)}")

    def _nan_cause(self, batch: tuple[Tensor, ...]) -> str:
        """The likely cause of a NaN/inf, from a check of the batch and the weights (only after one)."""
        *inputs, target = batch
        for label, tensor in [*((f"input {i + 1}" if len(inputs) > 1 else "the input", t)
                                for i, t in enumerate(inputs)), ("the target", target)]:
            data = tensor.data
            if data.dtype.kind in "fc" and not bool(tensor.xp.isfinite(data).all()):
                bad = int((~tensor.xp.isfinite(data)).sum())
                return (f"the data is the cause: {label} of this batch holds {bad} NaN/inf value(s); "
                        f"clean the dataset (lowering --lr will not help)")
        weights = next((name for name, p in self.model.named_parameters() if not bool(p.xp.isfinite(p.data).all())),
                       None)
        if weights is not None:
            return f"lower --lr or use --clip (the batch is finite; {weights} already holds NaN/inf)"
        return "lower --lr or use --clip (the batch is finite: the optimisation diverged, not the data)"

    def fit(self) -> History:
        """Train until ``settings.epochs``; returns the history (also kept on the trainer)."""
        try:
            while self.epoch < self.settings.epochs:
                self._run_epoch()
        except KeyboardInterrupt as exc:
            # distributed: saving is a collective, safe only when every rank stopped after the same
            # step (gpunet.distributed.agreed_interrupts); otherwise the last checkpoint stands
            if self.ddp is None or getattr(exc, "all_ranks", False):
                self.save()
            raise
        return self.history

    def _run_epoch(self) -> None:
        self.optimizer.lr = self.settings.lr_at(self.epoch)
        start = time.perf_counter()
        total = len(self.train_loader)
        for batch in self.train_loader.iterate(self.epoch, self.batch):
            self.train_step(batch)
            if self.checkpoint_every and self.step % self.checkpoint_every == 0:
                self.save()
            if self.progress:
                seen = max(self.totals["seen"], 1)
                self.progress({"epoch": self.epoch + 1, "epochs": self.settings.epochs, "batch": self.batch,
                               "batches": total, "step": self.step, "loss": self.totals["loss_sum"] / seen,
                               "accuracy": self.totals["correct"] / seen,
                               "samples_per_s": self.totals["seen"] / max(time.perf_counter() - start, 1e-9)})
        test = evaluate(self.recipe, self.model, self.test_loader, self.num_classes,
                        reduce=_sum_over_ranks if self.ddp is not None else None)
        totals = self._global_totals()
        seen = max(totals["seen"], 1)
        record = {"epoch": self.epoch + 1, "train_loss": totals["loss_sum"] / seen,
                  "train_accuracy": totals["correct"] / seen, "test_loss": test["loss"],
                  "test_accuracy": test["accuracy"], "seconds": time.perf_counter() - start}
        with deferred_interrupts():
            self.history.epochs.append(record)
            self.epoch, self.batch, self.totals = self.epoch + 1, 0, _empty_totals()
        self.save()
        if self.progress:
            self.progress({"end_of_epoch": True, **record, "epochs": self.settings.epochs})


def _rank() -> int:
    from gpunet.distributed import get_rank

    return get_rank()


def _sum_over_ranks(values: numpy.ndarray) -> numpy.ndarray:
    from gpunet.distributed import allreduce_sum

    return allreduce_sum(values, "evaluation sums")


def _empty_totals() -> dict[str, float]:
    return {"seen": 0, "loss_sum": 0.0, "correct": 0}
