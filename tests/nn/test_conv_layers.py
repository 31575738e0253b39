"""Conv2d / MaxPool2d / AvgPool2d layers: shapes, init, names, counting."""

from __future__ import annotations

import math

import numpy
import pytest

import gpunet
from gpunet import functional as F
from gpunet import nn
from gpunet.autograd import Tensor


def test_conv2d_shapes_and_parameters():
    layer = nn.Conv2d(3, 8, 3, stride=2, padding=1)
    assert [name for name, _ in layer.named_parameters()] == ["weight", "bias"]
    assert layer.weight.shape == (8, 3, 3, 3) and layer.bias.shape == (8,)
    assert layer.weight.dtype == numpy.float32
    y = layer(gpunet.tensor(numpy.zeros((2, 3, 9, 10))))
    assert y.shape == (2, 8, 5, 5)
    assert layer.layer_count == 1 and layer.num_layers == 1
    assert "kernel_size=(3, 3)" in repr(layer)


def test_conv2d_default_init_is_pytorchs_uniform_bound():
    layer = nn.Conv2d(4, 16, (3, 5))
    bound = 1 / math.sqrt(4 * 3 * 5)
    for p in (layer.weight, layer.bias):
        assert float(abs(p.data).max()) <= bound
        assert float(abs(p.data).max()) > 0.8 * bound  # spread over the whole interval
    assert float(layer.weight.data.std()) == pytest.approx(bound / math.sqrt(3), rel=0.1)


def test_conv2d_is_seeded_and_without_bias():
    gpunet.manual_seed(7)
    a = nn.Conv2d(2, 3, 3, bias=False)
    gpunet.manual_seed(7)
    b = nn.Conv2d(2, 3, 3, bias=False)
    numpy.testing.assert_array_equal(a.weight.data, b.weight.data)
    assert a.bias is None and len(a.parameters()) == 1


def test_conv2d_forward_equals_functional_and_trains():
    layer = nn.Conv2d(1, 2, 3, padding=1)
    x = gpunet.tensor(numpy.random.default_rng(0).standard_normal((2, 1, 5, 5)))
    y = layer(x)
    numpy.testing.assert_array_equal(y.data, F.conv2d(x, layer.weight, layer.bias, 1, 1).data)
    y.sum().backward()
    assert layer.weight.grad.shape == (2, 1, 3, 3)
    numpy.testing.assert_allclose(layer.bias.grad, [50.0, 50.0])


def test_conv2d_rejects_bad_configuration():
    with pytest.raises(ValueError, match="Conv2d: expected in_channels >= 1"):
        nn.Conv2d(0, 3, 3)
    with pytest.raises(gpunet.OpError, match="Conv2d: expected stride >= 1"):
        nn.Conv2d(1, 3, 3, stride=0)


@pytest.mark.parametrize("cls, fn", [(nn.MaxPool2d, F.max_pool2d), (nn.AvgPool2d, F.avg_pool2d)])
def test_pool_layers(cls, fn):
    layer = cls(2)
    x = Tensor(numpy.random.default_rng(1).standard_normal((2, 3, 7, 6)))
    numpy.testing.assert_array_equal(layer(x).data, fn(x, 2).data)
    assert layer(x).shape == (2, 3, 3, 3)
    assert layer.parameters() == [] and layer.num_layers == 0
    assert cls(3, stride=1, padding=1)(x).shape == (2, 3, 7, 6)


def test_sequential_cnn_counts_weighted_layers():
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(4 * 3 * 3, 2))
    assert model(gpunet.tensor(numpy.zeros((5, 1, 8, 8)))).shape == (5, 2)
    assert model.num_layers == 2 and model.is_deep
    assert [n for n, _ in model.named_parameters()] == ["0.weight", "0.bias", "4.weight", "4.bias"]
