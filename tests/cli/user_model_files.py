"""The model file and data that the user-model CLI tests share (``train`` in test_user_model.py,
``summary``/``evaluate``/``filters`` in test_user_model_commands.py)."""

from __future__ import annotations

import numpy

MODELS = '''
import gpunet.nn as nn


def classifier():
    return nn.MLP([2, 16, 3], activation="relu")


def wide_classifier():
    return nn.MLP([2, 8, 3], activation="relu")


def regressor():
    return nn.Linear(2, 1)


def not_a_module():
    return {"layers": 2}
'''


def blobs(rng: numpy.random.Generator) -> tuple[numpy.ndarray, numpy.ndarray]:
    """150 float32 points in three 2-D Gaussian blobs and their int64 classes 0, 1, 2."""
    centres = numpy.array([[0.0, 3.0], [3.0, -2.0], [-3.0, -2.0]])
    y = numpy.arange(150) % 3
    return (centres[y] + rng.normal(size=(150, 2))).astype(numpy.float32), y
