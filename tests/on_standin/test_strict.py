"""The stand-in is as strict as CuPy, mirrors exactly its names, and counts what a GPU pays for."""

from __future__ import annotations

import importlib

import cupy
import cupyx
import numpy as np
import pytest
from cupy import _standin

import gpunet
from gpunet import backend

MANIFEST = _standin.MANIFEST


def test_gpunet_sees_a_gpu_and_uses_cupy():
    assert backend.gpu_status()[0]
    with gpunet.use("cupy"):
        t = gpunet.tensor(np.ones(3, np.float32))
        assert backend.is_cupy_array(t.data) and type(t.data) is cupy.ndarray


def test_implicit_conversion_to_numpy_is_refused():
    a = cupy.arange(3.0)
    with pytest.raises(TypeError, match="Implicit conversion to a NumPy array is not allowed"):
        np.asarray(a)
    with pytest.raises(TypeError):
        np.array([a, a])


@pytest.mark.parametrize("expr", [lambda d, h: d + h, lambda d, h: h + d, lambda d, h: d * h,
                                  lambda d, h: np.add(d, h), lambda d, h: cupy.add(d, h),
                                  lambda d, h: cupy.matmul(d, h), lambda d, h: cupy.concatenate([d, h]),
                                  lambda d, h: cupy.where(d > 0, d, h)])
def test_numpy_operands_are_refused(expr):
    d, h = cupy.arange(3.0), np.arange(3.0)
    with pytest.raises(TypeError, match="Unsupported type"):
        expr(d, h)


def test_scalars_are_fine_and_results_stay_on_the_device():
    a = cupy.arange(3.0)
    for out in (a + 1, 2.5 * a, a / np.float32(2), np.exp(a), -a, abs(a), a ** 2):
        assert type(out) is cupy.ndarray


def test_numpy_add_at_on_a_device_array_fails():
    a = cupy.zeros(3)
    with pytest.raises(TypeError, match="scatter_add"):
        np.add.at(a, cupy.asarray([0, 0]), 1.0)
    cupyx.scatter_add(a, cupy.asarray([0, 0, 4]), 1.0)  # 4 wraps to 1, like CuPy
    assert a.get().tolist() == [2.0, 1.0, 0.0]


def test_full_reductions_are_0d_device_arrays():
    a = cupy.arange(6.0).reshape(2, 3)
    for r in (a.sum(), a.max(), cupy.mean(a), a[1, 2], np.sum(a)):
        assert type(r) is cupy.ndarray and r.shape == ()


def test_integer_indices_wrap_like_cupy():
    a = cupy.arange(4.0)
    assert a[cupy.asarray([5, -1])].get().tolist() == [1.0, 3.0]


def test_empty_is_nan_filled():
    assert np.isnan(cupy.empty((3, 2), np.float32).get()).all()
    assert np.isnan(cupy.empty_like(cupy.zeros(4)).get()).all()


def test_syncs_h2d_and_ops_are_counted_with_their_site():
    with _standin.count() as c:
        a = cupy.asarray(np.arange(4.0))          # h2d
        b = (a * 2).sum()                          # 2 ops
        float(b), b.item(), a.tolist(), a.get()    # 4 syncs
        a[a > 1]                                   # op (compare), sync (mask), op (gather)
        cupy.nonzero(a)
        cupy.cuda.Device().synchronize()
        cupy.cuda.get_current_stream().synchronize()
    assert c.h2d == 1 and c.syncs == 8 and c.ops == 5, c.report()
    assert all(e.site.startswith("<outside gpunet> test_strict.py:") for e in c.events)


def test_site_is_the_gpunet_line():
    with gpunet.use("cupy"), _standin.count() as c:
        backend.to_numpy(cupy.zeros(2))
    assert [e.site for e in c.events if e.kind == "sync"] == [f"gpunet/backend.py:{_line('def to_numpy', 3)}"]


def _line(start: str, offset: int) -> int:
    import inspect

    lines = inspect.getsource(backend).splitlines()
    return next(i for i, line in enumerate(lines, 1) if line.startswith(start)) + offset


def test_allow_synchronize_false_raises():
    a = cupy.ones(2)
    with cupyx.allow_synchronize(False), pytest.raises(cupyx.DeviceSynchronized):
        a.sum().item()


def test_device_facts():
    assert cupy.cuda.runtime.getDeviceCount() == 1
    attrs = cupy.cuda.Device().attributes
    assert attrs["MultiProcessorCount"] == 108 and attrs["MaxThreadsPerBlock"] == 1024
    assert cupy.cuda.runtime.getDeviceProperties(0)["major"] == 8


def test_names_not_in_cupy_are_attribute_errors():
    for mod, name in ((cupy, "numpy_only_name"), (cupy, "add_at"), (cupy.cuda, "nope"), (cupyx, "foo")):
        with pytest.raises(AttributeError, match="not in CuPy"):
            getattr(mod, name)
    with pytest.raises(AttributeError):
        cupy.arange(2).no_such_method  # noqa: B018


def test_real_names_not_implemented_say_so():
    with pytest.raises(NotImplementedError, match="cupy.ElementwiseKernel exists in CuPy"):
        cupy.ElementwiseKernel  # noqa: B018
    with pytest.raises(NotImplementedError, match="cupy.cuda.runtime.malloc"):
        cupy.cuda.runtime.malloc  # noqa: B018


@pytest.mark.parametrize("qualname", sorted(MANIFEST["modules"]))
def test_public_names_are_exactly_cupys(qualname):
    mod = importlib.import_module(qualname)
    real = set(MANIFEST["modules"][qualname])
    assert set(dir(mod)) == real
    public = {n for n in vars(mod) if not n.startswith("_")}
    assert public <= real, sorted(public - real)


def test_ndarray_names_are_cupys():
    real = set(MANIFEST["classes"]["cupy.ndarray"])
    assert {n for n in vars(cupy.ndarray) if not n.startswith("_")} <= real


def test_rawmodule_runs_on_the_emulator():
    code = r'''
    extern "C" __global__ void axpy_f32(const float* x, float* y, int n) {
        int i = blockIdx.x * blockDim.x + threadIdx.x;
        if (i < n) y[i] += 2.0f * x[i];
    }
    extern "C" __global__ void axpy_f64(const double* x, double* y, int n) {}
    '''
    k = cupy.RawModule(code=code, options=("--std=c++17",)).get_function("axpy_f32")
    x, y = cupy.arange(5, dtype=np.float32), cupy.ones(5, dtype=np.float32)
    with _standin.count() as c:
        k((2,), (4,), (x, y, np.int32(5)))
    assert y.get().tolist() == [1.0, 3.0, 5.0, 7.0, 9.0] and c.ops == 1
    with pytest.raises(RuntimeError, match="exceeds the device limits"):
        k((1,), (2048,), (x, y, np.int32(5)))
    with pytest.raises(TypeError, match="host memory"):
        k((1,), (4,), (np.zeros(5, np.float32), y, np.int32(5)))


def test_gpunet_raw_kernels_load_through_rawmodule():
    from gpunet.cuda import raw_ops

    table = raw_ops.available()
    assert table, raw_ops.unavailable_reason()
    x = cupy.asarray(np.random.default_rng(0).standard_normal((1, 2, 5, 5)).astype(np.float32))
    w = cupy.asarray(np.random.default_rng(1).standard_normal((3, 2, 3, 3)).astype(np.float32))
    from gpunet.ops import conv2d as ref

    got = table["conv2d_forward"](x, w, (1, 1), (1, 1), (1, 1)).get()
    want = ref.conv2d_forward(x.get(), w.get(), (1, 1), (1, 1), (1, 1))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
