"""PNG pictures (needs the optional ``plot`` extra: matplotlib)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError as exc:
        raise ImportError("plotting needs matplotlib: pip install 'gpunet[plot]'") from exc
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_history(epochs: list[dict[str, float]], path: str | Path, title: str = "",
                 log_loss: bool = False) -> Path:
    """Loss and accuracy per epoch (train and test) side by side; ``log_loss``: loss axis on a log scale."""
    plt = _pyplot()
    xs = [e["epoch"] for e in epochs]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(9, 3.5))
    ax_loss.plot(xs, [e["train_loss"] for e in epochs], label="train")
    ax_loss.plot(xs, [e["test_loss"] for e in epochs], label="test")
    ax_loss.set(xlabel="epoch", ylabel="loss", title="loss")
    if log_loss:
        ax_loss.set_yscale("log")
    ax_acc.plot(xs, [e["train_accuracy"] for e in epochs], label="train")
    ax_acc.plot(xs, [e["test_accuracy"] for e in epochs], label="test")
    ax_acc.set(xlabel="epoch", ylabel="accuracy", title="accuracy", ylim=(0, 1.01))
    for ax in (ax_loss, ax_acc):
        ax.legend()
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)
