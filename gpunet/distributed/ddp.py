"""DistributedDataParallel: average gradients over the ranks while backward is still running.

Parameters are grouped, in reverse order (the order backward completes them), into buckets of
at most ``bucket_cap_mb`` each, one flat buffer per bucket. A post-accumulate-grad hook on every
parameter copies its finished gradient into its bucket's buffer; when a bucket is full it is
scaled (``grad_scale``, ``1/world_size`` by default: averaging) and its all-reduce is started at
once, so the reduction of the last layers runs while backward computes the first ones. Buckets
are launched strictly in index order on every rank (a bucket that fills early waits for its
predecessors), so all ranks issue the same collectives in the same order.

:meth:`finish` (called automatically when the last parameter's gradient is in, and again, as a
no-op, by the Trainer) launches what is left (a parameter backward never reached contributes
zeros), waits for every bucket and writes the averaged gradients back into ``p.grad``.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from gpunet import backend
from gpunet.distributed import comm
from gpunet.nn.module import Module, Parameter


@dataclass
class Bucket:
    index: int
    params: list[Parameter]
    slots: list[tuple[int, int]]  # (start, stop) of each parameter in the flat buffer
    dtype: Any
    size: int
    flat: Any = None
    ready: set[int] = field(default_factory=set)
    launched: bool = False
    request: Any = None
    done: Any = None
    host: Any = None


def build_buckets(params: list[Parameter], cap_bytes: int) -> list[Bucket]:
    """Parameters in reverse order, cut into buckets of at most ``cap_bytes`` (one dtype each;
    a parameter bigger than the cap gets a bucket of its own)."""
    buckets: list[Bucket] = []
    current: list[Parameter] = []
    nbytes = 0

    def close() -> None:
        nonlocal current, nbytes
        if current:
            slots, start = [], 0
            for p in current:
                slots.append((start, start + p.numel()))
                start += p.numel()
            buckets.append(Bucket(len(buckets), current, slots, current[0].dtype, start))
        current, nbytes = [], 0

    for p in reversed(params):
        size = p.numel() * p.dtype.itemsize
        if current and (nbytes + size > cap_bytes or p.dtype != current[0].dtype):
            close()
        current.append(p)
        nbytes += size
    close()
    return buckets


class DistributedDataParallel:
    """Wraps ``module`` (PyTorch's name); calling it runs the module, and the next backward
    all-reduces the gradients. Attributes not found here come from the module, and
    ``state_dict`` is the module's own (no ``module.`` prefix), so checkpoints stay exchangeable
    with single-process runs.

    ``reducer`` defaults to the device's choice (:func:`gpunet.distributed.reducers.choose`);
    ``record_timeline`` keeps ``(event, bucket, seconds)`` tuples in :attr:`timeline`.
    """

    def __init__(self, module: Module, bucket_cap_mb: float = 25.0, reducer: Any = None,
                 broadcast: bool = True, world_size: int | None = None, record_timeline: bool = False) -> None:
        if bucket_cap_mb <= 0:
            raise ValueError(f"DistributedDataParallel: expected bucket_cap_mb > 0, got {bucket_cap_mb}")
        self.module = module
        self.params = [p for p in module.parameters() if p.requires_grad]
        if not self.params:
            raise ValueError("DistributedDataParallel: the module has no parameters that require grad")
        self.buckets = build_buckets(self.params, int(bucket_cap_mb * 2**20))
        self._where = {id(p): (b, i) for b in self.buckets for i, p in enumerate(b.params)}
        self.world_size = comm.get_world_size() if world_size is None else world_size
        self.grad_scale = 1.0 / self.world_size
        if broadcast and comm.is_initialized():
            broadcast_parameters(module)
        self.reducer = reducer if reducer is not None else _default_reducer(self.params[0].device)
        self.record_timeline = record_timeline
        self.timeline: list[tuple[str, int, float]] = []
        self._sync = True
        self._active = False  # a step's hooks have started filling buckets
        self._next = 0  # index of the next bucket to launch
        self._ready_count = 0
        self._handles = [p.register_post_accumulate_grad_hook(self._on_grad_ready) for p in self.params]

    # ----- the wrapped module ---------------------------------------------------------------
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self._active:  # the last step left buckets in flight (an unused parameter): settle them
            self.finish()
        return self.module(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        if name == "module":
            raise AttributeError(name)
        return getattr(self.module, name)

    def remove_hooks(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []

    @contextlib.contextmanager
    def no_sync(self) -> Iterator[None]:
        """Backward passes inside only accumulate local gradients (gradient accumulation); the
        first backward after the block reduces the accumulated sum."""
        self._sync = False
        try:
            yield
        finally:
            self._sync = True

    # ----- during backward --------------------------------------------------------------
    def _note(self, event: str, index: int) -> None:
        if self.record_timeline:
            self.timeline.append((event, index, time.perf_counter()))

    def _begin(self) -> None:
        self._active, self._next, self._ready_count = True, 0, 0
        for b in self.buckets:
            b.ready.clear()
            b.launched = False
            if b.flat is None or backend.get_array_module(b.flat) is not b.params[0].xp:
                b.flat = b.params[0].xp.zeros(b.size, dtype=b.dtype)

    def _on_grad_ready(self, p: Parameter) -> None:
        if not self._sync:
            return
        if not self._active:
            self._begin()
        bucket, i = self._where[id(p)]
        if bucket.launched:
            return  # a second backward in the same step: its bucket is already on the wire
        start, stop = bucket.slots[i]
        if p.grad is None:
            bucket.flat[start:stop] = 0
        else:
            bucket.flat[start:stop] = p.grad.reshape(-1)
        if i not in bucket.ready:
            bucket.ready.add(i)
            self._ready_count += 1
        self._note("ready", bucket.index)
        if len(bucket.ready) == len(bucket.params):
            self._launch_ready()
        self.reducer.progress()
        if self._ready_count == len(self.params):
            self.finish()

    def _launch_ready(self) -> None:
        while self._next < len(self.buckets):
            bucket = self.buckets[self._next]
            if len(bucket.ready) < len(bucket.params):
                return
            if self.grad_scale != 1.0:
                bucket.flat *= bucket.flat.dtype.type(self.grad_scale)
            self._note("launch", bucket.index)
            self.reducer.launch(bucket)
            bucket.launched = True
            self._next += 1

    # ----- after backward -----------------------------------------------------------------
    def finish(self) -> None:
        """Launch the buckets not yet launched (missing gradients count as zeros), wait for all,
        and store the averaged gradients in ``p.grad``. Does nothing when no step is open."""
        if not self._active:
            return
        for bucket in self.buckets:
            for i in range(len(bucket.params)):
                if i not in bucket.ready:
                    start, stop = bucket.slots[i]
                    bucket.flat[start:stop] = 0
                    bucket.ready.add(i)
        self._launch_ready()
        try:
            for bucket in self.buckets:
                self.reducer.wait(bucket)
                self._note("done", bucket.index)
                for p, (start, stop) in zip(bucket.params, bucket.slots):
                    g = bucket.flat[start:stop].reshape(p.shape)
                    if p.grad is not None and p.grad.shape == p.shape and p.grad.flags.writeable \
                            and backend.get_array_module(p.grad) is backend.get_array_module(g):
                        p.grad[...] = g
                    else:
                        p.grad = g.copy()
        finally:
            self._active = False

    synchronize = finish

    def skip_step(self) -> None:
        """Take part in this step's reduction with zero gradients (a rank with no samples in the
        step: its peers still wait for its buckets)."""
        if not self._active:
            self._begin()
        self.finish()


def _default_reducer(device: str) -> Any:
    from gpunet.distributed import reducers

    return reducers.choose(device)


def broadcast_parameters(model: Module, root: int = 0) -> None:
    """Copy rank ``root``'s parameters to every rank (one host-staged broadcast per parameter)."""
    if comm.get_world_size() == 1:
        return
    for name, p in model.named_parameters():
        host = backend.to_numpy(p.data).copy()
        host = comm.broadcast_array(host, root=root, what=f"broadcast of parameter {name}")
        p.data = backend.to_backend(host, p.device).astype(p.dtype, copy=False)
