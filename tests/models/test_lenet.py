"""LeNet-5: shapes, names, counting, input sizes, gradients, and learning on digits."""

from __future__ import annotations

import numpy
import pytest

import gpunet
from gpunet import functional as F
from gpunet.autograd import Tensor
from gpunet.models.cnn import LeNet, dense_vs_conv_weights
from gpunet.testing import gradcheck

NAMES = ["conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias", "fc1.weight", "fc1.bias",
         "fc2.weight", "fc2.bias", "fc3.weight", "fc3.bias"]


def test_classic_lenet5():
    model = LeNet()
    assert [name for name, _ in model.named_parameters()] == NAMES
    assert model.num_layers == 5 and model.is_deep
    assert model.num_parameters() == 61706  # the same count as PyTorch's LeNet-5
    assert model.conv1.weight.shape == (6, 1, 5, 5) and model.conv2.weight.shape == (16, 6, 5, 5)
    assert model.fc1.weight.shape == (120, 400) and model.fc3.weight.shape == (10, 84)
    y = model(gpunet.tensor(numpy.zeros((3, 1, 32, 32))))
    assert y.shape == (3, 10) and y.dtype == numpy.float32


@pytest.mark.parametrize("size, padding, features", [(32, 0, 400), (28, 0, 256), ((32, 28), 0, 16 * 5 * 4),
                                                     (8, 2, 64), (16, 0, 16)])
def test_input_sizes(size, padding, features):
    model = LeNet(num_classes=4, in_channels=3, input_size=size)
    assert model.conv_padding == padding and model.fc1.weight.shape == (120, features)
    h, w = (size, size) if isinstance(size, int) else size
    assert model(gpunet.tensor(numpy.ones((2, 3, h, w)))).shape == (2, 4)


def test_too_small_input_and_bad_options():
    with pytest.raises(ValueError, match="too small"):
        LeNet(input_size=2)
    with pytest.raises(ValueError, match="activation"):
        LeNet(activation="gelu")
    with pytest.raises(ValueError, match="pool"):
        LeNet(pool="min")


@pytest.mark.parametrize("activation, pool", [("tanh", "avg"), ("relu", "max"), ("tanh", "max")])
def test_gradients_through_the_whole_network(activation, pool):
    model = LeNet(input_size=8, activation=activation, pool=pool).astype(numpy.float64)
    x = numpy.random.default_rng(0).standard_normal((2, 1, 8, 8))
    assert gradcheck(lambda t: model(t), [x])
    model(Tensor(x)).sum().backward()
    assert all(p.grad is not None and p.grad.shape == p.shape for p in model.parameters())


def test_input_standardisation():
    plain, scaled = LeNet(input_size=8), LeNet(input_size=8, input_mean=0.25, input_std=0.5)
    scaled.load_state_dict(plain.state_dict())
    x = numpy.random.default_rng(2).random((2, 1, 8, 8))
    numpy.testing.assert_allclose(scaled(gpunet.tensor(x)).data, plain(gpunet.tensor((x - 0.25) / 0.5)).data,
                                  rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="input_std > 0"):
        LeNet(input_std=0.0)


def test_lenet_recipe_builds_from_dataset_info():
    from gpunet.training import get_recipe

    info = {"input_shape": (1, 8, 8), "num_classes": 10, "pixel_mean": 0.3, "pixel_std": 0.4}
    recipe = get_recipe("lenet")
    model = recipe.build(info)
    assert isinstance(model, LeNet) and model.input_size == (8, 8) and model.conv_padding == 2
    assert (model.input_mean, model.input_std) == (0.3, 0.4)
    assert recipe.dataset == "digits" and recipe.config(info)["input_size"] == [8, 8]


def test_state_dict_round_trip():
    a, b = LeNet(input_size=8), LeNet(input_size=8)
    b.load_state_dict(a.state_dict())
    x = gpunet.tensor(numpy.random.default_rng(1).random((2, 1, 8, 8)))
    numpy.testing.assert_array_equal(a(x).data, b(x).data)


def test_dense_vs_conv_weights():
    # the source text: a dense layer between two m x n layers needs (mn)^2 weights
    assert dense_vs_conv_weights(32, 32, 5) == ((32 * 32) ** 2, 25)
    assert dense_vs_conv_weights(28, 28, 3).dense == 614656
    counts = dense_vs_conv_weights(28, 28, (5, 3), in_channels=6, out_channels=16)
    assert counts.dense == (28 * 28 * 6) * (28 * 28 * 16) and counts.conv == 16 * 6 * 5 * 3
    with pytest.raises(ValueError, match="positive sizes"):
        dense_vs_conv_weights(0, 5)


def test_lenet_learns_digits():
    """A few hundred Adam steps on the 8x8 digits reach far above chance (10%).

    One BLAS thread: these GEMMs are small, and on a busy shared machine OpenBLAS threads that
    spin-wait for a core can make a step 10-20x slower; one thread keeps this test at seconds.
    """
    from threadpoolctl import threadpool_limits

    from gpunet.data import DataLoader, load_dataset
    from gpunet.optim import Adam

    split = load_dataset("digits", seed=0)
    model = LeNet(input_size=8)
    opt = Adam(model.parameters(), lr=2e-3)
    loader = DataLoader(split.train, batch_size=32, shuffle=True, seed=0)
    with threadpool_limits(limits=1, user_api="blas"):
        for epoch in range(5):
            for x, t in loader.iterate(epoch):
                loss = F.cross_entropy(model(x), t)
                opt.zero_grad()
                loss.backward()
                opt.step()
    x_test, y_test = split.test.arrays
    with gpunet.no_grad():
        predicted = model(gpunet.tensor(x_test)).data.argmax(axis=1)
    assert float((predicted == y_test).mean()) > 0.8
