"""Ready-made models: LinearModel, Perceptron, MLP, LeNet and sequence classifiers."""

from gpunet.models.dense import MLP, LinearModel, Perceptron, mlp

__all__ = ["MLP", "LinearModel", "Perceptron", "mlp"]
