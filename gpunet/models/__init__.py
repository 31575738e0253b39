"""Ready-made models: LinearModel, Perceptron, MLP, LeNet and sequence classifiers."""

from gpunet.models.cnn import LeNet, dense_vs_conv_weights
from gpunet.models.dense import MLP, LinearModel, Perceptron, mlp
from gpunet.models.rnn import SequenceClassifier

__all__ = ["MLP", "LeNet", "LinearModel", "Perceptron", "SequenceClassifier", "dense_vs_conv_weights", "mlp"]
