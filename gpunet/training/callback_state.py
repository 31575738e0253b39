"""Callback state in training checkpoints: unique keys in a run, handed back on resume."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from gpunet.training.callbacks import Callback
from gpunet.training.checkpoint import TrainingCheckpointError


def _stateful(callback: Callback) -> bool:
    return type(callback).state_dict is not Callback.state_dict


def check_state_keys(callbacks: Sequence[Callback]) -> None:
    """Two stateful callbacks with one ``state_key`` could not be told apart on resume: refused."""
    seen: set[str] = set()
    for callback in callbacks:
        if not _stateful(callback):
            continue
        key = callback.state_key
        if key in seen:
            raise ValueError(f"Trainer: callbacks expected distinct state keys, got {key!r} twice "
                             f"(give each its own monitor or path)")
        seen.add(key)


def restore_callbacks(callbacks: Sequence[Callback], saved: Mapping[str, Any],
                      path: str | os.PathLike[str]) -> None:
    """Hand each callback its saved state (by ``state_key``). A state this run has no callback for is
    skipped, a callback without a saved state starts fresh. A state its callback refuses is a
    TrainingCheckpointError naming the field, with every callback left as it was."""
    before: list[tuple[Callback, dict[str, Any]]] = []
    for callback in callbacks:
        key = callback.state_key
        if key not in saved:
            continue
        before.append((callback, dict(vars(callback))))
        try:
            callback.load_state_dict(saved[key])
        except (ValueError, TypeError, KeyError) as exc:
            for done, attributes in before:  # the loads assign attributes: a shallow copy undoes them
                vars(done).clear()
                vars(done).update(attributes)
            field = f"callbacks.{key}"
            raise TrainingCheckpointError(f"resume: {path}: field {field!r} is refused by "
                                          f"{type(callback).__name__}: {exc}", path, field) from None
