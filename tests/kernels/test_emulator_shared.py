"""The emulator poisons ``__shared__`` memory at every block entry and, under
``GPUNET_EMU_SHUFFLE=<seed>``, runs the blocks of a launch in a shuffled order."""

from __future__ import annotations

import ctypes

import numpy as np
import pytest

from tests.kernels.emulator import grid

pytestmark = pytest.mark.skipif(not grid.have_compiler(), reason="no C++ compiler for the emulator")

SOURCE = """
__device__ int emu_test_counter;
template <typename T> __device__ void peek(T* out) {
    __shared__ T s[8];
    out[blockIdx.x * blockDim.x + threadIdx.x] = s[threadIdx.x];  // read before any write
    __syncthreads();
    s[threadIdx.x] = T(1);
}
template <typename T> __device__ void order(T* out) {
    if (threadIdx.x == 0) out[blockIdx.x] = T(emu_test_counter++);
}
extern "C" __global__ void peek_f32(float* out) { peek(out); }
extern "C" __global__ void peek_f64(double* out) { peek(out); }
extern "C" __global__ void order_f32(float* out) { order(out); }
extern "C" __global__ void order_f64(double* out) { order(out); }
"""


def _launch(name: str, blocks: int, threads: int, serial: bool) -> np.ndarray:
    lib = grid.build({"emu_test.cu": SOURCE}, kernels=("peek", "order"))
    out = np.zeros(blocks * threads, dtype=np.float32)
    ptr = ctypes.c_void_p(out.ctypes.data)
    args = (ctypes.c_void_p * 1)(ctypes.cast(ctypes.pointer(ptr), ctypes.c_void_p))
    assert lib.emu_launch(name.encode(), blocks, 1, 1, threads, 1, 1, args, int(serial)) == 0
    return out


@pytest.mark.parametrize("serial", [False, True])
def test_shared_memory_is_poisoned_at_every_block_entry(serial):
    """Before: the first block read 0 (a zeroed static) and later blocks the previous block's 1."""
    out = _launch("peek_f32", 3, 8, serial)
    assert np.isnan(out).all(), out


def test_blocks_run_in_order_without_the_flag(monkeypatch):
    monkeypatch.delenv("GPUNET_EMU_SHUFFLE", raising=False)
    got = _launch("order_f32", 16, 1, False)
    np.testing.assert_array_equal(got - got[0], np.arange(16))


def test_blocks_run_shuffled_under_the_flag(monkeypatch):
    monkeypatch.setenv("GPUNET_EMU_SHUFFLE", "3")
    got = _launch("order_f32", 16, 1, False)  # the counter goes on across launches: ranks
    ranks = np.argsort(np.argsort(got))
    assert len(set(got)) == 16 and list(ranks) != list(range(16)), got
