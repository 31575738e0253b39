"""Training progress: a tqdm bar on a terminal, a few plain lines in a log file or pipe."""

from __future__ import annotations

import sys
from typing import Any

import click
from tqdm import tqdm


class EpochProgress:
    """Callable given to the Trainer as its ``progress(event)`` callback.

    On a terminal each epoch gets a tqdm bar (batch counter, rate, ETA, running loss/accuracy)
    redrawn in place; elsewhere one line at each 25% of an epoch. Either way every epoch ends
    with the summary ``epoch 2/10  loss ...  train acc ...  test acc ...  (1.2s)``; without
    ``accuracy`` (regression) it shows the train and test loss only.
    """

    def __init__(self, stream: Any = None, quiet: bool = False, mininterval: float = 0.1,
                 accuracy: bool = True) -> None:
        self.stream, self.quiet, self.mininterval = stream or sys.stderr, quiet, mininterval
        self.accuracy = accuracy
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.bar: tqdm | None = None
        self.epoch: int | None = None
        self.quarter = 0

    def __call__(self, event: dict[str, Any]) -> None:
        if self.quiet:
            return
        if event.get("end_of_epoch"):
            self._end_epoch(event)
        elif self.tty:
            self._draw(event)
        else:
            self._log(event)

    def _draw(self, event: dict[str, Any]) -> None:
        """Advance (opening if needed) this epoch's tqdm bar."""
        if self.bar is None or self.epoch != event["epoch"]:
            self._close()
            self.epoch = event["epoch"]
            self.bar = tqdm(total=event["batches"], initial=max(event["batch"] - 1, 0), file=self.stream,
                            desc=f"epoch {event['epoch']}/{event['epochs']}", unit="batch",
                            dynamic_ncols=True, leave=False, mininterval=self.mininterval)
        shown = {"loss": f"{event['loss']:.4f}"}
        if self.accuracy:
            shown["acc"] = f"{event['accuracy']:.3f}"
        self.bar.set_postfix(shown, refresh=False)
        self.bar.update(event["batch"] - self.bar.n)

    def _log(self, event: dict[str, Any]) -> None:
        """Write a line when the epoch passes 25%, 50% or 75% of its batches."""
        if self.epoch != event["epoch"]:
            self.epoch, self.quarter = event["epoch"], 0
        quarter = 4 * event["batch"] // max(event["batches"], 1)
        if self.quarter < quarter < 4:
            self.quarter = quarter
            click.echo(f"epoch {event['epoch']}/{event['epochs']}  {25 * quarter}% "
                       f"({event['batch']}/{event['batches']} batches)  loss {event['loss']:.4f}  "
                       f"{self._acc(event.get('accuracy'))}{event['samples_per_s']:.0f} samples/s", file=self.stream)

    def _end_epoch(self, event: dict[str, Any]) -> None:
        """Clear the bar and write the epoch's summary line."""
        self._close()
        self.epoch, self.quarter = None, 0
        scores = (f"train acc {event['train_accuracy']:.3f}  test acc {event['test_accuracy']:.3f}" if self.accuracy
                  else f"test loss {event['test_loss']:.4f}")
        click.echo(f"epoch {event['epoch']}/{event['epochs']}  loss {event['train_loss']:.4f}  {scores}  "
                   f"({event['seconds']:.1f}s)", file=self.stream)

    def _acc(self, value: float | None) -> str:
        """The accuracy field (none for regression: the Trainer's events then carry no accuracy)."""
        return f"acc {value:.3f}  " if self.accuracy and value is not None else ""

    def _close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
