"""XOR: the classic problem a single perceptron cannot solve and a 2-layer MLP can."""

from __future__ import annotations

import numpy

from gpunet.data.dataset import ArrayDataset, Split

POINTS = numpy.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=numpy.float64)
LABELS = numpy.array([0, 1, 1, 0], dtype=numpy.int64)


def load(seed: int = 0, copies: int = 64, noise: float = 0.05, dtype: str = "float32") -> Split:
    """The four XOR corners (test) and ``copies`` jittered copies of each (train), targets (n, 1)."""
    rng = numpy.random.default_rng(seed)
    x = numpy.repeat(POINTS, copies, axis=0) + rng.normal(0, noise, size=(4 * copies, 2))
    y = numpy.repeat(LABELS, copies)
    train = ArrayDataset(x.astype(dtype), y.astype(dtype)[:, None])
    test = ArrayDataset(POINTS.astype(dtype), LABELS.astype(dtype)[:, None])
    return Split(train, test, {"name": "xor", "num_classes": 2, "input_shape": (2,), "binary": True})
