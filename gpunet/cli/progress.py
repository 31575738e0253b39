"""A one-line progress bar for training epochs (redrawn in place on a terminal)."""

from __future__ import annotations

import sys
from typing import Any

import click


class EpochProgress:
    """Callable given to the Trainer: draws ``epoch 2/10 [#####-----] loss acc samples/s``."""

    def __init__(self, width: int = 24, stream: Any = None, quiet: bool = False) -> None:
        self.width, self.stream, self.quiet = width, stream or sys.stderr, quiet
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()

    def __call__(self, event: dict[str, Any]) -> None:
        if self.quiet:
            return
        if event.get("end_of_epoch"):
            line = (f"epoch {event['epoch']}/{event['epochs']}  loss {event['train_loss']:.4f}  "
                    f"train acc {event['train_accuracy']:.3f}  test acc {event['test_accuracy']:.3f}  "
                    f"({event['seconds']:.1f}s)")
            click.echo(("\r\x1b[2K" if self.tty else "") + line, file=self.stream)
            return
        if not self.tty:
            return
        done = event["batch"] / max(event["batches"], 1)
        filled = int(done * self.width)
        bar = "#" * filled + "-" * (self.width - filled)
        click.echo(f"\r\x1b[2Kepoch {event['epoch']}/{event['epochs']} [{bar}] {done:4.0%}  "
                   f"loss {event['loss']:.4f}  acc {event['accuracy']:.3f}  "
                   f"{event['samples_per_s']:.0f} samples/s", nl=False, file=self.stream)
