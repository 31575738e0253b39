"""Collating samples into a batch: stack on the host, then move once to the active backend.

:func:`default_collate` follows PyTorch's rules: arrays, Tensors and numbers are stacked along
a new first axis; tuples, lists, named tuples and dicts are collated field by field; strings
are kept as a list. Python floats become float64 and ints int64, as ``numpy.array`` (and
PyTorch) make them.

The work is in two halves so a worker process can do the first: :func:`collate_host` builds the
batch of NumPy arrays (picklable, no device), :func:`to_backend` turns every array into a Tensor
on the active backend in the main process.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence
from typing import Any

import numpy

from gpunet import backend
from gpunet.autograd import Tensor


class CollateError(ValueError):
    """Samples that cannot be put into one batch (names the field and the mismatch)."""


def _host(value: Any) -> Any:
    if isinstance(value, Tensor):
        return backend.to_numpy(value.data)
    if backend.is_cupy_array(value):
        return backend.to_numpy(value)
    return value


def collate_host(samples: Sequence[Any], where: str = "batch") -> Any:
    """The batch of ``samples`` with NumPy arrays in place of stacked fields."""
    if len(samples) == 0:
        raise CollateError("default_collate: got no samples")
    first = _host(samples[0])
    if isinstance(first, (numpy.ndarray, numpy.generic)) or (
            isinstance(first, numbers.Number) and not isinstance(first, (str, bytes))):
        return _stack([_host(s) for s in samples], where)
    if isinstance(first, (str, bytes)):
        return list(samples)
    if isinstance(first, Mapping):
        keys = list(first)
        for i, s in enumerate(samples):
            if not isinstance(s, Mapping) or set(s) != set(keys):
                raise CollateError(f"default_collate: {where}: sample {i} has keys "
                                   f"{sorted(map(str, s)) if isinstance(s, Mapping) else type(s).__name__}, "
                                   f"sample 0 {sorted(map(str, keys))}")
        return {k: collate_host([s[k] for s in samples], f"{where}[{k!r}]") for k in keys}
    if isinstance(first, (tuple, list)):
        size = len(first)
        for i, s in enumerate(samples):
            if not isinstance(s, (tuple, list)) or len(s) != size:
                got = len(s) if isinstance(s, (tuple, list)) else type(s).__name__
                raise CollateError(f"default_collate: {where}: each sample should have {size} fields "
                                   f"(as sample 0), sample {i} has {got}")
        fields = [collate_host([s[j] for s in samples], f"{where}[{j}]") for j in range(size)]
        if isinstance(first, tuple) and hasattr(first, "_fields"):  # a named tuple
            return type(first)(*fields)
        return tuple(fields) if isinstance(first, tuple) else fields
    if first is None:
        raise CollateError(f"default_collate: {where}: a sample is None")
    raise CollateError(f"default_collate: {where}: cannot batch a {type(first).__name__}; samples should be "
                       f"arrays, Tensors, numbers, strings, or tuples/lists/dicts of them (or pass collate_fn)")


def _stack(values: list[Any], where: str) -> numpy.ndarray:
    shapes = {numpy.shape(v) for v in values}
    if len(shapes) != 1:
        raise CollateError(f"default_collate: {where}: cannot stack samples of shapes {sorted(shapes)[:4]}; pad "
                           f"them first (gpunet.nn.utils.rnn.pad_sequence) or pass a collate_fn")
    out = numpy.stack([numpy.asarray(v) for v in values])
    if out.dtype.kind in "OUSV":
        raise CollateError(f"default_collate: {where}: got values of dtype {out.dtype}; expected numbers")
    return out


def to_backend(batch: Any) -> Any:
    """Every NumPy array in ``batch`` as a Tensor on the active backend (one transfer each)."""
    if isinstance(batch, numpy.ndarray) or backend.is_cupy_array(batch):
        return Tensor(backend.xp().asarray(batch))
    if isinstance(batch, dict):
        return {k: to_backend(v) for k, v in batch.items()}
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):
        return type(batch)(*(to_backend(v) for v in batch))
    if isinstance(batch, (tuple, list)):
        return type(batch)(to_backend(v) for v in batch)
    return batch


def default_collate(samples: Sequence[Any]) -> Any:
    """Samples into one batch of Tensors on the active backend (PyTorch's ``default_collate``)."""
    return to_backend(collate_host(samples))
