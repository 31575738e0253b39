"""Layers and containers (``gpunet.nn``), PyTorch-compatible names and parameter layouts."""

from gpunet.nn import init
from gpunet.nn.containers import (
    GELU,
    MLP,
    Activation,
    Flatten,
    Identity,
    LeakyReLU,
    LogSoftmax,
    ModuleDict,
    ModuleList,
    ReLU,
    Sequential,
    Sigmoid,
    Softmax,
    Tanh,
)
from gpunet.nn.conv import AdaptiveAvgPool2d, AvgPool2d, Conv1d, Conv2d, MaxPool2d
from gpunet.nn.dropout import Dropout
from gpunet.nn.embedding import Embedding
from gpunet.nn.linear import Linear, Perceptron
from gpunet.nn.loss import BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, L1Loss, MSELoss, NLLLoss
from gpunet.nn.module import IncompatibleKeys, Module, Parameter
from gpunet.nn.normalization import BatchNorm1d, BatchNorm2d, LayerNorm
from gpunet.nn.recurrent import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNCell
from gpunet.nn.validate import LayerDtypeError

__all__ = [
    "GRU", "LSTM", "RNN", "Embedding",
    "MLP", "Activation", "Flatten", "Identity", "Linear", "Module", "Parameter", "Perceptron",
    "ReLU", "Sequential", "Sigmoid", "Tanh", "init",
]
__all__ += ["AvgPool2d", "Conv2d", "MaxPool2d"]
__all__ += ["AdaptiveAvgPool2d", "BCELoss", "BCEWithLogitsLoss", "BatchNorm1d", "BatchNorm2d", "Conv1d",
            "CrossEntropyLoss", "Dropout", "GELU", "GRUCell", "IncompatibleKeys", "L1Loss", "LSTMCell",
            "LayerDtypeError", "LayerNorm", "LeakyReLU", "LogSoftmax", "MSELoss", "ModuleDict", "ModuleList",
            "NLLLoss", "RNNCell", "Softmax"]
from gpunet.nn import utils as utils  # noqa: E402  (nn.utils: clip_grad_norm_, clip_grad_value_, rnn)
