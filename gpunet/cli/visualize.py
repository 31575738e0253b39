"""``gpunet filters CHECKPOINT``: every conv layer's filters and feature maps of a trained CNN as a PNG."""

from __future__ import annotations

from pathlib import Path

import click

from gpunet.cli.errors import library_usage_errors


@click.command()
@click.argument("checkpoint", type=click.Path(exists=True, dir_okay=False))
@click.option("--out", type=click.Path(dir_okay=False), default=None,
              help="PNG to write [default: CHECKPOINT's name with -filters.png].")
@click.option("--sample", type=click.IntRange(min=0), default=0, show_default=True,
              help="Index of the test-split image whose feature maps are drawn.")
@click.option("--data-dir", type=click.Path(file_okay=False), default=None)
@library_usage_errors
def filters(checkpoint: str, out: str | None, sample: int, data_dir: str | None) -> None:
    """Draw every convolution's filters of a trained CNN and the feature maps they extract
    from one test image, each row with a colour bar (needs matplotlib: pip install 'gpunet[plot]').

    \b
    Examples:
      gpunet train lenet --checkpoint lenet.npz
      gpunet filters lenet.npz --out lenet-filters.png
      gpunet filters lenet.npz --sample 7 --out seven.png
    """
    import numpy

    import gpunet
    from gpunet.cli.options import check_output
    from gpunet.training import load_trained
    from gpunet.visualize import first_conv, save_filters

    path = Path(out) if out else Path(checkpoint).with_name(Path(checkpoint).stem + "-filters.png")
    check_output(str(path), "--out")  # before the checkpoint and the data are loaded
    gpunet.use("numpy", quiet=True)
    _, split, model, state = load_trained(checkpoint, data_dir, "filters")
    first_conv(model)
    if sample >= len(split.test):
        raise click.BadParameter(f"{sample} is past the test split ({len(split.test)} images)",
                                 param_hint="--sample")
    *inputs, target = split.test[sample]
    title = (f"{state['recipe']} on {split.info.get('name')}: conv filters and their feature maps "
             f"(test image {sample}, label {numpy.asarray(target).reshape(-1)[0]})")
    save_filters(model, inputs[0], path, title)
    click.echo(f"wrote {path}")
