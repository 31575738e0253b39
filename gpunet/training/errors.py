"""The training package's exceptions (plain Python: the CLI translates them for click)."""

from __future__ import annotations


class TrainingError(RuntimeError):
    """Training cannot go on (NaN/inf loss or gradient, incompatible checkpoint)."""


class UsageError(ValueError):
    """A run was asked for with options that cannot work together.

    ``param_hint`` names the command-line option at fault (``"--dataset"``), or is ``None`` when
    no single option is; the CLI shows it as click's "Invalid value for ..." usage error.
    """

    def __init__(self, message: str, param_hint: str | None = None) -> None:
        super().__init__(message)
        self.param_hint = param_hint
