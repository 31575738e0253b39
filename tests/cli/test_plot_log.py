"""``plot_history(..., log_loss=True)`` and ``gpunet train --plot-log``."""

from __future__ import annotations

from typing import Any

import pytest

EPOCHS = [{"epoch": e, "train_loss": 1.0 / e, "test_loss": 1.2 / e, "train_accuracy": 0.5, "test_accuracy": 0.4}
          for e in (1, 2, 3)]


def _loss_scale(monkeypatch: pytest.MonkeyPatch, tmp_path: Any, **kwargs: Any) -> str:
    pytest.importorskip("matplotlib")
    from gpunet.plotting import _pyplot, plot_history

    plt = _pyplot()
    closed: list[Any] = []
    real_close = plt.close
    monkeypatch.setattr(plt, "close", lambda fig: (closed.append(fig), real_close(fig)))
    plot_history(EPOCHS, tmp_path / "h.png", **kwargs)
    return closed[0].axes[0].get_yscale()


def test_plot_history_log_loss(monkeypatch, tmp_path) -> None:
    assert _loss_scale(monkeypatch, tmp_path, log_loss=True) == "log"


def test_plot_history_linear_by_default(monkeypatch, tmp_path) -> None:
    assert _loss_scale(monkeypatch, tmp_path) == "linear"


def test_plot_log_without_plot_is_a_usage_error(run_cli) -> None:
    outcome = run_cli("train", "linear", "--plot-log")
    assert outcome.code == 2 and "--plot-log" in outcome.stderr
