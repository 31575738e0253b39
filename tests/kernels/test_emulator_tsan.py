"""ThreadSanitizer over the emulator: the real kernels of conv2d.cu and rnn_cells.cu, built with
``-fsanitize=thread`` and run on the parallel schedule (the threads of a block are real threads,
so a missing ``__syncthreads`` is a data race on the ``__shared__`` storage), report no race; a
kernel with a missing barrier does. The library is loaded into a child Python started with
libtsan preloaded (TSan must be loaded first); its reports go to stderr, exit status 66."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from emulator import grid  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
RACES = 66  # TSAN_OPTIONS exitcode: the child reported a data race

PRELUDE = f"""
import sys, numpy
sys.path[:0] = [{str(ROOT / "tests" / "kernels")!r}, {str(ROOT / "tests" / "ops")!r}, {str(ROOT)!r}]
from emulator import grid
"""

REAL = PRELUDE + """
import cases
from gpunet.cuda import raw_ops
from gpunet.cuda.sources import read_kernel

rt = grid.EmulatorRuntime(grid.build({n: read_kernel(n) for n in ("conv2d.cu", "rnn_cells.cu")}, tsan=True),
                          shuffle=1)
for name in ("3x3_pad1_edge_m_k", "long_reduction"):  # the second splits K: the split-sum kernel too
    ops = raw_ops.RawOps(rt, target_blocks=64, min_split_k=32).table()
    cases.check_conv(ops, cases.CONV_CASES[name], numpy.float32, rt.guarded, numpy.asarray)
cases.check_sequence(raw_ops.RawOps(rt).table(), "lstm", 3, 2, 5, numpy.float64, rt.guarded, numpy.asarray)
print("launched", sorted({k for k, _, _ in rt.launches}))
"""

RACY = PRELUDE + """
src = '''template <typename T> __device__ void rot(T* out) {
    __shared__ T s[64];
    s[threadIdx.x] = T(threadIdx.x);
    out[threadIdx.x] = s[(threadIdx.x + 1) % blockDim.x];  // no __syncthreads before the read
}
extern "C" __global__ void rot_f32(float* out) { rot(out); }
extern "C" __global__ void rot_f64(double* out) { rot(out); }
'''
rt = grid.EmulatorRuntime(grid.build({"racy.cu": src}, kernels=("rot",), tsan=True))
rt.launch("racy.cu", "rot_f32", (2, 1, 1), (64, 1, 1), (rt.empty((64,), numpy.float32),))
"""


def _libtsan() -> str | None:
    if not grid.have_compiler():
        return None
    path = subprocess.run([grid.CXX, "-print-file-name=libtsan.so"], capture_output=True, text=True).stdout.strip()
    return path if os.path.isabs(path) and os.path.exists(path) else None


LIBTSAN = _libtsan()
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(LIBTSAN is None, reason="no C++ compiler with ThreadSanitizer (libtsan)")]


def _run(code: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "LD_PRELOAD": str(LIBTSAN), "TSAN_OPTIONS": f"exitcode={RACES} halt_on_error=0",
           "GPUNET_QUIET": "1"}
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env, capture_output=True, text=True,
                          timeout=600)
    if "FATAL: ThreadSanitizer" in proc.stderr:  # e.g. a kernel memory layout TSan cannot map
        pytest.skip(f"ThreadSanitizer cannot run here: {proc.stderr.strip().splitlines()[0]}")
    return proc


def test_real_kernels_have_no_data_race():
    proc = _run(REAL)
    assert proc.returncode == 0 and "ThreadSanitizer" not in proc.stderr, proc.stderr[-6000:]
    for kernel in ("conv2d_fwd_f32", "conv2d_bwd_input_f32", "conv2d_bwd_weight_f32", "conv2d_split_sum_f32",
                   "lstm_seq_fwd_f64"):
        assert kernel in proc.stdout, proc.stdout


def test_a_missing_barrier_is_reported_as_a_data_race():
    proc = _run(RACY)
    assert proc.returncode == RACES, (proc.returncode, proc.stderr[-3000:])
    assert "WARNING: ThreadSanitizer: data race" in proc.stderr and "racy.cu" in proc.stderr, proc.stderr[-3000:]
