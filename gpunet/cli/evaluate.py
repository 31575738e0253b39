"""``gpunet evaluate CHECKPOINT``."""

from __future__ import annotations

import json
from typing import Any

import click

from gpunet.cli.errors import library_usage_errors
from gpunet.cli.options import apply_backend, backend_options


@click.command()
@click.argument("checkpoint", type=click.Path(exists=True, dir_okay=False))
@click.option("--data-dir", type=click.Path(file_okay=False), default=None)
@backend_options
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
@library_usage_errors
def evaluate(checkpoint: str, data_dir: str | None, backend_name: str | None, kernels: str | None,
             as_json: bool) -> None:
    """Accuracy and confusion matrix of a trained checkpoint on its dataset's test split.

    \b
    Examples:
      gpunet train lenet --checkpoint lenet.npz && gpunet evaluate lenet.npz
      gpunet evaluate lenet.npz --json
    """
    from gpunet.data import DataLoader
    from gpunet.training import evaluate as run_evaluation
    from gpunet.training import load_trained

    apply_backend(backend_name, kernels)
    recipe, split, model, state = load_trained(checkpoint, data_dir, "evaluate")
    result = run_evaluation(recipe, model, DataLoader(split.test, 256), int(split.info.get("num_classes", 2)))
    if as_json:
        click.echo(json.dumps({"recipe": state["recipe"], "dataset": split.info.get("name"),
                               "loss": result["loss"], "accuracy": result["accuracy"],
                               "confusion": result["confusion"].tolist()}))
        return
    click.echo(f"{state['recipe']} on {split.info.get('name')} test split ({len(split.test)} samples)")
    click.echo(f"loss {result['loss']:.4f}  accuracy {result['accuracy']:.4f}")
    click.echo(format_confusion(result["confusion"]))


def format_confusion(confusion: Any) -> str:
    """The confusion matrix as a text table (rows: true class, columns: predicted)."""
    n = confusion.shape[0]
    width = max(5, len(str(int(confusion.max()))) + 1)
    header = "true\\pred " + "".join(f"{j:>{width}}" for j in range(n))
    rows = [f"{i:>9} " + "".join(f"{int(v):>{width}}" for v in confusion[i]) for i in range(n)]
    return "\n".join([header, *rows])
