"""Datasets: the ``Dataset`` base class, ``ArrayDataset``/``TensorDataset`` of aligned arrays, splits.

The DataLoader is in :mod:`gpunet.data.loader`; any object with ``__len__`` and ``__getitem__``
(a ``Dataset`` subclass, a list of samples) can be loaded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy

from gpunet import backend
from gpunet.autograd import Tensor


class Dataset:
    """Base class of map-style datasets (PyTorch's ``torch.utils.data.Dataset``).

    A subclass defines ``__getitem__(index)`` returning one sample (an array, a Tensor, a
    number, or a tuple/list/dict of them) and ``__len__``. ``__getitems__(indices)``, if defined,
    returns the samples of a whole batch at once.
    """

    def __getitem__(self, index: int) -> Any:
        raise NotImplementedError(f"{type(self).__name__}.__getitem__ is not defined")

    def __len__(self) -> int:
        raise NotImplementedError(f"{type(self).__name__}.__len__ is not defined")


class ArrayDataset(Dataset):
    """Rows of several aligned host arrays (inputs first, the target last).

    Indexing with an index array returns the whole batch as arrays, which the DataLoader uses
    for its fast path (one fancy index per array instead of one sample at a time).
    """

    def __init__(self, *arrays: numpy.ndarray) -> None:
        if not arrays:
            raise ValueError("ArrayDataset: expected at least one array")
        lengths = {len(a) for a in arrays}
        if len(lengths) != 1:
            raise ValueError(f"ArrayDataset: expected arrays of one length, got lengths "
                             f"{[len(a) for a in arrays]}")
        self.arrays = tuple(self._keep(a) for a in arrays)

    @staticmethod
    def _keep(array: Any) -> Any:
        return numpy.asarray(array)

    def __len__(self) -> int:
        return len(self.arrays[0])

    def __getitem__(self, index: Any) -> tuple[numpy.ndarray, ...]:
        return tuple(a[index] for a in self.arrays)

    def batch(self, indices: numpy.ndarray) -> tuple[Any, ...]:
        """The rows ``indices`` of every array (raw arrays, where they live)."""
        return tuple(a[indices] for a in self.arrays)


class TensorDataset(ArrayDataset):
    """PyTorch's ``TensorDataset``: rows of aligned Tensors (or arrays); ``ds[i]`` is a tuple of Tensors.

    The data stays where it is (a CuPy-backed Tensor is indexed on the device).
    """

    def __init__(self, *tensors: Any) -> None:
        if not tensors:
            raise ValueError("TensorDataset: expected at least one tensor")
        for i, t in enumerate(tensors):
            if getattr(t, "ndim", None) == 0 or (not hasattr(t, "shape") and not isinstance(t, (list, tuple))):
                raise ValueError(f"TensorDataset: tensors[{i}] must have a first (sample) dimension, got "
                                 f"{type(t).__name__} of shape {getattr(t, 'shape', None)}")
        lengths = [len(t) for t in tensors]
        if len(set(lengths)) != 1:
            raise ValueError(f"TensorDataset: expected tensors of one length (size of dimension 0), got {lengths}")
        self.arrays = tuple(self._keep(t) for t in tensors)

    @staticmethod
    def _keep(array: Any) -> Any:
        if isinstance(array, Tensor):
            return array.data
        if isinstance(array, numpy.ndarray) or backend.is_cupy_array(array):
            return array
        return numpy.asarray(array)

    @property
    def tensors(self) -> tuple[Tensor, ...]:
        return tuple(Tensor(a) for a in self.arrays)

    def __getitem__(self, index: Any) -> tuple[Tensor, ...]:
        return tuple(Tensor(a[index]) for a in self.arrays)


@dataclass
class Split:
    """A train/test pair and facts about the data (``num_classes``, ``input_shape``...)."""

    train: ArrayDataset
    test: ArrayDataset
    info: dict[str, Any] = field(default_factory=dict)


def train_test_split(arrays: tuple[numpy.ndarray, ...], test_fraction: float, seed: int,
                     stratify: numpy.ndarray | None = None) -> tuple[ArrayDataset, ArrayDataset]:
    """Shuffle rows with ``seed`` and split; ``stratify`` keeps label proportions per class."""
    rng = numpy.random.default_rng(seed)
    n = len(arrays[0])
    if stratify is None:
        order = rng.permutation(n)
        n_test = int(round(n * test_fraction))
        test_idx, train_idx = order[:n_test], order[n_test:]
    else:
        test_parts, train_parts = [], []
        for label in numpy.unique(stratify):
            idx = rng.permutation(numpy.flatnonzero(stratify == label))
            n_test = int(round(len(idx) * test_fraction))
            test_parts.append(idx[:n_test])
            train_parts.append(idx[n_test:])
        test_idx = rng.permutation(numpy.concatenate(test_parts))
        train_idx = rng.permutation(numpy.concatenate(train_parts))
    return (ArrayDataset(*(a[train_idx] for a in arrays)), ArrayDataset(*(a[test_idx] for a in arrays)))
