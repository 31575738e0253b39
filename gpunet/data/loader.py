"""The DataLoader: batches of any map-style dataset, seeded and resumable shuffling, worker processes.

Shuffling draws epoch ``e``'s order from ``numpy.random.default_rng([seed, e])``, so an epoch
always sees the same order and a resumed run skips the batches it already trained on
(:meth:`DataLoader.iterate` with ``start_batch``, or :meth:`DataLoader.state_dict`).

Batches come from one of two paths:

- an :class:`~gpunet.data.dataset.ArrayDataset` / ``TensorDataset`` with the default collate is
  indexed once per array with the batch's indices (the fast path);
- any other dataset (a ``Dataset`` subclass, a list of samples) gives one sample per index,
  and ``collate_fn`` (default: :func:`~gpunet.data.collate.default_collate`) makes the batch.

On the CuPy backend an array dataset that fits (at most :data:`DEVICE_DATA_FRACTION` of the free
device memory; ``device_data=True`` always, ``False`` never) is copied to the device once, at the
first batch, and each batch is a gather on the device: the epoch's order is drawn on the host as
always (the same batches as on NumPy, exact resume) and copied once per epoch, so a step copies
nothing from the host. The copy is made once: a dataset changed in place afterwards is not seen
(call :meth:`DataLoader.release_device_data`).

With ``num_workers > 0`` a pool of processes fetches and collates (on the host) ahead of the
training loop, ``num_workers * prefetch_factor`` batches at most, and the batches come back in
order; the main process moves each to the active backend. The dataset and ``collate_fn`` are
sent to every worker once, so under ``spawn`` they must be picklable (module-level classes and
functions). The pool is shut down when the epoch ends, when the loop breaks out early (the
iterator is closed), or at :meth:`DataLoader.close` for ``persistent_workers=True``.
"""

from __future__ import annotations

import multiprocessing
import numbers
import pickle
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

import numpy

from gpunet import backend
from gpunet.autograd import Tensor
from gpunet.data import collate as C
from gpunet.data.dataset import ArrayDataset

#: The largest part of the free device memory an array dataset may take to be kept on the device.
DEVICE_DATA_FRACTION = 0.5


def _check_int(name: str, value: Any, low: int) -> int:
    if isinstance(value, (bool, numpy.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"DataLoader: {name} must be an integer >= {low}, got {value!r} ({type(value).__name__})")
    if value < low:
        raise ValueError(f"DataLoader: {name} must be an integer >= {low}, got {value!r}")
    return int(value)


def _check_flag(name: str, value: Any) -> bool:
    if not isinstance(value, (bool, numpy.bool_)):
        raise TypeError(f"DataLoader: {name} must be True or False, got {value!r} ({type(value).__name__})")
    return bool(value)


class DataLoader:
    """Batches of ``dataset`` as Tensors on the active backend.

    ``DataLoader(dataset, batch_size=32, shuffle=False, seed=0, drop_last=False, *, collate_fn=None,
    num_workers=0, sampler=None, generator=None, ...)``: gpunet's first four positional
    arguments are kept (PyTorch's third positional is ``sampler``: pass it by keyword).
    ``generator`` may be an int seed or a ``numpy.random.Generator`` (one seed is drawn from it);
    ``sampler`` is any iterable of indices (with ``__len__``; ``set_epoch(e)`` is called when it
    has one, so its order can be resumable too). ``device_data``: keep an array dataset on the
    CuPy device (``None``: when it fits, see the module docstring).
    """

    def __init__(self, dataset: Any, batch_size: int = 32, shuffle: bool = False, seed: int = 0,
                 drop_last: bool = False, *, collate_fn: Callable[[list[Any]], Any] | None = None,
                 num_workers: int = 0, sampler: Iterable[int] | None = None, generator: Any = None,
                 prefetch_factor: int | None = None, persistent_workers: bool = False,
                 multiprocessing_context: Any = None, timeout: float = 0,
                 worker_init_fn: Callable[[int], None] | None = None, pin_memory: bool = False,
                 batch_sampler: Any = None, device_data: bool | None = None) -> None:
        if not (hasattr(dataset, "__getitem__") and hasattr(dataset, "__len__")):
            raise TypeError(f"DataLoader: dataset must have __getitem__ and __len__ (a Dataset, an "
                            f"ArrayDataset or a list of samples), got {type(dataset).__name__}")
        self.dataset = dataset
        self.batch_size = _check_int("batch_size", batch_size, 1)
        self.shuffle = _check_flag("shuffle", shuffle)
        self.drop_last = _check_flag("drop_last", drop_last)
        if generator is not None:
            if isinstance(generator, numpy.random.Generator):
                seed = int(generator.integers(0, 2**63 - 1))
            elif isinstance(generator, numbers.Integral) and not isinstance(generator, bool):
                seed = int(generator)
            else:
                raise TypeError(f"DataLoader: generator must be an int seed or a numpy.random.Generator, "
                                f"got {type(generator).__name__}")
        self.seed = _check_int("seed", seed, 0)
        if collate_fn is not None and not callable(collate_fn):
            raise TypeError(f"DataLoader: collate_fn must be callable, got {type(collate_fn).__name__}")
        self.collate_fn = collate_fn
        self.num_workers = _check_int("num_workers", num_workers, 0)
        if sampler is not None:
            if shuffle:
                raise ValueError("DataLoader: sampler and shuffle=True exclude each other (the sampler "
                                 "decides the order); pass shuffle=False")
            if not hasattr(sampler, "__iter__"):
                raise TypeError(f"DataLoader: sampler must be an iterable of indices, got {type(sampler).__name__}")
        self.sampler = sampler
        self.batch_sampler = batch_sampler  # ``batches(epoch)`` -> index arrays (a DistributedSampler)
        if prefetch_factor is not None and self.num_workers == 0:
            raise ValueError("DataLoader: prefetch_factor needs num_workers > 0")
        self.prefetch_factor = _check_int("prefetch_factor", 2 if prefetch_factor is None else prefetch_factor, 1)
        self.persistent_workers = _check_flag("persistent_workers", persistent_workers)
        if self.persistent_workers and self.num_workers == 0:
            raise ValueError("DataLoader: persistent_workers=True needs num_workers > 0")
        if isinstance(timeout, bool) or not isinstance(timeout, numbers.Real) or not timeout >= 0:
            raise ValueError(f"DataLoader: timeout must be a number of seconds >= 0, got {timeout!r}")
        self.timeout = float(timeout)
        if worker_init_fn is not None and not callable(worker_init_fn):
            raise TypeError(f"DataLoader: worker_init_fn must be callable, got {type(worker_init_fn).__name__}")
        self.worker_init_fn = worker_init_fn
        self.multiprocessing_context = multiprocessing_context
        self.pin_memory = _check_flag("pin_memory", pin_memory)  # accepted; host arrays are not pinned
        if device_data is not None and not isinstance(device_data, (bool, numpy.bool_)):
            raise TypeError(f"DataLoader: device_data must be True, False or None (when it fits), got "
                            f"{device_data!r} ({type(device_data).__name__})")
        self.device_data = None if device_data is None else bool(device_data)
        self._device: tuple[tuple[int, ...], tuple[Any, ...]] | None = None  # (key, the arrays on the device)
        self.epoch = 0  # the epoch the next ``iter(loader)`` runs
        self.batch = 0  # and the batch it starts at
        self._position = (0, 0)  # (epoch, batch) of the next batch to come
        self._pool: ProcessPoolExecutor | None = None

    # ----- order and length ----------------------------------------------------------------
    def __len__(self) -> int:
        if self.batch_sampler is not None:
            return len(self.batch_sampler)
        n = len(self.sampler) if self.sampler is not None else len(self.dataset)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def order(self, epoch: int) -> numpy.ndarray:
        """The indices of epoch ``epoch``, in the order the batches take them."""
        if self.sampler is not None:
            if hasattr(self.sampler, "set_epoch"):
                self.sampler.set_epoch(epoch)
            order = numpy.fromiter((int(i) for i in self.sampler), dtype=numpy.int64)
            bad = order[(order < 0) | (order >= len(self.dataset))]
            if bad.size:
                raise IndexError(f"DataLoader: the sampler gave index {int(bad[0])}, outside the dataset "
                                 f"of {len(self.dataset)} samples")
            return order
        n = len(self.dataset)
        if not self.shuffle:
            return numpy.arange(n)
        return numpy.random.default_rng([self.seed, epoch]).permutation(n)

    # ----- iteration -----------------------------------------------------------------------
    def iterate(self, epoch: int, start_batch: int = 0) -> Iterator[Any]:
        """The batches of epoch ``epoch`` from batch ``start_batch`` on (exact resume)."""
        epoch = _check_int("epoch", epoch, 0)
        start_batch = _check_int("start_batch", start_batch, 0)
        if self.batch_sampler is not None:
            chunks = list(self.batch_sampler.batches(epoch))[start_batch:]
        else:
            order = self.order(epoch)
            chunks = [order[b * self.batch_size: (b + 1) * self.batch_size] for b in range(start_batch, len(self))]
        if self.num_workers == 0:
            device = self._device_arrays()
            if device is not None:
                yield from _gather(device, chunks)
                return
            for idx in chunks:
                yield self._finish(fetch(self.dataset, idx, self.collate_fn))
            return
        yield from self._from_workers(chunks)

    # ----- the dataset on the device -------------------------------------------------------
    def _device_arrays(self) -> tuple[Any, ...] | None:
        """The dataset's arrays on the current CuPy device, when batches are gathered there."""
        dataset = self.dataset
        if self.device_data is False or self.collate_fn is not None or backend.current() != "cupy" \
                or not isinstance(dataset, ArrayDataset) or type(dataset).batch is not ArrayDataset.batch \
                or any(a.dtype.kind not in "biufc" or a.ndim == 0 for a in dataset.arrays):
            return None
        cupy = backend.module_for("cupy")
        device = cupy.cuda.Device()
        key = (device.id, id(dataset), *(id(a) for a in dataset.arrays))
        if self._device is not None and self._device[0] == key:
            return self._device[1]
        size = sum(a.nbytes for a in dataset.arrays if not backend.is_cupy_array(a))
        if self.device_data is None and size > DEVICE_DATA_FRACTION * device.mem_info[0]:
            return None
        self._device = (key, tuple(cupy.asarray(a) for a in dataset.arrays))
        return self._device[1]

    def release_device_data(self) -> None:
        """Drop the device copy of the dataset (the next batch copies it again if it is kept)."""
        self._device = None

    def _finish(self, batch: Any) -> Any:
        return C.to_backend(batch) if self.collate_fn is None else batch

    def __iter__(self) -> Iterator[Any]:
        epoch, start = self.epoch, self.batch
        self.epoch, self.batch = epoch + 1, 0  # the next iter() starts the next epoch
        return self._tracked(epoch, start)

    def _tracked(self, epoch: int, start: int) -> Iterator[Any]:
        self._position = (epoch, start)
        for b, batch in enumerate(self.iterate(epoch, start), start=start + 1):
            self._position = (epoch, b) if b < len(self) else (epoch + 1, 0)
            yield batch
        self._position = (epoch + 1, 0)

    def state_dict(self) -> dict[str, Any]:
        """Where the loader stands: the epoch and the next batch (plus what fixes the order)."""
        epoch, batch = self._position
        return {"epoch": epoch, "batch": batch, "seed": self.seed, "batch_size": self.batch_size,
                "shuffle": self.shuffle, "drop_last": self.drop_last, "length": len(self.dataset)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Make the next ``iter(loader)`` continue at the saved epoch and batch."""
        if not isinstance(state, Mapping):
            raise TypeError(f"DataLoader.load_state_dict: expected a dict, got {type(state).__name__}")
        now = self.state_dict()
        differ = [f"{k} {state.get(k)!r} (state) vs {now[k]!r} (now)" for k in
                  ("seed", "batch_size", "shuffle", "drop_last", "length") if k in state and state[k] != now[k]]
        if differ:
            raise ValueError(f"DataLoader.load_state_dict: the state was saved by another loader: {', '.join(differ)}")
        for key in ("epoch", "batch"):
            if key not in state:
                raise ValueError(f"DataLoader.load_state_dict: the state has no {key!r}")
        epoch, batch = _check_int("epoch", state["epoch"], 0), _check_int("batch", state["batch"], 0)
        if batch > len(self):
            raise ValueError(f"DataLoader.load_state_dict: batch {batch} is beyond the {len(self)} batches of an epoch")
        self.epoch, self.batch = (epoch + 1, 0) if batch == len(self) else (epoch, batch)
        self._position = (self.epoch, self.batch)

    # ----- workers -------------------------------------------------------------------------
    def _start_pool(self) -> ProcessPoolExecutor:
        context = self.multiprocessing_context
        if context is None and backend.current() == "cupy":
            context = "spawn"  # never fork a process that holds a CUDA context
        if isinstance(context, str):
            context = multiprocessing.get_context(context)
        ids = (context or multiprocessing).Queue()
        for i in range(self.num_workers):
            ids.put(i)
        return ProcessPoolExecutor(max_workers=self.num_workers, mp_context=context, initializer=_worker_start,
                                   initargs=(self.dataset, self.collate_fn, self.worker_init_fn, self.seed, ids))

    def _from_workers(self, chunks: list[numpy.ndarray]) -> Iterator[Any]:
        pool = self._pool or self._start_pool()
        if self.persistent_workers:
            self._pool = pool
        pending: deque[Future] = deque()
        ahead = self.num_workers * self.prefetch_factor
        try:
            todo = iter(chunks)
            for idx in todo:
                pending.append(self._submit(pool, idx))
                if len(pending) >= ahead:
                    break
            while pending:
                try:
                    batch = pending.popleft().result(timeout=self.timeout or None)
                except FutureTimeout as exc:
                    raise TimeoutError(f"DataLoader: a worker took more than timeout={self.timeout}s "
                                       f"for a batch") from exc
                for idx in todo:
                    pending.append(self._submit(pool, idx))
                    break
                yield self._finish(batch)
        finally:
            for future in pending:
                future.cancel()
            if not self.persistent_workers:
                pool.shutdown(wait=True, cancel_futures=True)

    def _submit(self, pool: ProcessPoolExecutor, idx: numpy.ndarray) -> Future:
        try:
            return pool.submit(_worker_fetch, idx)
        except (pickle.PicklingError, AttributeError, TypeError) as exc:
            raise RuntimeError(f"DataLoader: num_workers={self.num_workers} sends the dataset and collate_fn to "
                               f"worker processes, and they cannot be pickled ({exc}); define them at module "
                               f"level, or use num_workers=0") from exc

    def close(self) -> None:
        """Stop the worker processes kept by ``persistent_workers=True``."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def __del__(self) -> None:
        pool = getattr(self, "_pool", None)
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_pool": None, "_device": None}


def _gather(arrays: tuple[Any, ...], chunks: list[numpy.ndarray]) -> Iterator[tuple[Tensor, ...]]:
    """Batches gathered on the device: the epoch's indices go over in one copy."""
    if not chunks:
        return
    cupy = backend.module_for("cupy")
    order = cupy.asarray(numpy.concatenate(chunks).astype(numpy.int64, copy=False))
    start = 0
    for idx in chunks:
        rows = order[start:start + len(idx)]
        start += len(idx)
        yield tuple(Tensor(a[rows]) for a in arrays)


def fetch(dataset: Any, indices: numpy.ndarray, collate_fn: Callable[[list[Any]], Any] | None) -> Any:
    """One batch on the host: the fast path for array datasets, else samples then collate."""
    if collate_fn is None and isinstance(dataset, ArrayDataset):
        return dataset.batch(indices)
    if hasattr(dataset, "__getitems__"):
        samples = dataset.__getitems__(indices.tolist())
    else:
        samples = [dataset[i] for i in indices.tolist()]
    return C.collate_host(samples) if collate_fn is None else collate_fn(samples)


# ----- inside a worker process ---------------------------------------------------------------
_WORKER: dict[str, Any] = {}


def _worker_start(dataset: Any, collate_fn: Any, worker_init_fn: Any, seed: int, ids: Any) -> None:
    worker_id = ids.get()
    _WORKER.update(dataset=dataset, collate_fn=collate_fn, id=worker_id)
    numpy.random.seed((seed + worker_id) % 2**32)  # PyTorch seeds each worker with base_seed + worker_id
    import random

    random.seed(seed + worker_id)
    if worker_init_fn is not None:
        worker_init_fn(worker_id)


def _worker_fetch(indices: numpy.ndarray) -> Any:
    batch = fetch(_WORKER["dataset"], indices, _WORKER["collate_fn"])
    return tuple(backend.to_numpy(a) for a in batch) if isinstance(_WORKER["dataset"], ArrayDataset) and \
        _WORKER["collate_fn"] is None else batch


def get_worker_info() -> dict[str, Any] | None:
    """Inside a worker: ``{"id": ..., "dataset": ...}``; ``None`` in the main process."""
    return dict(_WORKER) if _WORKER else None
