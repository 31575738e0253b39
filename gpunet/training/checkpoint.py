"""The schema of a training checkpoint, checked before any of it is used.

``Trainer.state()`` writes, and ``Trainer.restore`` / ``load_trained`` read, a dict of:

=============  ==============================================================================
``kind``       ``"training"``
``recipe``     the recipe's name (str; ``"CLASS (fit)"`` for a Trainer built by ``fit`` or
               without an identity); ``dataset``: the dataset's name (str or None)
``settings``   ``Settings.as_dict()``: ``epochs``/``batch_size`` ints >= 1, ``lr`` finite > 0,
               ``optimizer`` str, ``seed`` int >= 0, ``momentum``/``weight_decay`` finite >= 0,
               ``clip`` None or finite > 0, ``schedule`` ``"constant"`` or ``"cosine"``
``model``      parameter name -> floating array of the model's shape (no list, number or string)
``optimizer``  ``type`` (the optimizer's class name), ``hyper`` (its hyper-parameter names ->
               finite numbers or booleans), ``steps`` int >= 0, ``state``: one dict per
               parameter whose arrays have that parameter's shape
``rng``        a PCG64 state; ``epoch``/``batch``/``step``: ints with ``0 <= batch <= batches
               per epoch``, ``step == epoch * batches + batch``, ``epoch == len(history)``
``totals``     ``seen`` int >= 0, ``correct`` int in ``0..seen``, ``loss_sum`` finite
``history``    one dict per finished epoch of names -> numbers (no ``*_accuracy`` for regression)
``scheduler``  optional: the LR scheduler's ``state_dict()`` when the run has a scheduler object
``callbacks``  optional: ``state_key`` -> that callback's ``state_dict()`` (an object of names to
               null, booleans, numbers, strings, arrays, or lists/objects of them), for the
               callbacks with a state; each callback checks its own on resume
=============  ==============================================================================

A violation is a :class:`TrainingCheckpointError` (both a ``TrainingError`` and an
``io.CheckpointError``) naming the file and the field: ``resume: run.npz: field 'batch' ...``.
"""

from __future__ import annotations

import math
import os
from typing import Any

import numpy

from gpunet.io import CheckpointError
from gpunet.training.errors import TrainingError

SCHEDULES = ("constant", "cosine")
_DEFAULTS = {"epochs": 1, "batch_size": 1, "lr": 1.0, "optimizer": "sgd", "seed": 0, "momentum": 0.0,
             "weight_decay": 0.0, "clip": None, "schedule": "constant"}  # stand-ins for absent settings


class TrainingCheckpointError(TrainingError, CheckpointError):
    """A training checkpoint breaks the schema (``path`` and ``field`` say where)."""

    def __init__(self, message: str, path: str | os.PathLike[str] | None = None, field: str | None = None) -> None:
        CheckpointError.__init__(self, message, path, field)


class _Violation(Exception):
    def __init__(self, field: str, problem: str) -> None:
        super().__init__(problem)
        self.field, self.problem = field, problem


def _show(value: Any) -> str:
    if isinstance(value, numpy.ndarray):
        return f"an array of shape {value.shape} ({value.dtype})"
    text = repr(value)
    return f"{text[:60]}..." if len(text) > 60 else text


def _int(state: dict[str, Any], field: str, low: int = 0, high: int | None = None, what: str = "") -> int:
    value = _get(state, field)
    if type(value) is not int or value < low or (high is not None and value > high):
        span = f"in {low}..{high}" if high is not None else f">= {low}"
        raise _Violation(field, f"must be an integer {span}{what}, got {_show(value)}")
    return value


def _number(state: dict[str, Any], field: str, low: float | None = None, strict: bool = False,
            allow_none: bool = False) -> Any:
    value = _get(state, field)
    if value is None and allow_none:
        return None
    if (isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)
            or (low is not None and (value < low or (strict and value == low)))):
        span = "" if low is None else f" {'>' if strict else '>='} {low}"
        raise _Violation(field, f"must be a finite number{span}{' or null' if allow_none else ''}, got {_show(value)}")
    return value


def _get(state: dict[str, Any], field: str) -> Any:
    node: Any = state
    for part in field.split("."):
        if not isinstance(node, dict) or part not in node:
            raise _Violation(field, "is missing")
        node = node[part]
    return node


def _typed(state: dict[str, Any], field: str, kind: type | tuple[type, ...], name: str) -> Any:
    value = _get(state, field)
    if not isinstance(value, kind):
        raise _Violation(field, f"must be {name}, got {_show(value)}")
    return value


def _fail(command: str, path: Any, exc: _Violation) -> TrainingCheckpointError:
    return TrainingCheckpointError(f"{command}: {path}: field {exc.field!r} {exc.problem}", path, exc.field)


def check_header(state: Any, path: Any, command: str, complete: bool = True) -> None:
    """``kind``, ``recipe``, ``dataset`` and ``settings``: all ``load_trained`` needs to rebuild the run.

    With ``complete=False`` (evaluating, drawing filters) settings an older gpunet did not write
    may be absent (``seed`` then defaults to 0); those present are checked all the same.
    """
    if not isinstance(state, dict) or state.get("kind") != "training":
        kind = state.get("kind") if isinstance(state, dict) else None
        raise TrainingCheckpointError(f"{command}: {path} is not a training checkpoint of gpunet "
                                      f"(field 'kind' is {_show(kind)}, expected 'training')", path, "kind")
    try:
        _typed(state, "recipe", str, "a recipe name (a string)")
        if state.get("dataset") is not None:
            _typed(state, "dataset", str, "a dataset name (a string) or null")
        if not complete and "settings" not in state:
            state = {**state, "settings": {}}
        settings = _typed(state, "settings", dict, "an object of settings")
        if not complete:
            state = {**state, "settings": {**_DEFAULTS, **settings}}
        _int(state, "settings.epochs", 1)
        _int(state, "settings.batch_size", 1)
        _number(state, "settings.lr", 0.0, strict=True)
        _typed(state, "settings.optimizer", str, "an optimizer name (a string)")
        _int(state, "settings.seed", 0)
        _number(state, "settings.momentum", 0.0)
        _number(state, "settings.weight_decay", 0.0)
        _number(state, "settings.clip", 0.0, strict=True, allow_none=True)
        schedule = _get(state, "settings.schedule")
        if schedule not in SCHEDULES:
            raise _Violation("settings.schedule", f"must be one of {SCHEDULES}, got {_show(schedule)}")
    except _Violation as exc:
        raise _fail(command, path, exc) from None


def check_weights(state: dict[str, Any], model: Any, path: Any, command: str) -> None:
    """``model``: exactly the model's parameter names, each a floating array of the parameter's shape."""
    try:
        weights = _typed(state, "model", dict, "an object of parameter arrays")
        own = dict(model.named_parameters())
        missing, unexpected = sorted(set(own) - set(weights)), sorted(set(weights) - set(own))
        if missing or unexpected:
            raise _Violation("model", f"does not match the model {type(model).__name__}: missing {missing}, "
                                      f"unexpected {unexpected}")
        for name, param in own.items():
            _array_like(weights[name], f"model.{name}", tuple(param.shape))
    except _Violation as exc:
        raise _fail(command, path, exc) from None


def _array_like(value: Any, field: str, shape: tuple[int, ...]) -> None:
    if not isinstance(value, numpy.ndarray):
        raise _Violation(field, f"must be an array of shape {shape}, got {_show(value)}")
    if value.dtype.kind != "f":
        raise _Violation(field, f"must be a floating array, got dtype {value.dtype}")
    if tuple(value.shape) != shape:
        raise _Violation(field, f"must have shape {shape}, got {tuple(value.shape)}")


def check_resumable(state: dict[str, Any], path: Any, model: Any, optimizer: Any, batches_per_epoch: int) -> None:
    """Everything ``Trainer.restore`` uses, against the trainer's model, optimizer and loader."""
    command = "resume"
    check_header(state, path, command)
    check_weights(state, model, path, command)
    try:
        _check_optimizer(state, optimizer)
        _check_rng(state)
        history = _typed(state, "history", list, "a list of epoch records")
        epoch = _int(state, "epoch", 0)
        if epoch != len(history):
            raise _Violation("epoch", f"is {epoch} but the history holds {len(history)} finished epochs")
        batch = _int(state, "batch", 0, batches_per_epoch, f" (this run has {batches_per_epoch} batches per epoch)")
        expected = epoch * batches_per_epoch + batch
        _int(state, "step", 0)
        if state["step"] != expected:
            raise _Violation("step", f"is {state['step']} but epoch {epoch} and batch {batch} make {expected} steps")
        for i, record in enumerate(history):
            if not isinstance(record, dict) or not all(
                    isinstance(k, str) and (v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)))
                    for k, v in record.items()):
                raise _Violation(f"history[{i}]", f"must be an object of names to numbers, got {_show(record)}")
        _typed(state, "totals", dict, "an object of running sums")
        if set(state["totals"]) != {"seen", "loss_sum", "correct"}:
            raise _Violation("totals", f"must hold exactly seen, loss_sum and correct, got {sorted(state['totals'])}")
        seen = _int(state, "totals.seen", 0, batch * state["settings"]["batch_size"],
                    f" (at most {batch} batches of {state['settings']['batch_size']})")
        _int(state, "totals.correct", 0, seen, " (at most totals.seen)")
        _number(state, "totals.loss_sum")
        _check_callbacks(state)
    except _Violation as exc:
        raise _fail(command, path, exc) from None


def _check_optimizer(state: dict[str, Any], optimizer: Any) -> None:
    saved = _typed(state, "optimizer", dict, "an object of optimizer state")
    if "hyper" in saved and "param_groups" not in saved:
        _check_legacy_optimizer(state, saved, optimizer)
        return
    groups = _typed(state, "optimizer.param_groups", list, "a list of parameter groups")
    if len(groups) != len(optimizer.param_groups):
        raise _Violation("optimizer.param_groups",
                         f"must hold {len(optimizer.param_groups)} group(s), got {len(groups)}")
    for g, group in enumerate(groups):
        if not isinstance(group, dict):
            raise _Violation(f"optimizer.param_groups[{g}]", f"must be an object of options, got {_show(group)}")
        for name, value in group.items():
            if name != "params" and not isinstance(value, (bool, str, list, tuple)) and value is not None and (
                    not isinstance(value, (int, float)) or not math.isfinite(value)):
                raise _Violation(f"optimizer.param_groups[{g}].{name}", f"must be a finite number, got {_show(value)}")
    buffers = _typed(state, "optimizer.state", dict, "an object of per-parameter buffers keyed by index")
    params = optimizer.params
    for key, entry in buffers.items():
        if not (isinstance(key, str) and key.isdigit() and int(key) < len(params)):
            raise _Violation(f"optimizer.state.{key}", f"must be a parameter index in 0..{len(params) - 1}")
        if not isinstance(entry, dict):
            raise _Violation(f"optimizer.state.{key}", f"must be an object of buffers, got {_show(entry)}")
        shape = tuple(params[int(key)].shape)
        for name, value in entry.items():
            if isinstance(value, numpy.ndarray) and value.ndim:
                _array_like(value, f"optimizer.state.{key}.{name}", shape)
            elif isinstance(value, numpy.ndarray):
                if not numpy.isfinite(value).all():
                    raise _Violation(f"optimizer.state.{key}.{name}", f"must be finite, got {_show(value)}")
            elif isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise _Violation(f"optimizer.state.{key}.{name}", f"must be an array of shape {shape} "
                                                                  f"or a finite number, got {_show(value)}")


def _check_legacy_optimizer(state: dict[str, Any], saved: dict[str, Any], optimizer: Any) -> None:
    """Checkpoints written before the optimizer state took PyTorch's layout."""
    kind = type(optimizer).__name__
    if saved.get("type") != kind:
        raise _Violation("optimizer.type", f"must be {kind!r} (this run's optimizer), got {_show(saved.get('type'))}")
    hyper = _typed(state, "optimizer.hyper", dict, "an object of hyper-parameters")
    for name, value in hyper.items():
        if not isinstance(value, bool):
            _number(state, f"optimizer.hyper.{name}")
    _int(state, "optimizer.steps", 0)
    buffers = _typed(state, "optimizer.state", list, "a list of per-parameter buffers")
    if len(buffers) != len(optimizer.params):
        raise _Violation("optimizer.state", f"must hold {len(optimizer.params)} entries (one per parameter), "
                                            f"got {len(buffers)}")
    for i, (entry, param) in enumerate(zip(buffers, optimizer.params)):
        if not isinstance(entry, dict):
            raise _Violation(f"optimizer.state[{i}]", f"must be an object of buffers, got {_show(entry)}")
        for name, value in entry.items():
            if isinstance(value, numpy.ndarray):
                _array_like(value, f"optimizer.state[{i}].{name}", tuple(param.shape))
            elif isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise _Violation(f"optimizer.state[{i}].{name}", f"must be an array of shape {tuple(param.shape)} "
                                                                 f"or a finite number, got {_show(value)}")


def _check_callbacks(state: dict[str, Any]) -> None:
    """The optional ``callbacks`` field: ``state_key`` -> an object of plain values."""
    if "callbacks" not in state:
        return
    saved = _typed(state, "callbacks", dict, "an object of callback states keyed by state_key")
    for key, entry in saved.items():
        if not isinstance(entry, dict):
            raise _Violation(f"callbacks.{key}", f"must be an object of the callback's state, got {_show(entry)}")
        for name, value in entry.items():
            _plain(value, f"callbacks.{key}.{name}")


def _plain(value: Any, field: str) -> None:
    """None, a bool, number, string or array, or a list/object of them."""
    if value is None or isinstance(value, (bool, int, float, str, numpy.ndarray)):
        return
    if isinstance(value, list):
        for i, item in enumerate(value):
            _plain(item, f"{field}[{i}]")
        return
    if isinstance(value, dict):
        for name, item in value.items():
            _plain(item, f"{field}.{name}")
        return
    raise _Violation(field, f"must be null, a boolean, number, string, array or a list/object of them, "
                            f"got {_show(value)}")


def _check_rng(state: dict[str, Any]) -> None:
    rng = _typed(state, "rng", dict, "a PCG64 generator state")
    try:
        numpy.random.PCG64().state = rng
    except (TypeError, ValueError, KeyError, OverflowError) as exc:
        raise _Violation("rng", f"is not a PCG64 generator state ({exc})") from exc
