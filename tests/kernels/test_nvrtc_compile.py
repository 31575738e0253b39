"""Every kernels/*.cu compiles through NVRTC (no GPU or driver needed) for sm_70, sm_80 and
sm_90 with zero warnings, and the cubin holds every kernel raw_ops launches. Plus the same
sources through ``nvcc -Werror all-warnings`` when nvcc is on PATH."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from gpunet.cuda import raw_ops
from gpunet.cuda.archs import archs_for
from gpunet.cuda.sources import kernel_path, read_kernel

nvrtc = pytest.importorskip("cuda.bindings.nvrtc")

ARCHS = archs_for(nvrtc.nvrtcVersion()[1])  # the installed NVRTC's major version
# ptxas runs inside NVRTC for sm_XX targets: spills and ptxas warnings are errors too.
OPTIONS = (*raw_ops.COMPILE_OPTIONS, "--ptxas-options=--warn-on-spills",
           "--ptxas-options=--warn-on-local-memory-usage")
# NVRTC 12.x prints this notice for any sm_7x target whatever the source; it is the only log
# line tolerated, and only for sm_70.
ARCH_NOTICE = "nvrtc: warning: Architectures prior to '<compute/sm>_75' are deprecated"


def compile_nvrtc(source: str, name: str, arch: str, options: tuple[str, ...] = OPTIONS
                  ) -> tuple[bool, str, bytes]:
    """``(ok, log, cubin)`` for one NVRTC compilation."""
    err, prog = nvrtc.nvrtcCreateProgram(source.encode(), name.encode(), 0, [], [])
    assert err == nvrtc.nvrtcResult.NVRTC_SUCCESS
    try:
        opts = [f"--gpu-architecture={arch}".encode(), *(o.encode() for o in options)]
        (result,) = nvrtc.nvrtcCompileProgram(prog, len(opts), opts)
        _, size = nvrtc.nvrtcGetProgramLogSize(prog)
        # a bytearray, never ``b" " * size``: NVRTC writes into the buffer, and for size 1 that
        # bytes object is CPython's cached ``b" "``, so every later ``b" " * n`` gave NUL bytes
        log = bytearray(size)
        nvrtc.nvrtcGetProgramLog(prog, log)
        cubin = bytearray()
        if result == nvrtc.nvrtcResult.NVRTC_SUCCESS:
            _, size = nvrtc.nvrtcGetCUBINSize(prog)
            cubin = bytearray(size)
            nvrtc.nvrtcGetCUBIN(prog, cubin)
        return (result == nvrtc.nvrtcResult.NVRTC_SUCCESS, log.decode().rstrip("\x00").strip(),
                bytes(cubin))
    finally:
        nvrtc.nvrtcDestroyProgram(prog)


def warnings_in(log: str, arch: str) -> list[str]:
    """Log lines that count as warnings (everything but the sm_7x notice on sm_70)."""
    return [line for line in log.splitlines()
            if line.strip() and not (arch == "sm_70" and line.startswith(ARCH_NOTICE))]


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("source", list(raw_ops.KERNELS))
def test_nvrtc_compiles_without_warnings(source, arch):
    ok, log, cubin = compile_nvrtc(read_kernel(source), source, arch)
    assert ok, log
    assert not warnings_in(log, arch), log
    for base in raw_ops.KERNELS[source]:
        for suffix in raw_ops.SUFFIX.values():
            assert f"{base}_{suffix}".encode() + b"\x00" in cubin, f"{base}_{suffix} missing"


def test_compiling_leaves_cached_bytes_intact():
    """An empty log (size 1) once overwrote CPython's cached ``b" "`` with NUL: from then on
    ``b" " * n`` in the same process (the safetensors padding) gave NUL bytes."""
    src = 'extern "C" __global__ void k(float* p) { p[0] = 1.0f; }\n'
    ok, log, _ = compile_nvrtc(src, "clean.cu", "sm_90")
    space, n = bytes([32]), len(src) // len(src)  # built at run time: the cached object
    assert ok and not log
    assert space[0] == 32 and space * (3 * n) == bytes([32, 32, 32])


def test_warning_check_can_fail():
    """A source with a warning (unused variable) is flagged by the same check."""
    src = 'extern "C" __global__ void k(float* p) { int unused = 3; p[0] = 1.0f; }\n'
    ok, log, _ = compile_nvrtc(src, "bad.cu", "sm_90")
    assert ok and warnings_in(log, "sm_90"), log


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc not on PATH")
@pytest.mark.parametrize("source", list(raw_ops.KERNELS))
def test_nvcc_werror(source, tmp_path: Path):
    cmd = ["nvcc", "-arch=sm_90", "-std=c++17", "-Werror", "all-warnings", "-Xptxas",
           "--warn-on-spills", "-c", str(kernel_path(source)), "-o", str(tmp_path / "k.o")]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert not proc.stderr.strip(), proc.stderr
