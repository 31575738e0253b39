"""EpochProgress: plain 25% lines off a terminal, a tqdm bar on one, nothing when quiet."""

from __future__ import annotations

import io
from typing import Any

from gpunet.cli.progress import EpochProgress


class FakeTTY(io.StringIO):
    """A text stream that claims to be a terminal."""

    def isatty(self) -> bool:
        return True


def _events(epochs: int = 2, batches: int = 8) -> list[dict[str, Any]]:
    """What the Trainer sends: one event per batch, then an end-of-epoch record."""
    out: list[dict[str, Any]] = []
    for epoch in range(1, epochs + 1):
        for batch in range(1, batches + 1):
            out.append({"epoch": epoch, "epochs": epochs, "batch": batch, "batches": batches,
                        "step": batch, "loss": 1.0 / batch, "accuracy": batch / batches,
                        "samples_per_s": 100.0 * batch})
        out.append({"end_of_epoch": True, "epoch": epoch, "epochs": epochs, "train_loss": 0.5,
                    "train_accuracy": 0.75, "test_loss": 0.6, "test_accuracy": 0.7, "seconds": 1.25})
    return out


def _feed(progress: EpochProgress, events: list[dict[str, Any]]) -> None:
    for event in events:
        progress(event)


def test_plain_stream_gets_quarter_lines_and_epoch_lines() -> None:
    stream = io.StringIO()
    _feed(EpochProgress(stream=stream), _events())
    epoch_line = "loss 0.5000  train acc 0.750  test acc 0.700  (1.2s)"
    expected = []
    for epoch in (1, 2):
        expected += [f"epoch {epoch}/2  25% (2/8 batches)  loss 0.5000  acc 0.250  200 samples/s",
                     f"epoch {epoch}/2  50% (4/8 batches)  loss 0.2500  acc 0.500  400 samples/s",
                     f"epoch {epoch}/2  75% (6/8 batches)  loss 0.1667  acc 0.750  600 samples/s",
                     f"epoch {epoch}/2  {epoch_line}"]
    assert stream.getvalue() == "\n".join(expected) + "\n"
    assert "\r" not in stream.getvalue()


def test_few_batches_skip_quarters_not_lines() -> None:
    stream = io.StringIO()
    _feed(EpochProgress(stream=stream), _events(epochs=1, batches=2))
    lines = stream.getvalue().splitlines()
    assert lines[0].startswith("epoch 1/1  50% (1/2 batches)") and len(lines) == 2


def test_terminal_gets_a_tqdm_bar_then_the_epoch_line() -> None:
    stream = FakeTTY()
    _feed(EpochProgress(stream=stream, mininterval=0), _events(batches=10))
    out = stream.getvalue()
    assert "\r" in out and "batch/s" in out  # redrawn in place, with a rate
    assert "5/10" in out and "loss=" in out and "acc=" in out
    assert "25% (" not in out  # no plain quarter lines on a terminal
    lines = [line.split("\r")[-1] for line in out.split("\n") if "test acc" in line]
    assert [line[:11] for line in lines] == ["epoch 1/2  ", "epoch 2/2  "]


def test_quiet_prints_nothing() -> None:
    for stream in (io.StringIO(), FakeTTY()):
        _feed(EpochProgress(stream=stream, quiet=True), _events())
        assert stream.getvalue() == ""


def test_regression_events_carry_no_accuracy_and_show_none() -> None:
    """The Trainer sends no accuracy for regression (mse); the lines show the loss only."""
    events = [{k: v for k, v in e.items() if "accuracy" not in k} for e in _events(epochs=1)]
    stream = io.StringIO()
    _feed(EpochProgress(stream=stream, accuracy=False), events)
    assert "acc" not in stream.getvalue()
    assert stream.getvalue().splitlines()[-1] == "epoch 1/1  loss 0.5000  test loss 0.6000  (1.2s)"
