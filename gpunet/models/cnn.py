"""LeNet-5 (LeCun et al. 1998) and the source text's dense-vs-convolution weight count.

LeNet-5: conv 6@5x5 -> pool 2 -> conv 16@5x5 -> pool 2 -> fc 120 -> fc 84 -> fc classes
(5 layers with weights; pooling and activations are not counted as layers).

Input size: the classic network takes 32x32 images (28x28 MNIST works unpadded too: 16x4x4
features). Inputs too small for two unpadded 5x5 convolutions and two poolings (below 16x16,
e.g. 8x8 scikit-learn digits) use ``"same"`` convolutions (padding 2), so an 8x8 image gives
16x2x2 features. ``conv_padding`` overrides this rule.
"""

from __future__ import annotations

from typing import NamedTuple

from gpunet import functional as F
from gpunet.autograd import Tensor
from gpunet.nn.conv import AvgPool2d, Conv2d, MaxPool2d
from gpunet.nn.linear import Linear
from gpunet.nn.module import Module
from gpunet.ops.conv2d import output_size, pair

Size = int | tuple[int, int]


def _feature_side(size: int, padding: int) -> int:
    """Side of the feature map after conv5 -> pool2 -> conv5 -> pool2."""
    for _ in range(2):
        size = output_size(size, 5, 1, padding, 1)
        size = output_size(size, 2, 2, 0, 1) if size > 0 else 0
    return size


class LeNet(Module):
    """LeNet-5 for ``in_channels`` x ``input_size`` images (NCHW) and ``num_classes`` logits.

    ``activation``: ``"relu"`` or ``"tanh"`` (the original); ``pool``: ``"max"`` or ``"avg"``
    (the original subsampling). ``input_mean`` / ``input_std`` standardise the input first, as
    LeNet-5 did (mean ~0, variance ~1); the defaults leave it unchanged.
    Parameter names follow PyTorch's LeNet examples:
    ``conv1.weight``, ``conv2.weight``, ``fc1.weight``, ``fc2.weight``, ``fc3.weight`` (+ biases).
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 1, input_size: Size = 32,
                 activation: str = "relu", pool: str = "max", conv_padding: int | None = None,
                 input_mean: float = 0.0, input_std: float = 1.0) -> None:
        super().__init__()
        if activation not in ("relu", "tanh"):
            raise ValueError(f"LeNet: expected activation 'relu' or 'tanh', got {activation!r}")
        if pool not in ("max", "avg"):
            raise ValueError(f"LeNet: expected pool 'max' or 'avg', got {pool!r}")
        if not input_std > 0:
            raise ValueError(f"LeNet: expected input_std > 0, got {input_std}")
        h, w = pair(input_size, "input_size", "LeNet")
        if conv_padding is None:
            conv_padding = 0 if min(_feature_side(h, 0), _feature_side(w, 0)) >= 1 else 2
        fh, fw = _feature_side(h, conv_padding), _feature_side(w, conv_padding)
        if min(fh, fw) < 1:
            raise ValueError(f"LeNet: input_size {(h, w)} is too small for two 5x5 convolutions and "
                             f"two 2x2 poolings with padding {conv_padding}")
        self.input_size, self.conv_padding, self.num_classes = (h, w), conv_padding, num_classes
        self.activation, self.pool_kind = activation, pool
        self.input_mean, self.input_std = float(input_mean), float(input_std)
        self.conv1 = Conv2d(in_channels, 6, 5, padding=conv_padding)
        self.conv2 = Conv2d(6, 16, 5, padding=conv_padding)
        self.pool = MaxPool2d(2) if pool == "max" else AvgPool2d(2)
        self.fc1 = Linear(16 * fh * fw, 120)
        self.fc2 = Linear(120, 84)
        self.fc3 = Linear(84, num_classes)
        self.act = F.get_activation(activation)

    def features(self, x: Tensor) -> Tensor:
        """The flattened output of the convolutional part, ``(N, 16 * fh * fw)``."""
        if self.input_mean != 0.0 or self.input_std != 1.0:
            x = (x - self.input_mean) * (1.0 / self.input_std)
        x = self._conv_act_pool(self.conv1, x)
        x = self._conv_act_pool(self.conv2, x)
        return F.flatten(x, 1)

    def _conv_act_pool(self, conv: Conv2d, x: Tensor) -> Tensor:
        """``pool(act(conv(x)))``; with ReLU one fused op (``with_relu_pool``) unless a hook
        watches the convolution or the pool."""
        if self.activation == "relu" and not (conv.hooked() or self.pool.hooked()):
            return conv.with_relu_pool(x, self.pool)
        return self._act_pool(conv(x))

    def _act_pool(self, x: Tensor) -> Tensor:
        """``pool(act(x))``; with ReLU one fused op (``after_relu``) unless a hook watches the pool."""
        if self.activation == "relu" and not self.pool.hooked():
            return self.pool.after_relu(x)
        return self.pool(self.act(x))

    def forward(self, x: Tensor) -> Tensor:
        x = self._dense_act(self.fc1, self.features(x))
        x = self._dense_act(self.fc2, x)
        return self.fc3(x)

    def _dense_act(self, layer: Linear, x: Tensor) -> Tensor:
        """``act(layer(x))``; with ReLU one fused op (``with_relu``) unless a hook watches the layer."""
        if self.activation == "relu" and not layer.hooked():
            return layer.with_relu(x)
        return self.act(layer(x))

    def extra_repr(self) -> str:
        return (f"num_classes={self.num_classes}, input_size={self.input_size}, activation="
                f"{self.activation!r}, pool={self.pool_kind!r}, conv_padding={self.conv_padding}")


class WeightCount(NamedTuple):
    dense: int
    conv: int


def dense_vs_conv_weights(m: int, n: int, kernel: Size = 5, in_channels: int = 1,
                          out_channels: int = 1) -> WeightCount:
    """Weights linking two ``m x n`` layers: fully connected vs one convolution.

    Dense: every one of the ``m*n*in_channels`` inputs connects to every one of the
    ``m*n*out_channels`` outputs, ``(mn)^2`` for one channel each; convolution: only the shared
    filters, ``out_channels * in_channels * kh * kw`` (biases not counted).
    """
    kh, kw = pair(kernel, "kernel", "dense_vs_conv_weights")
    if min(m, n, in_channels, out_channels) < 1:
        raise ValueError(f"dense_vs_conv_weights: expected positive sizes, got m={m}, n={n}, "
                         f"in_channels={in_channels}, out_channels={out_channels}")
    return WeightCount(dense=(m * n * in_channels) * (m * n * out_channels),
                       conv=out_channels * in_channels * kh * kw)
