"""Every CUDA C kernel in kernels/*.cu, run unchanged on the CPU grid emulator, against the
NumPy reference, through the same ``raw_ops`` launchers the GPU uses: the emulator-specific
part (both thread schedules, split-K plans and launches, launch shapes, guard zones, errors).

The plain comparisons of every hot op (the parallel schedule, the production split-K policy)
run with every other implementation in tests/ops (the ``raw-emu`` implementation of the
``impl`` fixture), on the same case tables (tests/ops/cases.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "ops"))

import cases  # noqa: E402
from emulator import grid  # noqa: E402

from gpunet.cuda import raw_ops  # noqa: E402
from gpunet.cuda.sources import read_kernel  # noqa: E402

pytestmark = pytest.mark.skipif(not grid.have_compiler(), reason="no C++ compiler for the emulator")

DTYPES = [numpy.float32, numpy.float64]


@pytest.fixture(scope="module")
def lib():
    return grid.build({name: read_kernel(name) for name in raw_ops.KERNELS})


@pytest.fixture
def rt(lib) -> grid.EmulatorRuntime:
    return grid.EmulatorRuntime(lib)


@pytest.fixture(params=["parallel", "serial"])
def sched_rt(lib, request) -> grid.EmulatorRuntime:
    """Both thread schedules, for the kernels that use shared memory and barriers."""
    return grid.EmulatorRuntime(lib, serial=request.param == "serial")


@pytest.fixture
def ops(rt) -> dict:
    return raw_ops.RawOps(rt, target_blocks=1).table()  # never split-K


# The raw tile edges of the shared conv table, under both schedules and both split plans (every
# other small case runs in tests/ops, parallel schedule, production split policy).
SCHEDULE_CASES = ["3x3_pad1_edge_m_k", "stride_asym_pad", "dilation_pad", "cout_over_tile", "cin_over_tile",
                  "stride_gt_kernel", "1x1_stride2", "long_reduction"]
# target_blocks=1: one z-slice; the other splits every reduction longer than 2 x 32.
SPLITS = {"no_split": {"target_blocks": 1}, "split_k": {"target_blocks": 64, "min_split_k": 32}}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("split", list(SPLITS))
@pytest.mark.parametrize("case", [cases.CONV_CASES[n] for n in SCHEDULE_CASES], ids=SCHEDULE_CASES)
def test_conv2d(sched_rt, case, split, dtype):
    ops = raw_ops.RawOps(sched_rt, **SPLITS[split]).table()
    cases.check_conv(ops, case, dtype, sched_rt.guarded, numpy.asarray)


def test_split_k_plan():
    ops = raw_ops.RawOps(None, **SPLITS["split_k"])  # type: ignore[arg-type]
    assert ops.split_k(tiles=1, k=528) == (11, 48)   # 16 wanted, chunks rounded to 16
    assert ops.split_k(tiles=1, k=63) == (1, 64)     # too short to split
    assert ops.split_k(tiles=64, k=10_000) == (1, 10_000)
    assert ops.split_k(tiles=1, k=0) == (1, 16)
    assert ops.split_k(tiles=2, k=4096) == (32, 128)  # capped at MAX_SPLITS


def test_launch_configuration(ops, rt):
    """Conv grids tile M and N by 64 (2 x 2 blocks here); cells use 256-thread blocks."""
    x, w = numpy.zeros((1, 1, 9, 9)), numpy.zeros((65, 1, 1, 1))
    ops["conv2d_forward"](x, w, (1, 1), (0, 0), (1, 1))  # M = 81, N = 65
    h = numpy.zeros((3, 100))
    ops["rnn_step_forward"](h, h, numpy.zeros(100), h, numpy.ones(3))
    assert rt.launches == [("conv2d_fwd_f64", (2, 2, 1), (256, 1, 1)),
                           ("rnn_fwd_f64", (2, 1, 1), (256, 1, 1))]


def test_split_k_launches(rt):
    """bwd-weight of a long reduction: 11 z-slices into a workspace, then the sum kernel."""
    ops = raw_ops.RawOps(rt, **SPLITS["split_k"]).table()
    case = cases.CONV_CASES["long_reduction"]
    x, gy = numpy.ones(case.x), numpy.ones((4, 3, 12, 11))
    gw = ops["conv2d_backward_weight"](x, gy, case.w, case.stride, case.padding, case.dilation)
    assert rt.launches == [("conv2d_bwd_weight_f64", (1, 1, 11), (256, 1, 1)),
                           ("conv2d_split_sum_f64", (1, 1, 1), (256, 1, 1))]
    assert gw[0, 0, 1, 1] == 4 * 12 * 11  # centre tap sees every output pixel


class _Device:
    """Stands in for a device array type: plain NumPy arrays are then 'host' arrays."""


def test_host_array_reaching_gpu_code_is_a_type_error(rt):
    rt.array_type = _Device
    ops = raw_ops.RawOps(rt).table()
    with pytest.raises(TypeError, match=r"conv2d_forward.*'x'.*_Device.*numpy\.ndarray"):
        ops["conv2d_forward"](numpy.zeros((1, 1, 3, 3)), numpy.zeros((1, 1, 1, 1)), (1, 1),
                              (0, 0), (1, 1))


@pytest.mark.parametrize("dtype_w, match", [(numpy.float32, "share one dtype"),
                                            (numpy.int64, "float32 or float64")])
def test_dtype_errors(ops, dtype_w, match):
    x = numpy.zeros((1, 1, 3, 3))
    with pytest.raises(TypeError, match=match):
        ops["conv2d_forward"](x, numpy.zeros((1, 1, 1, 1), dtype=dtype_w), (1, 1), (0, 0), (1, 1))


def test_shape_errors(ops):
    x, w = numpy.zeros((1, 2, 3, 3)), numpy.zeros((1, 3, 1, 1))
    with pytest.raises(ValueError, match=r"conv2d_forward: weight \(1, 3, 1, 1\) expects 3 input channels, got input"):
        ops["conv2d_forward"](x, w, (1, 1), (0, 0), (1, 1))
    with pytest.raises(ValueError, match=r"conv2d_backward_input: expected 'gy' of shape \(1, 1, 3, 3\)"):
        ops["conv2d_backward_input"](numpy.zeros((1, 1, 2, 2)), numpy.zeros((1, 2, 1, 1)),
                                     x.shape, (1, 1), (0, 0), (1, 1))
    with pytest.raises(ValueError, match=r"conv2d_forward: expected stride >= 1, got \(0, 1\)"):
        ops["conv2d_forward"](x, numpy.zeros((1, 2, 1, 1)), (0, 1), (0, 0), (1, 1))
    h = numpy.zeros((2, 3))
    with pytest.raises(ValueError, match="'mask' must have shape"):
        ops["lstm_step_forward"](numpy.zeros((2, 12)), numpy.zeros((2, 12)), numpy.zeros(12), h, h,
                                 numpy.ones(3))
    with pytest.raises(ValueError, match="nonlinearity"):
        ops["rnn_step_forward"](h, h, numpy.zeros(3), h, numpy.ones(2), "sigmoid")


def test_guard_zones_catch_out_of_bounds_writes(rt):
    out = rt.empty((4,), numpy.float64)
    out.base[grid.MIN_GUARD + 4] = 0.0  # one past the end
    with pytest.raises(grid.GuardError):
        rt.check_guards()


@st.composite
def conv_geometry(draw) -> cases.Conv:
    """Small random conv problems whose output is non-empty."""
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    sh, sw, dh, dw = (draw(st.integers(1, 3)) for _ in range(4))
    ph, pw = draw(st.integers(0, 2)), draw(st.integers(0, 2))
    h = draw(st.integers(max(1, dh * (kh - 1) + 1 - 2 * ph), 9))
    w = draw(st.integers(max(1, dw * (kw - 1) + 1 - 2 * pw), 9))
    x = (draw(st.integers(1, 3)), draw(st.integers(1, 5)), h, w)
    return cases.Conv(x, (draw(st.integers(1, 5)), x[1], kh, kw), (sh, sw), (ph, pw), (dh, dw))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=conv_geometry(), split=st.sampled_from(list(SPLITS)))
def test_conv2d_random_geometry(rt, case, split):
    ops = raw_ops.RawOps(rt, **SPLITS[split]).table()
    cases.check_conv(ops, case, numpy.float64, rt.guarded, numpy.asarray)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cell", list(cases.SEQ_GATES))
@pytest.mark.parametrize("case", cases.up_to(cases.SEQUENCE_CASES, "small").values(),
                         ids=list(cases.up_to(cases.SEQUENCE_CASES, "small")))
def test_sequence_forward(sched_rt, cell, case, dtype):
    cases.check_sequence(raw_ops.RawOps(sched_rt).table(), cell, case.steps, case.batch, case.hidden, dtype,
                         sched_rt.guarded, numpy.asarray)


def test_sequence_forward_errors(rt):
    raw = raw_ops.RawOps(rt)
    h = numpy.zeros((2, 3))
    with pytest.raises(ValueError, match="'w_hh' must have shape"):
        raw.gru_sequence_forward(numpy.zeros((4, 2, 9)), numpy.zeros((9, 2)), numpy.zeros(9), h,
                                 numpy.ones((4, 2)))
    big = numpy.zeros((1, raw_ops.SEQ_MAX_H + 1))
    with pytest.raises(ValueError, match="hidden size"):
        raw.rnn_sequence_forward(numpy.zeros((1, 1, big.shape[1])), numpy.zeros((big.shape[1],) * 2),
                                 numpy.zeros(big.shape[1]), big, numpy.ones((1, 1)))


@pytest.mark.parametrize("serial", [False, True], ids=["parallel", "serial"])
def test_barrier_divergence_is_reported(serial):
    """Half the block waits at one __syncthreads, half at another (undefined in CUDA): both
    schedules report it and still end. (Returning early instead is defined on sm_70+ and is not
    divergence: see test_emulator_model.py.)"""
    src = """extern "C" __global__ void diverge_f32(float* out, int n) {
        if (threadIdx.x % 2 == 0) {
            __syncthreads();
        } else {
            __syncthreads();
        }
        out[threadIdx.x] = (float)n;
    }
    extern "C" __global__ void diverge_f64(double* out, int n) { out[threadIdx.x] = n; }
    """
    lib = grid.build({"diverge.cu": src}, kernels=("diverge",))
    rt = grid.EmulatorRuntime(lib, serial=serial)
    out = rt.empty((4,), numpy.float32)
    with pytest.raises(grid.BarrierDivergence):
        rt.launch("diverge.cu", "diverge_f32", (1, 1, 1), (4, 1, 1), (out, numpy.int32(7)))
    numpy.testing.assert_array_equal(out, 7)
    rt.launch("diverge.cu", "diverge_f64", (1, 1, 1), (4, 1, 1),
              (rt.empty((4,), numpy.float64), numpy.int32(7)))
