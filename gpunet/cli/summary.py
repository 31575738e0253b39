"""``gpunet summary MODEL``."""

from __future__ import annotations

import click


@click.command()
@click.argument("model")
@click.option("--dataset", default=None, help="Dataset that fixes the input shape [default: the model's own].")
def summary(model: str, dataset: str | None) -> None:
    """Layer table of MODEL: output shapes, parameter counts, total, layers, deep or not.

    \b
    Examples:
      gpunet summary mlp
      gpunet summary lenet
      gpunet summary lstm --dataset dna
    """
    import gpunet
    from gpunet.cli.train import prepare_run
    from gpunet.summary import format_table, layer_table

    gpunet.use("numpy")
    recipe, split, net = prepare_run(model, dataset, 0, None)
    *inputs, _ = split.test[:2]
    tensors = [gpunet.Tensor(a) for a in inputs]
    click.echo(f"{model} ({recipe.describe or type(net).__name__}) on {split.info.get('name')}")
    click.echo(format_table(net, layer_table(net, *tensors)))
    extra = getattr(net, "summary_notes", None)
    if callable(extra):
        click.echo(extra())
