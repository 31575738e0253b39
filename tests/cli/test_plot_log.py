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


def _cli_plot(tmp_path: Any, name: str, *extra: str) -> bytes:
    """``gpunet train linear --plot NAME`` in a fresh process (the console script's path)."""
    import os
    import subprocess
    import sys

    path = tmp_path / name
    env = {**os.environ, "GPUNET_QUIET": "1", "MPLBACKEND": "Agg"}
    done = subprocess.run([sys.executable, "-m", "gpunet.cli", "train", "linear", "--epochs", "2", "--backend",
                           "numpy", "--quiet", "--plot", str(path), *extra], capture_output=True, text=True,
                          env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    assert f"wrote {path}" in done.stdout
    return path.read_bytes()


def test_plot_log_through_the_cli_changes_only_the_scale(tmp_path) -> None:
    """Same seed, same curves: two linear plots are byte-identical, the --plot-log one differs."""
    pytest.importorskip("matplotlib")
    first, again = _cli_plot(tmp_path, "a.png"), _cli_plot(tmp_path, "b.png")
    logged = _cli_plot(tmp_path, "c.png", "--plot-log")
    assert first[:8] == logged[:8] == b"\x89PNG\r\n\x1a\n"
    assert first == again and logged != first
