"""What a CNN's first layer learned: its filters and the feature maps they extract from one image.

The source text's point that "filters extract features": each first-layer filter is a small
weight pattern slid over the image; its feature map is large where the image looks like it.
Drawing needs the optional ``plot`` extra (matplotlib).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy

from gpunet import backend
from gpunet.autograd import Tensor, no_grad
from gpunet.nn.conv import Conv2d
from gpunet.nn.module import Module


def first_conv(model: Module) -> tuple[str, Conv2d]:
    """The first Conv2d of ``model`` (registration order) and its name."""
    for name, mod in model.named_modules():
        if isinstance(mod, Conv2d):
            return name, mod
    raise ValueError(f"{type(model).__name__} has no Conv2d layer: filters can be drawn only for a "
                     f"convolutional network (e.g. a checkpoint of `gpunet train lenet`)")


def first_layer(model: Module, image: Any) -> tuple[numpy.ndarray, numpy.ndarray]:
    """``(filters, maps)``: the first conv layer's weight ``(C_out, C_in, kh, kw)`` and its output
    ``(C_out, H', W')`` (before the activation) for one ``image`` of shape ``(C, H, W)``."""
    _, conv = first_conv(model)
    x = numpy.asarray(backend.to_numpy(image))
    if x.ndim != 3:
        raise ValueError(f"first_layer: expected one image (C, H, W), got shape {x.shape}")
    captured: list[Any] = []

    def grab(_mod: Module, _inputs: tuple[Any, ...], out: Any) -> None:
        if not captured:
            captured.append(out)

    try:
        with conv.register_forward_hook(grab), no_grad():
            model.eval()
            model(Tensor(conv.weight.xp.asarray(x[None])))
    finally:
        model.train()
    if not captured:
        raise ValueError(f"first_layer: {type(model).__name__} never called its first Conv2d")
    return conv.weight.numpy(), backend.to_numpy(captured[0].data)[0]


def plot_first_layer(image: Any, filters: numpy.ndarray, maps: numpy.ndarray, path: str | Path,
                     title: str = "") -> Path:
    """Save a PNG: the input image, each filter (mean over input channels) and its feature map."""
    from gpunet.plotting import _pyplot

    plt = _pyplot()
    count = filters.shape[0]
    cols = max(count, 2)
    fig, axes = plt.subplots(3, cols, figsize=(1.6 * cols, 5.2), squeeze=False)
    for ax in axes.ravel():
        ax.set_axis_off()
    picture = numpy.asarray(backend.to_numpy(image))
    axes[0, 0].imshow(picture.mean(axis=0), cmap="gray")
    axes[0, 0].set_title("input", fontsize=9)
    bound = float(numpy.abs(filters).max()) or 1.0
    for k in range(count):
        axes[1, k].imshow(filters[k].mean(axis=0), cmap="bwr", vmin=-bound, vmax=bound)
        axes[1, k].set_title(f"filter {k}", fontsize=9)
        axes[2, k].imshow(maps[k], cmap="viridis")
        axes[2, k].set_title(f"map {k}", fontsize=9)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)


def save_filters(model: Module, image: Any, path: str | Path, title: str = "") -> Path:
    """:func:`first_layer` then :func:`plot_first_layer`."""
    filters, maps = first_layer(model, image)
    return plot_first_layer(image, filters, maps, path, title)
