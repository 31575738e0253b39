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
    """Loss and accuracy per epoch (train and test) side by side; the loss alone when the
    records have no accuracy (regression); ``log_loss``: the loss axis on a log scale."""
    plt = _pyplot()
    xs = [e["epoch"] for e in epochs]
    accuracy = bool(epochs) and "test_accuracy" in epochs[0]
    fig, axes = plt.subplots(1, 2 if accuracy else 1, figsize=(9 if accuracy else 4.5, 3.5), squeeze=False)
    ax_loss = axes[0][0]
    ax_loss.plot(xs, [e["train_loss"] for e in epochs], label="train")
    ax_loss.plot(xs, [e["test_loss"] for e in epochs], label="test")
    ax_loss.set(xlabel="epoch", ylabel="loss", title="loss")
    if log_loss:
        ax_loss.set_yscale("log")
    if accuracy:
        ax_acc = axes[0][1]
        ax_acc.plot(xs, [e["train_accuracy"] for e in epochs], label="train")
        ax_acc.plot(xs, [e["test_accuracy"] for e in epochs], label="test")
        ax_acc.set(xlabel="epoch", ylabel="accuracy", title="accuracy", ylim=(0, 1.01))
    for ax in axes[0]:
        ax.legend()
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)
