"""What the g++ grid emulator models beyond plain execution: ``__shared__`` memory poisoned before
every block, blocks in a shuffled order under a seed, and ``__syncthreads`` that (as on sm_70+)
waits only for threads that have not returned. Each kernel here is deliberately buggy or
exercises one rule; the real kernels run under the same rules in test_raw_emulated.py and
tests/ops (shuffled there)."""

from __future__ import annotations

import ctypes
import sys
import threading
from pathlib import Path

import numpy
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from emulator import grid  # noqa: E402

pytestmark = pytest.mark.skipif(not grid.have_compiler(), reason="no C++ compiler for the emulator")

SOURCE = """
__device__ int emu_model_counter;

// Reads its shared slot before any thread wrote it, then writes it (a bug on purpose).
template <typename T> __device__ void peek(T* out) {
    __shared__ T s[8];
    out[blockIdx.x * blockDim.x + threadIdx.x] = s[threadIdx.x];
    __syncthreads();
    s[threadIdx.x] = T(1);
}

// Records the rank at which each block ran.
template <typename T> __device__ void rank(T* out) {
    if (threadIdx.x == 0) out[blockIdx.x] = T(emu_model_counter++);
}

// Block b needs block b - 1's result: right only if blocks run in grid order (a bug on purpose).
template <typename T> __device__ void chain(T* out) {
    if (threadIdx.x == 0) out[blockIdx.x] = blockIdx.x == 0 ? T(1) : out[blockIdx.x - 1] + T(1);
}

// Sum of the first n values of each block's slice, threads i >= n returning first: the rest meet
// at __syncthreads the returned threads never reach (defined on sm_70+: they are not waited for).
template <typename T> __device__ void early(const T* x, T* out, int n) {
    __shared__ T part[64];
    const unsigned i = threadIdx.x;
    if (i >= (unsigned)n) return;
    part[i] = x[blockIdx.x * blockDim.x + i];
    __syncthreads();
    if (i == 0) {
        T s = T(0);
        for (int k = 0; k < n; ++k) s += part[k];
        out[blockIdx.x] = s;
    }
    __syncthreads();  // the last one to arrive here may be the last thread to return
    if (i == (unsigned)n - 1) part[0] = T(0);
}

extern "C" {
__global__ void peek_f32(float* out) { peek(out); }
__global__ void peek_f64(double* out) { peek(out); }
__global__ void ipeek_f32(int* out) { peek(out); }  // ints: _f32/_f64 only name the pair
__global__ void ipeek_f64(int* out) { peek(out); }
__global__ void rank_f32(float* out) { rank(out); }
__global__ void rank_f64(double* out) { rank(out); }
__global__ void chain_f32(float* out) { chain(out); }
__global__ void chain_f64(double* out) { chain(out); }
__global__ void early_f32(const float* x, float* out, int n) { early(x, out, n); }
__global__ void early_f64(const double* x, double* out, int n) { early(x, out, n); }
}
"""
SCHEDULES = {"parallel": False, "serial": True}


@pytest.fixture(scope="module")
def lib():
    return grid.build({"emu_model.cu": SOURCE}, kernels=("peek", "ipeek", "rank", "chain", "early"))


def _launch(lib, name: str, blocks: int, threads: int, *args, serial: bool = False, shuffle: int = 0,
            timeout: float = 60.0) -> None:
    """One launch on a watchdog thread (ctypes drops the GIL): a hang fails instead of blocking."""
    holders = [ctypes.c_void_p(a.ctypes.data) if isinstance(a, numpy.ndarray) else ctypes.c_int(a)
               for a in args]
    argv = (ctypes.c_void_p * len(holders))(*(ctypes.cast(ctypes.pointer(h), ctypes.c_void_p)
                                              for h in holders))
    rc: list[int] = []
    worker = threading.Thread(target=lambda: rc.append(
        lib.emu_launch(name.encode(), blocks, 1, 1, threads, 1, 1, argv, int(serial), shuffle)), daemon=True)
    worker.start()
    worker.join(timeout)
    assert not worker.is_alive(), f"{name}: the emulated launch did not end within {timeout} s (deadlock)"
    assert rc == [0], f"{name}: emu_launch returned {rc}"


@pytest.mark.parametrize("schedule", list(SCHEDULES))
@pytest.mark.parametrize("name, dtype", [("peek_f32", numpy.float32), ("peek_f64", numpy.float64),
                                         ("ipeek_f32", numpy.int32)])
def test_shared_memory_is_poisoned_at_every_block_entry(lib, schedule, name, dtype):
    """Before: the first block read 0 (a zeroed static), later blocks the previous block's 1."""
    out = numpy.zeros(3 * 8, dtype=dtype)
    for _ in range(2):  # and again at the next launch
        _launch(lib, name, 3, 8, out, serial=SCHEDULES[schedule])
        if dtype == numpy.int32:
            numpy.testing.assert_array_equal(out, -1)  # 0xFF bytes
        else:
            assert numpy.isnan(out).all(), out


def test_only_the_kernels_shared_variables_are_poisoned():
    """The previous attempt also poisoned libstdc++'s own function-local statics (the waiter pool
    behind std::barrier and the semaphores), which hung 256-thread conv launches."""
    names = grid.shared_names(SOURCE + "/* __shared__ float not_this[2]; */ __shared__ Pair<int, T> a[2][3], b;")
    assert names == {"s", "part", "a", "b"}
    from gpunet.cuda import raw_ops
    from gpunet.cuda.sources import read_kernel

    sources = {name: read_kernel(name) for name in raw_ops.KERNELS}
    declared = set().union(*(grid.shared_names(text) for text in sources.values()))
    assert {"As", "Bs", "taps", "hbuf", "cbuf", "part"} <= declared
    lib = grid.build(sources)
    symbols = [name for _, _, name in lib.shared_symbols]
    assert symbols, "no __shared__ storage registered for the real kernels"
    # every registered symbol is a kernel's own __shared__ variable, in a kernel namespace, none of std::
    assert all(s.startswith(("conv::", "cells::", "fused::", "pool::")) and s.rsplit("::", 1)[1] in declared
               for s in symbols), symbols
    assert not any(s.startswith("std::") for s in symbols), symbols


@pytest.mark.parametrize("schedule", list(SCHEDULES))
@pytest.mark.parametrize("n", [1, 37, 64])
def test_threads_that_return_early_are_not_waited_for(lib, schedule, n):
    """Regression (deadlock): threads i >= n return before the __syncthreads of the others."""
    x = numpy.arange(4 * 64, dtype=numpy.float64)
    out = numpy.full(4, numpy.nan)
    _launch(lib, "early_f64", 4, 64, x, out, n, serial=SCHEDULES[schedule], shuffle=5)
    numpy.testing.assert_array_equal(out, x.reshape(4, 64)[:, :n].sum(axis=1))


def test_blocks_run_in_grid_order_without_a_seed(lib):
    out = numpy.zeros(16, dtype=numpy.float32)
    _launch(lib, "rank_f32", 16, 1, out)
    numpy.testing.assert_array_equal(out - out[0], numpy.arange(16))


def test_blocks_run_shuffled_under_a_seed(lib):
    def order(seed: int) -> list[int]:
        out = numpy.zeros(16, dtype=numpy.float32)
        _launch(lib, "rank_f32", 16, 1, out, shuffle=seed)
        return list(numpy.argsort(numpy.argsort(out)))  # the counter goes on across launches

    first = order(3)
    assert sorted(first) == list(range(16)) and first != list(range(16)), first
    assert order(3) == first  # reproducible
    assert order(4) != first


@pytest.mark.parametrize("schedule", list(SCHEDULES))
def test_a_kernel_that_depends_on_block_order_fails_under_shuffle(lib, schedule):
    out = numpy.zeros(16, dtype=numpy.float32)
    _launch(lib, "chain_f32", 16, 2, out, serial=SCHEDULES[schedule])
    numpy.testing.assert_array_equal(out, numpy.arange(1, 17))  # grid order hides the bug
    out[:] = 0
    _launch(lib, "chain_f32", 16, 2, out, serial=SCHEDULES[schedule], shuffle=1)
    assert not numpy.array_equal(out, numpy.arange(1, 17)), out


def test_shuffle_seed_from_the_environment(monkeypatch):
    monkeypatch.delenv(grid.SHUFFLE_ENV, raising=False)
    assert grid.shuffle_seed() == 0
    monkeypatch.setenv(grid.SHUFFLE_ENV, "7")
    assert grid.shuffle_seed() == 7 and grid.EmulatorRuntime(None).shuffle == 7  # type: ignore[arg-type]
    monkeypatch.setenv(grid.SHUFFLE_ENV, "yes")
    with pytest.raises(ValueError, match="GPUNET_EMU_SHUFFLE must be an integer seed .* got 'yes'"):
        grid.shuffle_seed()
