"""``gpunet filters CHECKPOINT``: every conv layer's filters and feature maps of a trained CNN as a PNG."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import click

from gpunet.cli.errors import library_usage_errors
from gpunet.cli.model_file import (
    TARGET_METAVAR,
    Target,
    load_builtin_trained,
    load_user_trained,
    resolve_target,
)

INSTALL_PLOT = "pip install matplotlib (or pip install 'gpunet[plot]')"


def check_matplotlib(command: str) -> None:
    """Refuse (one line, exit 1) a command that draws when matplotlib is missing, before anything loads."""
    if importlib.util.find_spec("matplotlib") is None:
        raise click.ClickException(f"{command}: needs the matplotlib package to draw the PNG: {INSTALL_PLOT}")


@click.command()
@click.argument("target", metavar=TARGET_METAVAR)
@click.option("--checkpoint", type=click.Path(dir_okay=False), default=None,
              help="For a model from a file: the checkpoint `gpunet train FILE.py:FUNC --checkpoint` wrote.")
@click.option("--data", type=click.Path(dir_okay=False), default=None,
              help="For a model from a file: the .npz it was trained on (the image comes from its test split).")
@click.option("--out", type=click.Path(dir_okay=False), default=None,
              help="PNG to write [default: the checkpoint's name with -filters.png].")
@click.option("--sample", type=click.IntRange(min=0), default=0, show_default=True,
              help="Index of the test-split image whose feature maps are drawn.")
@click.option("--data-dir", type=click.Path(file_okay=False), default=None)
@library_usage_errors
def filters(target: str, checkpoint: str | None, data: str | None, out: str | None, sample: int,
            data_dir: str | None) -> None:
    """Draw every convolution's filters of a trained CNN and the feature maps they extract
    from one test image, each row with a colour bar (needs matplotlib: pip install 'gpunet[plot]').

    A model from a file (FILE.py:FUNC) is drawn with --checkpoint and --data.

    \b
    Examples:
      gpunet train lenet --checkpoint lenet.npz
      gpunet filters lenet.npz --out lenet-filters.png
      gpunet filters lenet.npz --sample 7 --out seven.png
      gpunet filters my_cnn.py:build --checkpoint my_cnn.npz --data images.npz --out my_cnn.png
    """
    check_matplotlib("filters")  # before the paths are even looked at: nothing is loaded in vain
    where = resolve_target(target, checkpoint, data, data_dir)
    path = Path(out) if out else Path(where.checkpoint).with_name(Path(where.checkpoint).stem + "-filters.png")
    from gpunet.cli.options import check_output

    check_output(str(path), "--out")  # before the checkpoint and the data are loaded
    _draw(where, data_dir, path, sample)
    click.echo(f"wrote {path}")


def _draw(where: Target, data_dir: str | None, path: Path, sample: int) -> None:
    import numpy

    import gpunet
    from gpunet.visualize import first_conv, save_filters

    gpunet.use("numpy", quiet=True)
    if where.model is None:
        _, split, model, state = load_builtin_trained(where.checkpoint, data_dir, "filters")
    else:
        _, split, model, state = load_user_trained(where, "filters")
    first_conv(model)
    if sample >= len(split.test):
        raise click.BadParameter(f"{sample} is past the test split ({len(split.test)} images)",
                                 param_hint="--sample")
    *inputs, target = split.test[sample]
    title = (f"{state['recipe']} on {split.info.get('name')}: conv filters and their feature maps "
             f"(test image {sample}, label {numpy.asarray(target).reshape(-1)[0]})")
    save_filters(model, inputs[0], path, title)
