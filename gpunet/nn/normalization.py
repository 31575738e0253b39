"""BatchNorm1d, BatchNorm2d and LayerNorm with PyTorch's parameters, buffers and state_dict keys."""

from __future__ import annotations

import numpy

from gpunet import backend
from gpunet.autograd import Tensor
from gpunet.dtypes import default_dtype
from gpunet.functional.norm import batch_norm, layer_norm, shape_argument
from gpunet.nn import validate
from gpunet.nn.module import Module, Parameter


def _full(shape: tuple[int, ...], value: float, dtype=None):
    return backend.xp().full(shape, value, dtype=dtype or default_dtype())


class _BatchNorm(Module):
    """Normalise each channel (axis 1) by the batch statistics in training and by the running
    ones in ``eval()``. Buffers ``running_mean`` (zeros), ``running_var`` (ones, updated with the
    unbiased batch variance) and ``num_batches_tracked`` (int64); ``weight`` ones, ``bias`` zeros.
    ``momentum=None`` is the cumulative average (``1 / num_batches_tracked``). With
    ``track_running_stats=False`` batch statistics are used in eval too."""

    ndims: tuple[int, ...] = ()
    layout = ""

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1, affine: bool = True,
                 track_running_stats: bool = True) -> None:
        super().__init__()
        name = type(self).__name__
        self.num_features = validate.size(name, "num_features", num_features)
        self.eps = validate.positive(name, "eps", eps)
        if momentum is not None:
            momentum = validate.number(name, "momentum", momentum)
            if not 0.0 <= momentum <= 1.0:
                raise ValueError(f"{name}: expected momentum in [0, 1] or None, got {momentum!r}")
        self.momentum = momentum
        self.affine = validate.flag(name, "affine", affine)
        self.track_running_stats = validate.flag(name, "track_running_stats", track_running_stats)
        shape = (self.num_features,)
        if self.affine:
            self.weight = Parameter(_full(shape, 1.0))
            self.bias = Parameter(_full(shape, 0.0))
        else:
            self.weight = self.bias = None
        if self.track_running_stats:
            self.register_buffer("running_mean", _full(shape, 0.0))
            self.register_buffer("running_var", _full(shape, 1.0))
            self.register_buffer("num_batches_tracked", backend.xp().zeros((), dtype=numpy.int64))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)

    def reset_running_stats(self) -> None:
        if self.track_running_stats:
            self.running_mean.data[...] = 0
            self.running_var.data[...] = 1
            self.num_batches_tracked.data[...] = 0

    def forward(self, x: Tensor) -> Tensor:
        name = type(self).__name__
        validate.check_input(name, x, self.weight if self.affine else self.running_mean)
        if x.ndim not in self.ndims or x.shape[1] != self.num_features:
            raise ValueError(f"{name}: expected input {self.layout} with C={self.num_features}, got {x.shape}")
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats:
            self.num_batches_tracked.data += 1
            if self.momentum is None:  # cumulative average: reads the counter (a host sync on the GPU)
                factor = 1.0 / int(self.num_batches_tracked.data)
        use_batch = self.training or not self.track_running_stats
        update = self.running_mean if (not self.training or self.track_running_stats) else None
        return batch_norm(x, update, self.running_var if update is not None else None, self.weight, self.bias,
                          use_batch, factor, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"track_running_stats={self.track_running_stats}")


class BatchNorm1d(_BatchNorm):
    """Batch normalisation of ``(N, C)`` or ``(N, C, L)`` input."""

    ndims = (2, 3)
    layout = "(N, C) or (N, C, L)"


class BatchNorm2d(_BatchNorm):
    """Batch normalisation of ``(N, C, H, W)`` input, per channel."""

    ndims = (4,)
    layout = "(N, C, H, W)"


class LayerNorm(Module):
    """Normalise over the trailing ``normalized_shape`` axes; ``weight`` ones, ``bias`` zeros
    (``elementwise_affine=False``: neither; ``bias=False``: no bias)."""

    def __init__(self, normalized_shape: int | tuple[int, ...], eps: float = 1e-5, elementwise_affine: bool = True,
                 bias: bool = True) -> None:
        super().__init__()
        try:
            self.normalized_shape = shape_argument("LayerNorm", normalized_shape)
        except (TypeError, ValueError) as exc:
            raise ValueError(str(exc)) from None
        self.eps = validate.positive("LayerNorm", "eps", eps)
        self.elementwise_affine = validate.flag("LayerNorm", "elementwise_affine", elementwise_affine)
        validate.flag("LayerNorm", "bias", bias)
        self.weight = Parameter(_full(self.normalized_shape, 1.0)) if self.elementwise_affine else None
        self.bias = Parameter(_full(self.normalized_shape, 0.0)) if self.elementwise_affine and bias else None

    def forward(self, x: Tensor) -> Tensor:
        validate.check_input("LayerNorm", x, self.weight)
        return layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"


__all__ = ["BatchNorm1d", "BatchNorm2d", "LayerNorm"]
