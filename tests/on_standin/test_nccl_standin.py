"""The stand-in's NCCL and stream model refuses what would race on a device (a job of one MPI
process is enough: the collectives still go through MPI), and gpunet's NCCL reducer passes it."""

from __future__ import annotations

import contextlib
import importlib.util

import numpy
import pytest

import gpunet
from gpunet import distributed as dist
from gpunet import functional as F
from gpunet import nn

pytestmark = pytest.mark.skipif(importlib.util.find_spec("mpi4py") is None, reason="mpi4py is not installed")


@pytest.fixture
def nccl():
    import cupy
    from cupy.cuda import nccl
    from mpi4py import MPI  # noqa: F401 - initialises MPI (a job of one)

    cupy._standin.IN_FLIGHT.clear()
    return nccl


@contextlib.contextmanager
def _job_of_one():
    from gpunet.distributed import comm

    dist.init(abort_on_error=False)
    try:
        yield
    finally:
        comm._reset_for_tests()  # the other tests in this process run without a process group


def _comm(nccl):
    return nccl.NcclCommunicator(1, nccl.get_unique_id(), 0)


def _produced(cupy, n=4):
    x = cupy.arange(n, dtype="float32")
    x *= 2  # device work that writes the buffer
    return x


def test_a_collective_must_follow_the_event_of_its_buffers_writer(nccl):
    import cupy

    comm, stream, x = _comm(nccl), cupy.cuda.Stream(non_blocking=True), _produced(cupy)
    with pytest.raises(cupy._standin.StreamOrderError, match="has not waited for the null stream's latest work"):
        comm.allReduce(x.data.ptr, x.data.ptr, x.size, nccl.NCCL_FLOAT32, nccl.NCCL_SUM, stream.ptr)
    packed = cupy.cuda.Event()
    packed.record(cupy.cuda.get_current_stream())
    stream.wait_event(packed)
    comm.allReduce(x.data.ptr, x.data.ptr, x.size, nccl.NCCL_FLOAT32, nccl.NCCL_SUM, stream.ptr)
    with pytest.raises(cupy._standin.StreamOrderError, match="touches a buffer of an NCCL allReduce in flight"):
        x.get()
    assert numpy.isnan(x._a).all()  # a read that slipped past would see garbage, not the result
    done = cupy.cuda.Event()
    done.record(stream)
    assert done.done  # a query alone does not order the compute stream after it
    with pytest.raises(cupy._standin.StreamOrderError):
        x + 1
    cupy.cuda.get_current_stream().wait_event(done)
    numpy.testing.assert_array_equal(x.get(), [0, 2, 4, 6])


def test_abort_drops_work_in_flight_and_group_calls_start_at_group_end(nccl):
    import cupy

    comm, stream, x = _comm(nccl), cupy.cuda.Stream(non_blocking=True), _produced(cupy)
    stream.wait_event(cupy.cuda.get_current_stream().record())
    nccl.groupStart()
    comm.bcast(x.data.ptr, x.size, nccl.NCCL_FLOAT32, 0, stream.ptr)
    event = stream.record()
    assert not event.done  # deferred until groupEnd
    nccl.groupEnd()
    event.synchronize()
    numpy.testing.assert_array_equal(x.get(), [0, 2, 4, 6])
    stream.wait_event(cupy.cuda.get_current_stream().record())
    comm.allReduce(x.data.ptr, x.data.ptr, x.size, nccl.NCCL_FLOAT32, nccl.NCCL_SUM, stream.ptr)
    comm.abort()
    assert not cupy._standin.IN_FLIGHT and stream.record().done
    with pytest.raises(nccl.NcclError, match="NCCL_ERROR_INVALID_ARGUMENT: invalid argument .*aborted"):
        comm.allReduce(x.data.ptr, x.data.ptr, x.size, nccl.NCCL_FLOAT32, nccl.NCCL_SUM, stream.ptr)
    with pytest.raises(nccl.NcclError, match="groupEnd\\(\\) without groupStart\\(\\)"):
        nccl.groupEnd()


def test_bad_arguments_are_nccl_errors_and_unmodelled_names_say_so(nccl):
    import cupy

    comm, x = _comm(nccl), _produced(cupy)
    null = cupy.cuda.get_current_stream().ptr
    with pytest.raises(nccl.NcclError, match="is not the .data.ptr of a live device array"):
        comm.allReduce(12345, 12345, 4, nccl.NCCL_FLOAT32, nccl.NCCL_SUM, null)
    with pytest.raises(nccl.NcclError, match="4 x float64 .* the array there is 4 x float32"):
        comm.allReduce(x.data.ptr, x.data.ptr, 4, nccl.NCCL_FLOAT64, nccl.NCCL_SUM, null)
    with pytest.raises(ValueError, match="commId length 3 != 128"):
        nccl.NcclCommunicator(1, b"abc", 0)
    with pytest.raises(NotImplementedError, match="NcclCommunicator.reduceScatter"):
        comm.reduceScatter(x.data.ptr, x.data.ptr, 4, nccl.NCCL_FLOAT32, nccl.NCCL_SUM, null)
    with pytest.raises(AttributeError, match="not in CuPy"):
        nccl.ncclAllReduce  # noqa: B018
    comm.allReduce(x.data.ptr, x.data.ptr, 4, nccl.NCCL_FLOAT32, nccl.NCCL_AVG, null)  # null stream: done now
    numpy.testing.assert_array_equal(x.get(), [0, 2, 4, 6])


def test_ddp_chooses_nccl_and_gpunet_info_says_so(nccl):
    from gpunet.diagnostics import facts

    assert facts()["distributed"] == "nccl (NCCL 2.27.3)"
    with gpunet.use("cupy"), _job_of_one():
        gpunet.manual_seed(0)
        model = nn.MLP([6, 8, 3])
        ddp = dist.DistributedDataParallel(model, bucket_cap_mb=0.0001)
        assert ddp.reducer.name == "nccl" and len(ddp.buckets) >= 2
        x, t = numpy.random.default_rng(0).standard_normal((5, 6)), numpy.arange(5) % 3
        F.cross_entropy(ddp(gpunet.tensor(x)), gpunet.tensor(t)).backward()
        grads = [p.grad.get() for p in model.parameters()]
        assert all(numpy.isfinite(g).all() for g in grads)
        model.zero_grad()
        F.cross_entropy(model(gpunet.tensor(x)), gpunet.tensor(t)).backward()  # no DDP: the plain gradient
        for g, p in zip(grads, model.parameters()):
            numpy.testing.assert_allclose(g, p.grad.get(), rtol=1e-6)
        ddp.remove_hooks()
