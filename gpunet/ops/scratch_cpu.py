"""Recycled host buffers for the NumPy fast paths' large per-call arrays.

A fresh ``numpy.empty`` of a few MiB is an ``mmap`` from glibc, freed back to the kernel when
the array dies: every page then costs a page fault (and zeroing) on first touch, each call
again. The recurrent layers' per-sequence buffers (about 1-3 MiB each, several per layer and
step) paid more for those faults than for their GEMMs (LSTM forward loop, T=50 B=32 H=128:
8.6 ms with fresh buffers, 4.1 ms with the same memory reused).

:func:`empty` hands out an array over a pooled block; the block goes back to the pool when the
array *and every view of it* are gone (the array's base is a ``frombuffer`` array over a
``memoryview``, so NumPy's base chains stop there and a ``weakref.finalize`` on it fires last).
The idle blocks are capped at :data:`MAX_IDLE_BYTES` (the oldest sizes go first).
"""

from __future__ import annotations

import math
import threading
import weakref
from typing import Any

import numpy as np

MIN_BYTES = 64 * 1024  # below this malloc serves from its heap, without faults: plain numpy.empty
MAX_IDLE_BYTES = 64 * 1024 * 1024

_lock = threading.Lock()
_idle: dict[int, list[np.ndarray]] = {}  # block size -> idle raw blocks, sizes in first-use order
_idle_bytes = [0]


def empty(shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    """An uninitialised C-contiguous array like ``numpy.empty(shape, dtype)``, over recycled memory."""
    dtype = np.dtype(dtype)
    count = math.prod(shape)
    nbytes = count * dtype.itemsize
    if nbytes < MIN_BYTES:
        return np.empty(shape, dtype)
    with _lock:
        blocks = _idle.get(nbytes)
        raw = blocks.pop() if blocks else None
        if raw is not None:
            _idle_bytes[0] -= nbytes
    if raw is None:
        raw = np.empty(nbytes, np.uint8)
    owner = np.frombuffer(memoryview(raw), dtype, count)
    weakref.finalize(owner, _give_back, raw)
    return owner.reshape(shape)


def _give_back(raw: np.ndarray) -> None:
    """Return ``raw`` to the idle blocks, evicting the oldest sizes past :data:`MAX_IDLE_BYTES`."""
    nbytes = raw.nbytes
    with _lock:
        _idle.setdefault(nbytes, []).append(raw)
        _idle_bytes[0] += nbytes
        for size in list(_idle):
            if _idle_bytes[0] <= MAX_IDLE_BYTES:
                break
            _idle_bytes[0] -= size * len(_idle[size])
            del _idle[size]


def idle_bytes() -> int:
    """Bytes held in idle blocks now."""
    return _idle_bytes[0]
