"""``gpunet evaluate CHECKPOINT`` or ``gpunet evaluate FILE.py:FUNC --checkpoint CKPT --data FILE.npz``."""

from __future__ import annotations

import json
from typing import Any

import click

from gpunet.cli.errors import library_usage_errors
from gpunet.cli.model_file import TARGET_METAVAR, load_builtin_trained, load_user_trained, resolve_target
from gpunet.cli.options import apply_backend, backend_options


@click.command()
@click.argument("target", metavar=TARGET_METAVAR)
@click.option("--checkpoint", type=click.Path(dir_okay=False), default=None,
              help="For a model from a file: the checkpoint `gpunet train FILE.py:FUNC --checkpoint` wrote.")
@click.option("--data", type=click.Path(dir_okay=False), default=None,
              help="For a model from a file: the .npz it was trained on (x_test/y_test, else the same "
                   "seeded split as train).")
@click.option("--data-dir", type=click.Path(file_okay=False), default=None)
@backend_options
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
@library_usage_errors
def evaluate(target: str, checkpoint: str | None, data: str | None, data_dir: str | None,
             backend_name: str | None, kernels: str | None, as_json: bool) -> None:
    """Loss, accuracy and confusion matrix of a trained checkpoint on its dataset's test split.

    A model from a file (FILE.py:FUNC) is evaluated with --checkpoint and --data; regression
    reports the loss (MSE) only.

    \b
    Examples:
      gpunet train lenet --checkpoint lenet.npz && gpunet evaluate lenet.npz
      gpunet evaluate lenet.npz --json
      gpunet evaluate my_model.py:build --checkpoint my_model.npz --data my_data.npz
    """
    from gpunet.data import DataLoader
    from gpunet.training import evaluate as run_evaluation

    where = resolve_target(target, checkpoint, data, data_dir)
    apply_backend(backend_name, kernels)
    if where.model is None:
        recipe, split, model, state = load_builtin_trained(where.checkpoint, data_dir, "evaluate")
    else:
        recipe, split, model, state = load_user_trained(where, "evaluate")
    result = run_evaluation(recipe, model, DataLoader(split.test, 256), int(split.info.get("num_classes", 2)))
    classify = recipe.task == "classification"
    if as_json:
        report = {"recipe": state["recipe"], "dataset": split.info.get("name"), "task": recipe.task,
                  "loss": result["loss"]}
        if classify:
            report.update(accuracy=result["accuracy"], confusion=result["confusion"].tolist())
        click.echo(json.dumps(report))
        return
    click.echo(f"{state['recipe']} on {split.info.get('name')} test split ({len(split.test)} samples)")
    if not classify:
        click.echo(f"loss (MSE) {result['loss']:.4g}")
        return
    click.echo(f"loss {result['loss']:.4f}  accuracy {result['accuracy']:.4f}")
    click.echo(format_confusion(result["confusion"]))


def format_confusion(confusion: Any) -> str:
    """The confusion matrix as a text table (rows: true class, columns: predicted)."""
    n = confusion.shape[0]
    width = max(5, len(str(int(confusion.max()))) + 1)
    header = "true\\pred " + "".join(f"{j:>{width}}" for j in range(n))
    rows = [f"{i:>9} " + "".join(f"{int(v):>{width}}" for v in confusion[i]) for i in range(n)]
    return "\n".join([header, *rows])
