"""gpunet.ops.scratch_cpu: recycled host buffers are reused only once every view is gone."""

from __future__ import annotations

import gc

import numpy as np

from gpunet.ops import scratch_cpu


def test_small_arrays_are_plain_numpy() -> None:
    a = scratch_cpu.empty((4, 4), np.float32)
    assert a.shape == (4, 4) and a.dtype == np.float32 and a.flags.owndata


def test_block_comes_back_only_after_every_view_dies() -> None:
    shape = (64, 1024)  # 256 KiB of float32: pooled
    a = scratch_cpu.empty(shape, np.float32)
    assert a.shape == shape and a.dtype == np.float32 and a.flags.c_contiguous and a.flags.writeable
    view = a[1:].T[::2]
    address = a.__array_interface__["data"][0]
    del a
    gc.collect()
    b = scratch_cpu.empty(shape, np.float32)  # the view still holds the first block
    assert b.__array_interface__["data"][0] != address
    b[...] = 1.0
    view[...] = 2.0
    assert (b == 1.0).all()
    freed = {address, b.ctypes.data}
    del view, b
    gc.collect()
    again = scratch_cpu.empty((128, 512), np.float32)  # same byte size: a recycled block
    assert again.ctypes.data in freed


def test_other_dtype_same_bytes_and_idle_cap() -> None:
    a = scratch_cpu.empty((1024, 64), np.float64)
    a[...] = 3.0
    assert a.dtype == np.float64 and (a == 3.0).all()
    del a
    gc.collect()
    assert scratch_cpu.idle_bytes() <= scratch_cpu.MAX_IDLE_BYTES
