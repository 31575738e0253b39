"""The source text's first example: "will this loan be repaid within 3 months?" (O or X).

Two features per applicant, generated (no download) with a fixed seed:

- ``x1`` monthly income in millions of KRW, log-normal around 3.5 (range ~1 to 15);
- ``x2`` debt-to-annual-income ratio, uniform on [0, 1.6].

The label is O (1, repaid) when ``-1.0 + 0.9 * log(income) * 2 - 2.4 * ratio + noise > 0`` with
logistic noise of scale 0.25, so the classes are *almost* linearly separable: the best linear
classifier is right about 93-95% of the time, as in the source text's linear model. Features
are standardised with the training split's mean and standard deviation.
"""

from __future__ import annotations

import numpy

from gpunet.data.dataset import ArrayDataset, Split, train_test_split


def generate(n: int = 1000, seed: int = 0) -> tuple[numpy.ndarray, numpy.ndarray]:
    """Raw ``(features (n, 2), labels (n,))`` with labels 1 = O (repaid), 0 = X."""
    rng = numpy.random.default_rng(seed)
    income = numpy.exp(rng.normal(numpy.log(3.5), 0.45, size=n))
    ratio = rng.uniform(0.0, 1.6, size=n)
    score = -1.0 + 1.8 * numpy.log(income) - 2.4 * ratio + rng.logistic(0.0, 0.25, size=n)
    return numpy.stack([income, ratio], axis=1), (score > 0).astype(numpy.int64)


def load(seed: int = 0, n: int = 1000, test_fraction: float = 0.25, dtype: str = "float32") -> Split:
    """The credit problem as a stratified train/test :class:`Split` (targets ``(n, 1)`` floats)."""
    x, y = generate(n, seed)
    train, test = train_test_split((x, y), test_fraction, seed, stratify=y)
    mean, std = train.arrays[0].mean(axis=0), train.arrays[0].std(axis=0)

    def prepare(ds: ArrayDataset) -> ArrayDataset:
        features = ((ds.arrays[0] - mean) / std).astype(dtype)
        return ArrayDataset(features, ds.arrays[1].astype(dtype)[:, None])

    info = {"name": "credit", "num_classes": 2, "input_shape": (2,), "binary": True,
            "feature_names": ["monthly income (M KRW)", "debt/income ratio"],
            "mean": mean.tolist(), "std": std.tolist()}
    return Split(prepare(train), prepare(test), info)
