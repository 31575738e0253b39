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


def conv_layers(model: Module, image: Any) -> list[tuple[str, numpy.ndarray, numpy.ndarray]]:
    """``[(name, filters, maps), ...]`` for every Conv2d of ``model`` (registration order): its
    weight ``(C_out, C_in, kh, kw)`` and its output ``(C_out, H', W')`` for one ``image`` ``(C, H, W)``."""
    convs = [(name, mod) for name, mod in model.named_modules() if isinstance(mod, Conv2d)]
    if not convs:
        first_conv(model)  # raises the usual "no Conv2d layer" error
    x = numpy.asarray(backend.to_numpy(image))
    if x.ndim != 3:
        raise ValueError(f"conv_layers: expected one image (C, H, W), got shape {x.shape}")
    captured: dict[str, Any] = {}

    def grabber(name: str) -> Any:
        def grab(_mod: Module, _inputs: tuple[Any, ...], out: Any) -> None:
            captured.setdefault(name, out)
        return grab

    hooks = [conv.register_forward_hook(grabber(name)) for name, conv in convs]
    try:
        with no_grad():
            model.eval()
            model(Tensor(convs[0][1].weight.xp.asarray(x[None])))
    finally:
        model.train()
        for hook in hooks:
            hook.remove()
    return [(name, conv.weight.numpy(), backend.to_numpy(captured[name].data)[0])
            for name, conv in convs if name in captured]


def filter_figure(image: Any, layers: list[tuple[str, numpy.ndarray, numpy.ndarray]],
                  title: str = "") -> Any:
    """A matplotlib figure: the input image, then per conv layer a block of two rows (each filter,
    mean over input channels, and its feature map), each row with its own colour bar."""
    from gpunet.plotting import _pyplot

    plt = _pyplot()
    cols = max([2] + [filters.shape[0] for _, filters, _ in layers])
    rows = 1 + 2 * len(layers)
    fig, axes = plt.subplots(rows, cols, figsize=(1.2 * cols + 1.5, 1.5 * rows), squeeze=False,
                             layout="constrained")
    for ax in axes.ravel():
        ax.set_axis_off()
    picture = numpy.asarray(backend.to_numpy(image))
    axes[0, 0].imshow(picture.mean(axis=0), cmap="gray")
    axes[0, 0].set_title("input", fontsize=8)
    for i, (name, filters, maps) in enumerate(layers):
        frow, mrow = axes[1 + 2 * i], axes[2 + 2 * i]
        bound = float(numpy.abs(filters).max()) or 1.0
        low, high = float(maps.min()), float(maps.max())
        for k in range(filters.shape[0]):
            shown = frow[k].imshow(filters[k].mean(axis=0), cmap="bwr", vmin=-bound, vmax=bound)
            frow[k].set_title(f"{name} f{k}", fontsize=7)
            mapped = mrow[k].imshow(maps[k], cmap="viridis", vmin=low, vmax=high)
            mrow[k].set_title(f"{name} map {k}", fontsize=7)
        fig.colorbar(shown, ax=list(frow), shrink=0.8, label=f"{name} weight")
        fig.colorbar(mapped, ax=list(mrow), shrink=0.8, label=f"{name} output")
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def save_filters(model: Module, image: Any, path: str | Path, title: str = "") -> Path:
    """Save a PNG of every conv layer's filters and feature maps (:func:`conv_layers`,
    :func:`filter_figure`)."""
    from gpunet.plotting import _pyplot

    fig = filter_figure(image, conv_layers(model, image), title)
    fig.savefig(path, dpi=100)
    _pyplot().close(fig)
    return Path(path)
