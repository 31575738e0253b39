"""The one training loop: any Module, epochs over DataLoaders, metrics, callbacks, exact resume.

The built-in recipes (``runs.recipe_trainer``), user models (``gpunet train FILE.py:FUNC``) and
``fit()`` all build this Trainer. A run is fully determined by (model, data, seed,
hyperparameters): the initial weights come from the seeded generator and each epoch's shuffle from
``(seed, epoch)``, so resuming from a checkpoint (model, optimizer, scheduler, position)
reproduces the uninterrupted run bit for bit on the CPU.

Host syncs: a step reads nothing back. The loss sum and the correct count stay on the device
and are read together (one sync) every ``check_every`` steps, after an epoch's first step when a
``progress`` callback shows the metrics (so it has some early), at its end and before each
checkpoint. That read is also the NaN/inf check: it reads the loss sum
and ``0 * (sum of the weights)`` together, so a NaN/inf loss in any step since the last check,
or a weight made NaN/inf by a NaN/inf gradient (every optimizer's update propagates it), makes
the read non-finite. Those steps have been applied by then, so the Trainer rolls back to its
copy of the state at the last check (weights, optimizer buffers, RNG, position, totals: what an
exact resume needs) and redoes them one at a time, each checked before its update: the bad step
raises the TrainingError naming it, with the parameters those before it. A checkpoint is written
only after a check, so it never holds a NaN update. The copy costs one set of weights and
optimizer buffers in memory; ``check_every=1`` checks each step before its update (three syncs
a step) and keeps no copy.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy

from gpunet import backend, io, random
from gpunet.autograd import Tensor
from gpunet.data import DataLoader, TensorDataset
from gpunet.nn.module import Module
from gpunet.optim import Optimizer, clip_grad_norm_on_device
from gpunet.training.callback_state import check_state_keys, restore_callbacks
from gpunet.training.callbacks import Callback
from gpunet.training.checkpoint import check_header, check_resumable
from gpunet.training.errors import TrainingError
from gpunet.training.metrics import evaluate
from gpunet.training.settings import History, Settings
from gpunet.training.signals import deferred_interrupts
from gpunet.training.tasks import LossFn, Task, make_task

Progress = Callable[[dict[str, Any]], None]
#: An LR schedule: a scheduler object (``step()`` at each epoch's end; ``step(metric)`` for
#: ReduceLROnPlateau, with the validation loss, else the train loss) or ``epoch -> lr`` (set at
#: each epoch's start).
Schedule = Any


def as_loader(op: str, data: Any, batch_size: int, shuffle: bool, seed: int) -> DataLoader | None:
    """``data`` as a DataLoader: one as is, an ``(x, y)`` pair of arrays batched (None stays None)."""
    if data is None or isinstance(data, DataLoader):
        return data
    if isinstance(data, (tuple, list)) and len(data) == 2:
        return DataLoader(TensorDataset(*data), batch_size, shuffle=shuffle, seed=seed)
    raise TypeError(f"Trainer: {op} expected a DataLoader or an (x, y) pair, got {type(data).__name__}")


def settings_of(optimizer: Optimizer, epochs: int, batch_size: int, seed: int, clip: float | None) -> Settings:
    """The settings a run with ``optimizer`` is checkpointed and resumed under."""
    return Settings(epochs=epochs, batch_size=batch_size, lr=float(optimizer.lr),
                    optimizer=type(optimizer).__name__.lower(), seed=seed,
                    momentum=float(optimizer.defaults.get("momentum", 0.0)),
                    weight_decay=float(optimizer.defaults.get("weight_decay", 0.0)), clip=clip)


class Trainer:
    """The one training loop: any Module, optimizer and task on DataLoaders or ``(x, y)`` arrays.

    ``task``: a loss name (``cross_entropy``, ``bce``, ``perceptron``, ``mse``), a loss callable or
    a :class:`~gpunet.training.tasks.Task` (loss and how accuracy is counted; none for regression).
    ``scheduler``: see :data:`Schedule`. ``callbacks``: :class:`Callback` objects (a callback may set
    ``trainer.stop_training``; their ``state_dict()`` is checkpointed by ``state_key``). Checkpoints
    go to ``checkpoint`` every ``checkpoint_every`` steps, at each epoch's end and on Ctrl-C;
    :meth:`restore` continues one exactly. ``check_every``: steps
    between reads of the metrics and NaN/inf checks (see the module docstring). ``progress`` is
    called after every step; its ``loss`` and ``accuracy`` are those of the steps up to the last
    check. ``identity`` (recipe, dataset, model_config) names the run in its checkpoints (default:
    the model's class and parameter shapes); ``settings`` overrides the ones read off the arguments
    (``batch_size`` is a train DataLoader's own).
    ``num_classes``: the confusion-checked evaluation of the built-in recipes (labels in range).
    """

    recipe: Any = None  # the built-in recipe and its split, when built by ``runs.recipe_trainer``
    split: Any = None

    def __init__(self, model: Module, optimizer: Optimizer, task: str | LossFn | Task, train: Any,
                 validation: Any = None, *, epochs: int = 1, batch_size: int = 32, seed: int = 0,
                 scheduler: Schedule = None, callbacks: Sequence[Callback] = (), clip: float | None = None,
                 checkpoint: str | Path | None = None, checkpoint_every: int = 0, progress: Progress | None = None,
                 distributed: bool = False, check_every: int = 25, identity: Mapping[str, Any] | None = None,
                 settings: Settings | None = None, num_classes: int | None = None) -> None:
        if isinstance(check_every, bool) or not isinstance(check_every, int) or check_every < 1:
            raise ValueError(f"Trainer: check_every expected an int >= 1, got {check_every!r}")
        if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
            raise ValueError(f"Trainer: epochs expected an int >= 1, got {epochs!r}")
        self.model, self.optimizer, self.task = model, optimizer, make_task(task)
        if isinstance(train, DataLoader):  # its batches are the ones a resume counts (checkpoint schema)
            batch_size = train.batch_size
        self.settings = settings or settings_of(optimizer, epochs, batch_size, seed, clip)
        self.train_loader = as_loader("train", train, self.settings.batch_size, True, self.settings.seed)
        self.test_loader = as_loader("validation", validation, max(self.settings.batch_size, 256), False,
                                     self.settings.seed)
        self.scheduler, self.callbacks = scheduler, list(callbacks)
        check_state_keys(self.callbacks)
        self.identity = dict(identity) if identity is not None else {
            "recipe": f"{type(model).__name__} (fit)", "dataset": None,
            "model_config": {"parameters": {n: [int(d) for d in p.shape] for n, p in model.named_parameters()}}}
        self.num_classes = num_classes
        self.checkpoint = Path(checkpoint) if checkpoint else None
        self.checkpoint_every = checkpoint_every
        self.progress = progress
        self.stop_training = False
        self.epoch = self.batch = self.step = 0
        self.totals = _empty_totals()  # running sums of the current epoch up to the last check (checkpointed)
        self.check_every = check_every
        self._unchecked = 0  # steps since the last check; their sums are in ``_sums``, on the device
        self._unchecked_seen = 0
        self._sums: list[Any] | None = None  # [loss sum (+ 0 * gradient sums), correct count], device arrays
        self._snapshot: dict[str, Any] | None = None  # the state at the last check (for a roll-back)
        self.history = History()
        self.ddp: Any = None  # DistributedDataParallel when ``distributed`` (gpunet.distributed.init() first)
        if distributed:
            self._setup_distributed()

    # ----- data parallel (gpunet.distributed) -------------------------------------------------
    def _setup_distributed(self) -> None:
        """Each rank trains on its part of every global batch (``batch_size`` stays global) with
        gradients averaged by DistributedDataParallel, and evaluates its shard of the validation
        data (the sums are reduced: the metrics are those of the whole set)."""
        from gpunet import distributed as dist

        sampler = dist.DistributedSampler(len(self.train_loader.dataset), self.settings.batch_size,
                                          seed=self.settings.seed, order=self.train_loader.order)
        self.train_loader.batch_sampler = sampler
        if self.test_loader is not None:
            self.test_loader.batch_sampler = dist.DistributedSampler(len(self.test_loader.dataset),
                                                                     self.test_loader.batch_size, shuffle=False)
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
        """Everything an exact resume needs: weights, optimizer buffers, RNG, position, totals
        (after a check, so never an unchecked update; a collective when distributed)."""
        self.check()
        state = {"kind": "training", "recipe": self.identity["recipe"], "dataset": self.identity.get("dataset"),
                 "settings": self.settings.as_dict(), "model_config": self.identity.get("model_config", {}),
                 "model": dict(self.model.state_dict()), "optimizer": self.optimizer.state_dict(),
                 "rng": random.get_state(), "epoch": self.epoch, "batch": self.batch, "step": self.step,
                 "totals": self._global_totals(), "history": self.history.epochs}
        if hasattr(self.scheduler, "state_dict"):
            state["scheduler"] = self.scheduler.state_dict()
        callbacks = {cb.state_key: cb.state_dict() for cb in self.callbacks}
        callbacks = {key: saved for key, saved in callbacks.items() if saved}
        if callbacks:
            state["callbacks"] = callbacks
        return state

    def save(self) -> None:
        if self.checkpoint is not None:
            state = self.state()  # a collective when distributed: every rank builds it, rank 0 writes
            if self.ddp is None or _rank() == 0:
                io.save(state, self.checkpoint)

    def restore(self, path: str | Path) -> None:
        """Continue from a checkpoint of the same run: model, settings (``epochs`` may differ), data."""
        state = io.load(path)
        check_header(state, path, "resume")  # the schema (types and ranges), before anything is compared
        self._check_compatible(state, path)
        check_resumable(state, path, self.model, self.optimizer, len(self.train_loader))
        restore_callbacks(self.callbacks, state.get("callbacks", {}), path)  # may refuse: first
        try:
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            if hasattr(self.scheduler, "load_state_dict") and "scheduler" in state:
                self.scheduler.load_state_dict(state["scheduler"])
        except (KeyError, ValueError, TypeError, AttributeError) as exc:
            raise TrainingError(f"resume: {path} does not fit this model: {exc}") from exc
        random.set_state(state["rng"])
        self.epoch, self.batch, self.step = state["epoch"], state["batch"], state["step"]
        totals = dict(state["totals"])
        if self.ddp is not None and _rank() != 0:
            totals = {}  # the file holds all ranks' sums; rank 0 carries them on
        self.totals = {**_empty_totals(), **totals}
        self.history = History(list(state["history"]))
        self._unchecked = self._unchecked_seen = 0
        self._sums = self._snapshot = None

    def _check_compatible(self, state: dict[str, Any], path: str | Path) -> None:
        name = self.identity["recipe"]
        if state.get("recipe") != name:
            raise TrainingError(f"resume: {path} is a checkpoint of {state.get('recipe')!r}, not of {name!r}")
        expected = json.loads(json.dumps(self.identity.get("model_config", {})))  # tuples as saved: lists
        if state.get("model_config") != expected:
            raise TrainingError(f"resume: {path} holds a model with config {state.get('model_config')}, "
                                f"expected {expected}")
        if state.get("dataset") != self.identity.get("dataset"):
            raise TrainingError(f"resume: {path} was trained on {state.get('dataset')!r}, "
                                f"not on {self.identity.get('dataset')!r}")
        saved, now = state.get("settings") or {}, self.settings.as_dict()
        differ = [f"{k} {saved.get(k)!r} (checkpoint) vs {v!r} (now)" for k, v in now.items()
                  if k != "epochs" and saved.get(k) != v]
        if differ:
            raise TrainingError(f"resume: {path} was written with other settings: {', '.join(differ)}; "
                                f"resume with the same options (only --epochs may change)")

    # ----- the loop -------------------------------------------------------------------------
    def train_step(self, batch: tuple[Tensor, ...]) -> None:
        """One update on ``batch``; a check (one host sync) when one is due."""
        # overflow is reported once, as a TrainingError naming the step, not as NumPy warnings
        with numpy.errstate(over="ignore", invalid="ignore", divide="ignore"):
            self._train_step(batch, checked=self.check_every == 1)
            if self.step % self.check_every == 0 or (self.batch == 1 and self.progress is not None):
                self.check()

    def _train_step(self, batch: tuple[Tensor, ...], checked: bool) -> None:
        """``checked``: read the loss and gradients before the update (host syncs), else defer."""
        *inputs, target = batch
        if not checked and self._unchecked == 0:
            self._take_snapshot()
        if self.ddp is not None and len(target) == 0:
            return self._idle_step(checked)
        logits = self.task.forward(self.model, *inputs)
        loss = self.task.loss(logits, target)
        if checked:
            value = float(loss.item())
            if not math.isfinite(value):
                raise TrainingError(f"{self.task.name} loss is {value} at step {self.step + 1} "
                                    f"(epoch {self.epoch + 1}, batch {self.batch + 1}); {self._nan_cause(batch)}")
        self.optimizer.zero_grad()
        if self.ddp is not None:
            self.ddp.grad_scale = self.train_loader.batch_sampler.weight(self.batch, len(target))
        loss.backward()
        if self.ddp is not None:
            self.ddp.finish()  # usually done by the last gradient hook already
        if checked:
            self._check_grads(batch)
        if self.settings.clip:
            clip_grad_norm_on_device(self.model.parameters(), self.settings.clip)
        correct = self.task.correct(logits.data, target.data) if self.task.correct else 0
        n = len(target)
        with deferred_interrupts():  # parameters and position change together, or not at all
            self.optimizer.step()
            if checked:
                self.totals = {"seen": self.totals["seen"] + n, "loss_sum": self.totals["loss_sum"] + value * n,
                               "correct": self.totals["correct"] + int(correct)}  # 0 without accuracy
            else:
                self._add(loss.data, correct, n)
            self.batch += 1
            self.step += 1

    def _add(self, loss: Any, correct: Any, n: int) -> None:
        """Sum an unchecked step's loss and correct count on the device (in the order a host sum takes)."""
        term = loss.astype("float64") * n
        if self._sums is None:
            self._sums = [term + self.totals["loss_sum"], None if self.task.correct is None
                          else correct + self.totals["correct"]]
        else:
            self._sums = [self._sums[0] + term, None if self._sums[1] is None else self._sums[1] + correct]
        self._unchecked += 1
        self._unchecked_seen += n

    def _idle_step(self, checked: bool) -> None:
        """A rank with no samples in this (short, last) global batch still takes part in the
        all-reduce, with zero gradients, and applies the same update as its peers."""
        self.optimizer.zero_grad()
        self.ddp.skip_step()
        if self.settings.clip:
            clip_grad_norm_on_device(self.model.parameters(), self.settings.clip)
        with deferred_interrupts():
            self.optimizer.step()
            self.batch += 1
            self.step += 1
            if not checked:
                self._unchecked += 1

    # ----- checks: the one host sync ------------------------------------------------------------
    def check(self) -> None:
        """Read the sums of the unchecked steps (one host sync) into ``totals``. On NaN/inf, roll
        back to the last check and redo those steps checked: the bad one raises its TrainingError.
        A collective when distributed (every rank calls it at the same step)."""
        if self._unchecked == 0:
            return
        values = [] if self._sums is None else [self._sums[0]]
        if self._sums is not None and self._sums[1] is not None:
            values.append(self._sums[1].astype("float64"))
        weights = [p.data for p in self.model.parameters() if p.data.dtype.kind in "fc"]
        if weights:
            values.append(sum(w.sum(dtype="float64") for w in weights) * 0.0)  # NaN/inf when a weight is
        read = backend.to_numpy(backend.get_array_module(values[0]).stack(values)).tolist() if values else []
        finite = all(math.isfinite(v) for v in read)
        if self.ddp is not None:  # every rank takes the same branch (the gradients are shared)
            from gpunet.distributed import allreduce_sum

            finite = not allreduce_sum([0 if finite else 1], "NaN/inf check")[0]
        if finite:
            if self._sums is not None:
                correct = int(read[1]) if self._sums[1] is not None else self.totals["correct"]
                self.totals = {"seen": self.totals["seen"] + self._unchecked_seen, "loss_sum": read[0],
                               "correct": correct}
            self._unchecked = self._unchecked_seen = 0
            self._sums = self._snapshot = None
            return
        target = self.step
        self._roll_back()
        with numpy.errstate(over="ignore", invalid="ignore", divide="ignore"):
            batches = self.train_loader.iterate(self.epoch, self.batch)
            try:
                while self.step < target:  # the bad step raises; none may, if a float64 sum overflowed
                    self._train_step(next(batches), checked=True)
            finally:
                batches.close()

    def _take_snapshot(self) -> None:
        self._snapshot = {"model": {k: v.copy() for k, v in self.model.state_dict().items()},
                          "optimizer": _copy_arrays(self.optimizer.state_dict()), "rng": random.get_state(),
                          "position": (self.epoch, self.batch, self.step), "totals": dict(self.totals)}

    def _roll_back(self) -> None:
        snap = self._snapshot
        if snap is None:
            raise RuntimeError("Trainer: no state to roll back to (a step ran outside train_step)")
        self.model.load_state_dict(snap["model"])
        self.optimizer.load_state_dict(snap["optimizer"])
        random.set_state(snap["rng"])
        self.epoch, self.batch, self.step = snap["position"]
        self.totals = snap["totals"]
        self._unchecked = self._unchecked_seen = 0
        self._sums = self._snapshot = None

    def _check_grads(self, batch: tuple[Tensor, ...]) -> None:
        """A checked step's gradient check (one host sync): NaN/inf anywhere makes their sum non-finite."""
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
        """Train until ``epochs`` (or a callback's ``stop_training``); returns the history (also kept
        on the trainer)."""
        self.stop_training = False
        for callback in self.callbacks:
            callback.on_train_begin(self)
        try:
            while self.epoch < self.settings.epochs and not self.stop_training:
                self._run_epoch()
        except KeyboardInterrupt as exc:
            # distributed: saving is a collective, safe only when every rank stopped after the same
            # step (gpunet.distributed.agreed_interrupts); otherwise the last checkpoint stands
            if self.ddp is None or getattr(exc, "all_ranks", False):
                self.save()
            raise
        for callback in self.callbacks:
            callback.on_train_end(_logs(self.history.last))
        return self.history

    def _run_epoch(self) -> None:
        if callable(self.scheduler) and not hasattr(self.scheduler, "step"):
            self.optimizer.lr = self.scheduler(self.epoch)  # an ``epoch -> lr`` schedule
        start = time.perf_counter()
        total = len(self.train_loader)
        for batch in self.train_loader.iterate(self.epoch, self.batch):
            self.train_step(batch)
            if self.checkpoint_every and self.step % self.checkpoint_every == 0:
                self.save()
            if self.progress or self.callbacks:
                event = self._batch_event(total, start)  # host numbers up to the last check: no sync
                if self.progress:
                    self.progress(event)
                for callback in self.callbacks:
                    callback.on_batch_end(self.batch, event)
        self.check()
        record = self._epoch_record(start)
        with deferred_interrupts():
            self.history.epochs.append(record)
            self.epoch, self.batch, self.totals = self.epoch + 1, 0, _empty_totals()
            self._step_scheduler(record)
        # the callbacks see the epoch before its checkpoint, which holds their state after it;
        # an interrupt in one still lets the others see the epoch, then the checkpoint is written
        interrupt = None
        for callback in self.callbacks:
            try:
                callback.on_epoch_end(record["epoch"], _logs(record))
            except KeyboardInterrupt as exc:
                interrupt = interrupt or exc
        self.save()
        if interrupt is not None:
            raise interrupt
        if self.progress:
            self.progress({"end_of_epoch": True, **record, "epochs": self.settings.epochs})

    def _batch_event(self, total: int, start: float) -> dict[str, Any]:
        seen = max(self.totals["seen"], 1)  # the metrics are those up to the last check
        event = {"epoch": self.epoch + 1, "epochs": self.settings.epochs, "batch": self.batch, "batches": total,
                 "step": self.step, "loss": self.totals["loss_sum"] / seen,
                 "samples_per_s": (self.totals["seen"] + self._unchecked_seen) / max(time.perf_counter() - start, 1e-9)}
        if self.task.accuracy:
            event["accuracy"] = self.totals["correct"] / seen
        return event

    def _epoch_record(self, start: float) -> dict[str, float]:
        """The epoch's metrics: train (and, with validation data, test) loss, and accuracy when counted."""
        test = None
        if self.test_loader is not None:
            test = evaluate(self.task, self.model, self.test_loader, self.num_classes,
                            reduce=_sum_over_ranks if self.ddp is not None else None)
        totals = self._global_totals()
        seen = max(totals["seen"], 1)
        record: dict[str, float] = {"epoch": self.epoch + 1, "train_loss": totals["loss_sum"] / seen}
        if self.task.accuracy:
            record["train_accuracy"] = totals["correct"] / seen
        if test is not None:
            record["test_loss"] = test["loss"]
            if self.task.accuracy:
                record["test_accuracy"] = test["accuracy"]
        record["seconds"] = time.perf_counter() - start
        return record

    def _step_scheduler(self, record: dict[str, float]) -> None:
        """A scheduler object steps once per epoch (ReduceLROnPlateau on the test, else train, loss)."""
        if self.scheduler is None or not hasattr(self.scheduler, "step"):
            return
        if type(self.scheduler).__name__ == "ReduceLROnPlateau":
            self.scheduler.step(record.get("test_loss", record["train_loss"]))
        else:
            self.scheduler.step()


def _logs(record: dict[str, float]) -> dict[str, float]:
    """What callbacks get: an epoch's record without its ``epoch`` number."""
    return {k: v for k, v in record.items() if k != "epoch"}


def _rank() -> int:
    from gpunet.distributed import get_rank

    return get_rank()


def _sum_over_ranks(values: numpy.ndarray) -> numpy.ndarray:
    from gpunet.distributed import allreduce_sum

    return allreduce_sum(values, "evaluation sums")


def _copy_arrays(value: Any) -> Any:
    """``value`` with every array in it copied (dicts and lists rebuilt), for a snapshot."""
    if isinstance(value, Mapping):
        return {k: _copy_arrays(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_copy_arrays(v) for v in value)
    return value.copy() if hasattr(value, "copy") and hasattr(value, "dtype") else value


def _empty_totals() -> dict[str, float]:
    return {"seen": 0, "loss_sum": 0.0, "correct": 0}
