"""scikit-learn's bundled 8x8 handwritten digits (1797 images, 10 classes; no download).

Pixels (0..16) are scaled to [0, 1] and returned as float32 NCHW ``(N, 1, size, size)`` with
int64 labels, split 80/20 per class with a fixed seed; ``info`` has the training pixels' mean
and standard deviation (``pixel_mean``, ``pixel_std``) for models that standardise their input.
``size`` > 8 (a multiple of 8) enlarges each image by nearest-neighbour repetition, e.g.
``size=32`` for the classic LeNet-5 input.
"""

from __future__ import annotations

import numpy

from gpunet.data.dataset import ArrayDataset, Split, train_test_split


def _load_digits() -> tuple[numpy.ndarray, numpy.ndarray]:
    try:
        from sklearn.datasets import load_digits
    except ImportError as exc:
        raise ImportError("the digits dataset ships with scikit-learn, which is not installed: "
                          "pip install 'gpunet[data]' (or pip install scikit-learn)") from exc
    bunch = load_digits()
    return bunch.images, bunch.target


def load(seed: int = 0, test_fraction: float = 0.2, size: int = 8, dtype: str = "float32",
         data_dir: str | None = None) -> Split:
    """The digits as a stratified train/test :class:`Split` (``data_dir`` is not needed: the
    images ship with scikit-learn; it is accepted so every dataset takes the same options)."""
    if size < 8 or size % 8:
        raise ValueError(f"digits: expected size a multiple of 8 (8, 16, 32, ...), got {size}")
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"digits: expected 0 < test_fraction < 1, got {test_fraction}")
    images, labels = _load_digits()
    x = (images / 16.0).astype(dtype)[:, None]
    if size > 8:
        factor = size // 8
        x = x.repeat(factor, axis=2).repeat(factor, axis=3)
    y = labels.astype(numpy.int64)
    train, test = train_test_split((x, y), test_fraction, seed, stratify=y)
    pixels = train.arrays[0]
    info = {"name": "digits", "num_classes": 10, "input_shape": (1, size, size),
            "pixel_mean": float(pixels.mean()), "pixel_std": float(pixels.std()),
            "classes": [str(k) for k in range(10)], "source": "sklearn.datasets.load_digits"}
    return Split(ArrayDataset(*train.arrays), ArrayDataset(*test.arrays), info)
