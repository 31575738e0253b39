"""``gpunet summary MODEL``."""

from __future__ import annotations

from typing import Any

import click

from gpunet.cli.errors import library_usage_errors


@click.command()
@click.argument("model")
@click.option("--dataset", default=None, help="Dataset that fixes the input shape [default: the model's own].")
@library_usage_errors
def summary(model: str, dataset: str | None) -> None:
    """Layer table of MODEL: output shapes, parameter counts, total, layers, deep or not.

    \b
    Examples:
      gpunet summary mlp
      gpunet summary lenet
      gpunet summary lstm --dataset dna
    """
    import gpunet
    from gpunet.summary import format_table, layer_table
    from gpunet.training import prepare_run

    gpunet.use("numpy")
    recipe, split, net = prepare_run(model, dataset, 0, None)
    *inputs, _ = split.test[:2]
    tensors = [gpunet.Tensor(a) for a in inputs]
    click.echo(f"{model} ({recipe.describe or type(net).__name__}) on {split.info.get('name')}")
    click.echo(format_table(net, layer_table(net, *tensors)))
    click.echo(_conv_note(net, tensors[0].shape))


def _conv_note(net: Any, input_shape: tuple[int, ...]) -> str:
    """The source text's comparison for the first conv layer: dense (mn)^2 weights vs its filters."""
    from gpunet.nn.conv import Conv2d

    conv = next((m for m in net.modules() if isinstance(m, Conv2d)), None)
    if conv is None or len(input_shape) != 4:
        return ""
    from gpunet.models.cnn import dense_vs_conv_weights

    m, n = input_shape[2], input_shape[3]
    c_out, c_in, kh, kw = conv.weight.shape
    one = dense_vs_conv_weights(m, n, (kh, kw))
    full = dense_vs_conv_weights(m, n, (kh, kw), c_in, c_out)
    return (f"dense vs conv: a fully-connected layer between two {m}x{n} layers needs ({m}*{n})^2 = "
            f"{one.dense:,} weights, one {kh}x{kw} filter only {one.conv}; for {c_in}->{c_out} channels "
            f"{full.dense:,} dense weights vs {full.conv:,} in the filters of the first conv layer")
