"""DistributedDataParallel, the reducers and the sampler in one process: ranks are threads and
the collectives are stand-ins (an all-reduce over the ranks' buffers, NCCL streams and events)."""

from __future__ import annotations

import contextvars
import threading
import time

import numpy
import pytest

import gpunet
from gpunet import distributed as dist
from gpunet import functional as F
from gpunet import nn
from gpunet.data import ArrayDataset, DataLoader
from gpunet.distributed import comm, reducers
from gpunet.distributed.ddp import build_buckets
from gpunet.distributed.watchdog import Watchdog


class World:
    """An all-reduce over ``size`` thread-ranks: every rank gets the sum, added in rank order."""

    def __init__(self, size: int) -> None:
        self.size, self.barrier, self.parts = size, threading.Barrier(size, timeout=10), {}

    def allreduce(self, rank: int, key: object, flat: numpy.ndarray) -> None:
        self.parts[(key, rank)] = flat.copy()
        self.barrier.wait()
        total = self.parts[(key, 0)].copy()
        for r in range(1, self.size):
            total += self.parts[(key, r)]
        self.barrier.wait()
        flat[...] = total
        self.barrier.wait()
        self.parts.pop((key, rank))


class FakeReducer(reducers.Reducer):
    name = "fake"

    def __init__(self, world: World, rank: int) -> None:
        self.world, self.rank, self.launched = world, rank, []

    def launch(self, bucket) -> None:
        self.launched.append(bucket.index)

    def wait(self, bucket) -> None:
        self.world.allreduce(self.rank, bucket.index, bucket.flat)


def run_ranks(size: int, body):
    """``body(rank, world, model)`` on ``size`` threads (each in a copy of this context, with its
    own copy of the seeded model, built here: the RNG is process-wide); their results."""
    world, results, errors = World(size), [None] * size, []
    models = [_model() for _ in range(size)]

    def target(rank: int, ctx: contextvars.Context) -> None:
        try:
            results[rank] = ctx.run(body, rank, world, models[rank])
        except BaseException as exc:  # surfaced below
            errors.append(exc)
            world.barrier.abort()

    threads = [threading.Thread(target=target, args=(r, contextvars.copy_context())) for r in range(size)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    if errors:
        raise errors[0]
    return results


def _data(n=10):
    rng = numpy.random.default_rng(3)
    return rng.standard_normal((n, 6)).astype("float32"), rng.integers(0, 3, n)


def _model():
    gpunet.manual_seed(0)
    return nn.MLP([6, 8, 8, 3], activation="tanh")


def _full_batch_grads():
    model = _model()
    x, t = _data()
    F.cross_entropy(model(gpunet.tensor(x)), gpunet.tensor(t)).backward()
    return [p.grad for p in model.parameters()]


@pytest.mark.parametrize("size, cap_mb", [(2, 25.0), (3, 0.0002)])
def test_the_average_over_ranks_is_the_gradient_of_the_global_batch(size, cap_mb):
    x, t = _data()

    def body(rank, world, model):
        ddp = dist.DistributedDataParallel(model, bucket_cap_mb=cap_mb, reducer=FakeReducer(world, rank),
                                           world_size=size)
        part = numpy.array_split(numpy.arange(len(x)), size)[rank]
        ddp.grad_scale = len(part) / len(x)
        F.cross_entropy(ddp(gpunet.tensor(x[part])), gpunet.tensor(t[part])).backward()
        ddp.finish()  # a no-op: the last gradient hook already finished the step
        return [p.grad for p in model.parameters()], ddp

    results = run_ranks(size, body)
    for grads, ddp in results:
        for g, want in zip(grads, _full_batch_grads()):
            numpy.testing.assert_allclose(g, want, rtol=1e-5, atol=1e-7)
        assert ddp.reducer.launched == list(range(len(ddp.buckets)))
    assert (len(results[0][1].buckets) == 1) == (cap_mb > 1)


def test_buckets_follow_reverse_parameter_order_cap_and_dtype():
    a = nn.Parameter(numpy.zeros(100, "float32"))
    b = nn.Parameter(numpy.zeros(10, "float32"))
    c = nn.Parameter(numpy.zeros(10, "float64"))
    d = nn.Parameter(numpy.zeros(300, "float32"))  # bigger than the cap: a bucket of its own
    buckets = build_buckets([a, b, c, d], cap_bytes=480)
    assert [[p.numel() for p in bk.params] for bk in buckets] == [[300], [10], [10, 100]]
    assert buckets[2].slots == [(0, 10), (10, 110)] and buckets[2].size == 110


def test_timeline_shows_the_first_bucket_launched_before_backward_ends():
    x, t = _data()

    def body(rank, world, model):
        ddp = dist.DistributedDataParallel(model, bucket_cap_mb=0.0002, reducer=FakeReducer(world, rank),
                                           world_size=1, record_timeline=True)
        F.cross_entropy(ddp(gpunet.tensor(x)), gpunet.tensor(t)).backward()
        return ddp.timeline

    events = run_ranks(1, body)[0]
    kinds = [e[0] for e in events]
    first_launch = kinds.index("launch")
    assert "ready" in kinds[first_launch:]  # gradients still arriving after the first launch
    assert kinds[-1] == "done"


def test_unused_parameters_count_as_zero_and_idle_ranks_take_part():
    x, t = _data()

    def body(rank, world, model):
        ddp = dist.DistributedDataParallel(model, bucket_cap_mb=0.0002, reducer=FakeReducer(world, rank),
                                           world_size=2)
        if rank == 0:
            ddp.grad_scale = 1.0  # all of the global batch is on rank 0
            F.cross_entropy(ddp(gpunet.tensor(x)), gpunet.tensor(t)).backward()
            ddp.finish()
        else:
            ddp.skip_step()  # no samples: zero gradients, same collectives
        return [p.grad for p in model.parameters()]

    for grads in run_ranks(2, body):
        for g, want in zip(grads, _full_batch_grads()):
            numpy.testing.assert_allclose(g, want, rtol=1e-5, atol=1e-7)


def test_no_sync_only_accumulates():
    x, t = _data()

    def body(rank, world, model):
        ddp = dist.DistributedDataParallel(model, reducer=FakeReducer(world, rank), world_size=1)
        with ddp.no_sync():
            F.cross_entropy(ddp(gpunet.tensor(x)), gpunet.tensor(t)).backward()
        ddp.finish()
        return ddp.reducer.launched

    assert run_ranks(1, body)[0] == []


def test_ddp_delegates_to_the_module_and_keeps_its_state_dict_names():
    model = _model()
    ddp = dist.DistributedDataParallel(model, reducer=FakeReducer(World(1), 0), world_size=1)
    assert list(ddp.state_dict()) == list(model.state_dict())
    assert ddp.num_parameters() == model.num_parameters()
    with pytest.raises(ValueError, match="bucket_cap_mb"):
        dist.DistributedDataParallel(model, bucket_cap_mb=0)


# ----- the NCCL path on stand-ins ---------------------------------------------------------------

class FakeEvent:
    def __init__(self) -> None:
        self.done = False
        self.stream = None

    def record(self, stream) -> None:
        self.stream = stream
        stream.pending.append(self)


class FakeStream:
    def __init__(self, name: str) -> None:
        self.name, self.ptr, self.waited, self.pending = name, id(self), [], []

    def wait_event(self, event) -> None:
        self.waited.append(event)


class FakeNccl:
    """``ncclAllReduce`` modelled as an all-reduce over the ranks' buffers (the "pointer" is the
    array); the NCCL stream completes at once, unless ``stuck``."""

    def __init__(self, world: World, rank: int, stream: FakeStream, stuck: bool = False) -> None:
        self.world, self.rank, self.stream, self.stuck, self.calls, self.aborted = world, rank, stream, stuck, [], False

    def allReduce(self, send, recv, count, dtype, op, stream_ptr):  # noqa: N802 - CuPy's name
        assert send is recv and count == send.size and stream_ptr == self.stream.ptr and op == 7
        self.calls.append(count)
        if not self.stuck:
            self.world.allreduce(self.rank, len(self.calls), recv)

    def finish_stream(self) -> None:
        if not self.stuck:
            for event in self.stream.pending:
                event.done = True

    def abort(self) -> None:
        self.aborted = True


def _nccl_reducer(world, rank, stuck=False, timeout=5.0):
    nccl_stream, compute = FakeStream("nccl"), FakeStream("compute")
    fake = FakeNccl(world, rank, nccl_stream, stuck)

    def new_event():
        event = FakeEvent()
        original = event.record

        def record(stream):
            original(stream)
            if stream is nccl_stream:
                fake.finish_stream()
            else:
                event.done = True
        event.record = record
        return event

    reducer = reducers.NCCLReducer(fake, nccl_stream, new_event, lambda: compute, lambda a: a, lambda a: 1, 7,
                                   rank, timeout)
    return reducer, fake, compute, nccl_stream


def test_nccl_reducer_averages_on_its_stream_and_the_compute_stream_waits_per_bucket():
    x, t = _data()

    def body(rank, world, model):
        reducer, fake, compute, nccl_stream = _nccl_reducer(world, rank)
        ddp = dist.DistributedDataParallel(model, bucket_cap_mb=0.0002, reducer=reducer, world_size=2)
        part = numpy.array_split(numpy.arange(len(x)), 2)[rank]
        ddp.grad_scale = len(part) / len(x)
        F.cross_entropy(ddp(gpunet.tensor(x[part])), gpunet.tensor(t[part])).backward()
        return [p.grad for p in model.parameters()], ddp, fake, compute, nccl_stream

    for grads, ddp, fake, compute, nccl_stream in run_ranks(2, body):
        for g, want in zip(grads, _full_batch_grads()):
            numpy.testing.assert_allclose(g, want, rtol=1e-5, atol=1e-7)
        assert fake.calls == [b.size for b in ddp.buckets]
        assert len(nccl_stream.waited) == len(ddp.buckets)  # NCCL waits for each bucket to be packed
        assert len(compute.waited) == len(ddp.buckets)  # the optimizer's stream waits for each bucket
        assert all(e.stream is nccl_stream for e in compute.waited)


def test_nccl_reducer_does_not_block_the_host_and_its_watchdog_aborts_a_stuck_bucket():
    x, t = _data()

    def body(rank, world, model):
        reducer, fake, compute, _ = _nccl_reducer(world, rank, stuck=True, timeout=1.0)
        reducer.watchdog.interval = 0.05
        ddp = dist.DistributedDataParallel(model, bucket_cap_mb=0.0002, reducer=reducer, world_size=1)
        started = time.monotonic()
        F.cross_entropy(ddp(gpunet.tensor(x)), gpunet.tensor(t)).backward()  # returns: wait() is device-side
        assert not fake.aborted and reducer.watchdog.pending == len(ddp.buckets)
        assert len(compute.waited) == len(ddp.buckets)
        while not fake.aborted and time.monotonic() - started < 20:
            time.sleep(0.01)
        elapsed = time.monotonic() - started
        assert fake.aborted and elapsed >= 1.0
        # event queries at the watchdog's interval, not a busy loop (that made ~20000 per second)
        assert reducer.watchdog.queries <= len(ddp.buckets) * (elapsed / 0.05 + 2)
        with pytest.raises(dist.DistributedError, match="bucket 0 did not complete within 1 s; another rank"):
            F.cross_entropy(ddp(gpunet.tensor(x)), gpunet.tensor(t)).backward()  # the next launch says why
        return fake.aborted

    assert run_ranks(1, body) == [True]


def test_the_watchdog_reports_an_nccl_error_at_once():
    failures = []

    def check():
        raise RuntimeError("NCCL_ERROR_REMOTE_ERROR: remote process exited or there was a network error")

    event = FakeEvent()  # never done
    dog = Watchdog(60.0, failures.append, interval=0.01, check=check)
    dog.watch(event, "rank 0: NCCL all-reduce of gradient bucket 2")
    deadline = time.monotonic() + 10
    while not failures and time.monotonic() < deadline:
        time.sleep(0.01)
    assert failures == ["rank 0: NCCL all-reduce of gradient bucket 2 failed: NCCL_ERROR_REMOTE_ERROR: remote "
                        "process exited or there was a network error"]
    assert dog.error == failures[0] and dog.pending == 0
    with pytest.raises(ValueError, match="Watchdog: expected timeout > 0 seconds, got 0"):
        Watchdog(0, failures.append)


def test_nccl_status_and_the_info_line(monkeypatch):
    monkeypatch.setenv("GPUNET_DIST_NCCL", "0")
    assert reducers.nccl_status() == (False, "GPUNET_DIST_NCCL=0")
    assert reducers.describe_choice(gpu_usable=True).startswith("mpi with host staging (NCCL not usable")
    monkeypatch.setattr(comm, "mpi_available", lambda: (False, "mpi4py is not installed"))
    assert reducers.describe_choice(gpu_usable=False) == "unavailable: mpi4py is not installed"


# ----- the sampler ---------------------------------------------------------------------------

@pytest.mark.parametrize("n, batch, world", [(23, 8, 2), (10, 4, 3), (7, 1, 2), (12, 12, 4)])
def test_sampler_shards_are_disjoint_and_rebuild_the_global_batches(n, batch, world):
    loader = DataLoader(ArrayDataset(numpy.arange(n)), batch, shuffle=True, seed=5)
    samplers = [dist.DistributedSampler(n, batch, rank=r, world_size=world, seed=5) for r in range(world)]
    for epoch in range(2):
        shards = [s.indices(epoch) for s in samplers]
        assert sorted(numpy.concatenate(shards).tolist()) == list(range(n))
        global_batches = [loader.order(epoch)[b * batch:(b + 1) * batch] for b in range(len(loader))]
        per_rank = [s.batches(epoch) for s in samplers]
        assert all(len(p) == len(loader) for p in per_rank)
        for b, want in enumerate(global_batches):
            assert numpy.concatenate([p[b] for p in per_rank]).tolist() == want.tolist()
            weights = [s.weight(b, len(p[b])) for s, p in zip(samplers, per_rank)]
            assert sum(weights) == pytest.approx(1.0)
    assert not numpy.array_equal(samplers[0].indices(0), samplers[0].indices(1))  # reshuffled per epoch


def test_sampler_follows_a_loader_through_the_data_loader_seam():
    data = ArrayDataset(numpy.arange(9), numpy.arange(9) * 10)
    loader = DataLoader(data, 4, shuffle=True, seed=1)
    sampler = dist.DistributedSampler(9, 4, rank=1, world_size=2, order=loader.order)
    loader.batch_sampler = sampler
    got = [b[0].numpy().tolist() for b in loader.iterate(0)]
    assert got == [s.tolist() for s in sampler.batches(0)] and len(loader) == 3
    assert [b[0].numpy().tolist() for b in loader.iterate(0, start_batch=2)] == got[2:]
    with pytest.raises(ValueError, match="rank"):
        dist.DistributedSampler(9, 4, rank=2, world_size=2)


# ----- the process group without MPI ---------------------------------------------------------

def test_without_init_the_group_is_one_process_and_collectives_say_how_to_start(monkeypatch):
    monkeypatch.setattr(comm, "_group", None)
    assert (dist.get_rank(), dist.get_world_size(), dist.get_local_rank()) == (0, 1, 0)
    assert not dist.is_initialized() and dist.is_main_process()
    with pytest.raises(dist.DistributedError, match="call gpunet.distributed.init"):
        dist.barrier()
    with pytest.raises(dist.DistributedError, match="not initialised"):
        dist.DistributedDataParallel(_model())  # the MPI reducer needs the group
    with pytest.raises(KeyError), dist.abort_on_error():  # a job of one: errors pass through
        raise KeyError("x")


def test_init_without_mpi4py_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(comm, "_group", None)
    monkeypatch.setattr(comm, "mpi_available", lambda: (False, "mpi4py is not installed (pip install 'gpunet[mpi]')"))
    with pytest.raises(dist.DistributedError, match=r"needs MPI: mpi4py is not installed \(pip install"):
        dist.init()


# ----- sharded evaluation ----------------------------------------------------------------------

@pytest.mark.parametrize("world_size, batch", [(2, 3), (3, 4)])
def test_sharded_evaluation_reduces_to_the_metrics_of_the_whole_split(world_size, batch):
    from gpunet.training import prepare_run
    from gpunet.training.metrics import evaluate

    recipe, split, net = prepare_run("mlp", None, 0, None)
    test = split.test
    n_classes = int(split.info.get("num_classes", 2))
    whole = evaluate(recipe, net, DataLoader(test, batch), n_classes)
    assert len(test) % batch and len(test) % batch < world_size  # some ranks get nothing of the last batch

    def body(rank, world, model):
        loader = DataLoader(test, batch)
        loader.batch_sampler = dist.DistributedSampler(len(test), batch, rank=rank, world_size=world_size,
                                                       shuffle=False)
        local = evaluate(recipe, net, loader, n_classes)

        def reduce(values):
            world.allreduce(rank, "eval", values)
            return values

        return local, evaluate(recipe, net, loader, n_classes, reduce=reduce)

    results = run_ranks(world_size, body)
    for _, reduced in results:
        assert reduced["accuracy"] == whole["accuracy"]
        assert reduced["loss"] == pytest.approx(whole["loss"], rel=1e-6)
        numpy.testing.assert_array_equal(reduced["confusion"], whole["confusion"])
    assert sum(int(local["confusion"].sum()) for local, _ in results) == len(test)  # disjoint shards
    assert all(int(local["confusion"].sum()) < len(test) for local, _ in results)


# ----- Ctrl-C in a job ---------------------------------------------------------------------------

def test_ctrl_c_sets_a_flag_that_every_rank_agrees_on_and_a_second_one_interrupts(monkeypatch):
    import os
    import signal

    from gpunet.distributed import interrupts

    sums = []
    monkeypatch.setattr(comm, "allreduce_sum", lambda values, what: sums.append(list(values)) or
                        numpy.array(values) + (1 if len(sums) == 2 else 0))  # a peer was interrupted in poll 2
    before = signal.getsignal(signal.SIGINT)
    with dist.agreed_interrupts() as agreement:
        progress = agreement.polling(None)
        progress({})  # nobody interrupted: goes on
        with pytest.raises(dist.AgreedInterrupt) as caught:
            progress({})  # another rank was: this one stops too, after the same step
        assert caught.value.all_ranks and sums == [[0], [0]]
        os.kill(os.getpid(), signal.SIGINT)  # the first Ctrl-C only asks
        assert agreement.requested == 1
        with pytest.raises(dist.AgreedInterrupt):
            agreement.poll()
        with pytest.raises(KeyboardInterrupt) as second:
            os.kill(os.getpid(), signal.SIGINT)  # the second one interrupts at once
            time.sleep(1)
        assert not isinstance(second.value, dist.AgreedInterrupt)
    assert signal.getsignal(signal.SIGINT) is before
    try:
        try:
            raise dist.AgreedInterrupt
        except KeyboardInterrupt as exc:
            raise SystemExit(130) from exc
    except SystemExit as exit_:
        assert interrupts.is_agreed(exit_) and not interrupts.is_agreed(KeyboardInterrupt())
