"""Layers and containers (``gpunet.nn``), PyTorch-compatible names and parameter layouts."""

from gpunet.nn import init
from gpunet.nn.containers import MLP, Activation, Flatten, Identity, ReLU, Sequential, Sigmoid, Tanh
from gpunet.nn.conv import AvgPool2d, Conv2d, MaxPool2d
from gpunet.nn.embedding import Embedding
from gpunet.nn.linear import Linear, Perceptron
from gpunet.nn.module import Module, Parameter
from gpunet.nn.recurrent import GRU, LSTM, RNN

__all__ = [
    "GRU", "LSTM", "RNN", "Embedding",
    "MLP", "Activation", "Flatten", "Identity", "Linear", "Module", "Parameter", "Perceptron",
    "ReLU", "Sequential", "Sigmoid", "Tanh", "init",
]
__all__ += ["AvgPool2d", "Conv2d", "MaxPool2d"]
from gpunet.nn import utils as utils  # noqa: E402  (nn.utils: clip_grad_norm_, clip_grad_value_, rnn)
