"""``gpunet summary MODEL``: a built-in model, or a user's ``FILE.py:FUNC`` with ``--data`` or ``--input-shape``."""

from __future__ import annotations

from typing import Any

import click

from gpunet.cli.errors import library_usage_errors


def _shape(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[int, ...] | None:
    """``"1,8,8"`` -> ``(1, 8, 8)``: the shape of one sample, positive integers."""
    if value is None:
        return None
    try:
        shape = tuple(int(part) for part in value.split(","))
    except ValueError:
        shape = ()
    if not shape or min(shape) < 1:
        raise click.BadParameter(f"expected positive integers separated by commas (one sample's shape, "
                                 f"e.g. 1,8,8), got {value!r}")
    return shape


@click.command()
@click.argument("model")
@click.option("--dataset", default=None, help="Dataset that fixes the input shape [default: the model's own].")
@click.option("--data", type=click.Path(dir_okay=False), default=None,
              help="For a MODEL given as FILE.py:FUNC: the .npz whose x fixes the input (as for train).")
@click.option("--input-shape", callback=_shape, default=None, metavar="D1,D2,...",
              help="For a MODEL given as FILE.py:FUNC: one sample's shape (float32 input), instead of --data.")
@library_usage_errors
def summary(model: str, dataset: str | None, data: str | None, input_shape: tuple[int, ...] | None) -> None:
    """Layer table of MODEL: output shapes, parameter counts, total, layers, deep or not.

    MODEL may also be FILE.py:FUNC (FUNC() returns a gpunet Module) with --data FILE.npz or --input-shape.

    \b
    Examples:
      gpunet summary mlp
      gpunet summary lenet
      gpunet summary lstm --dataset dna
      gpunet summary my_model.py:build --data my_data.npz
      gpunet summary my_model.py:build --input-shape 4
    """
    import gpunet
    from gpunet.cli.model_file import user_summary_inputs
    from gpunet.summary import format_table, layer_table
    from gpunet.training import prepare_run
    from gpunet.training.user_model import is_model_file

    if is_model_file(model):
        title, net, tensors = user_summary_inputs(model, dataset, data, input_shape)
    else:
        for option, value in (("--data", data), ("--input-shape", input_shape)):
            if value is not None:
                raise click.BadParameter(f"is for a model from a file (FILE.py:FUNC), not the built-in {model!r}; "
                                         "use --dataset for a built-in model", param_hint=option)
        gpunet.use("numpy")
        recipe, split, net = prepare_run(model, dataset, 0, None)
        *inputs, _ = split.test[:2]
        tensors = [gpunet.Tensor(a) for a in inputs]
        title = f"{model} ({recipe.describe or type(net).__name__}) on {split.info.get('name')}"
    click.echo(title)
    click.echo(format_table(net, layer_table(net, *tensors)))
    note = _conv_note(net, tensors[0].shape)
    if note:  # no blank last line for a model without convolutions
        click.echo(note)


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
