"""The hyperparameters of a run and its per-epoch history."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Settings:
    """The hyperparameters of one run (defaults come from the recipe)."""

    epochs: int
    batch_size: int
    lr: float
    optimizer: str
    seed: int = 0
    momentum: float = 0.9
    weight_decay: float = 0.0
    clip: float | None = None
    schedule: str = "constant"

    def as_dict(self) -> dict[str, Any]:
        return dict(vars(self))

    def lr_at(self, epoch: int) -> float:
        """Learning rate of ``epoch`` (0-based): constant, or cosine-annealed from ``lr`` towards 0."""
        if self.schedule == "constant":
            return self.lr
        if self.schedule == "cosine":
            return self.lr * 0.5 * (1.0 + math.cos(math.pi * epoch / max(self.epochs, 1)))
        raise ValueError(f"schedule: expected 'constant' or 'cosine', got {self.schedule!r}")


@dataclass
class History:
    """Per-epoch metrics."""

    epochs: list[dict[str, float]] = field(default_factory=list)

    @property
    def last(self) -> dict[str, float]:
        return self.epochs[-1] if self.epochs else {}
