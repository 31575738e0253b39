"""Variable-length sequences, PyTorch's ``torch.nn.utils.rnn``: pad, pack, unpack.

- :func:`pad_sequence` stacks sequences of different lengths ``(L_i, *)`` into ``(T, B, *)``
  (``(B, T, *)`` with ``batch_first``), filling with ``padding_value``.
- :func:`pack_padded_sequence` turns a padded batch and its lengths into a
  :class:`PackedSequence`: PyTorch's layout (``data`` holds the valid steps time-major, longest
  sequences first; ``batch_sizes[t]`` counts the sequences still running at step ``t``), plus
  :attr:`PackedSequence.lengths` in the original batch order.
- :func:`pad_packed_sequence` undoes it: ``(padded, lengths)``.

All three are differentiable (one ``concat`` and one gather each). ``RNN``/``LSTM``/``GRU``
accept a PackedSequence: :func:`packed_forward` unpacks it to the padded batch plus ``lengths=``
the layers take, runs them, and packs the output again (``h_n``/``c_n`` in the original batch
order, as PyTorch gives them).
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy

from gpunet import backend
from gpunet import functional as F
from gpunet.autograd import Tensor

__all__ = ["PackedSequence", "pack_padded_sequence", "pack_sequence", "pad_packed_sequence", "pad_sequence",
           "unpad_sequence"]


class PackedSequence(NamedTuple):
    """``data`` (sum of lengths, *), ``batch_sizes`` (T,) int64 on the host, and the permutation
    from the original batch order to the longest-first one (``None`` when it was already sorted)."""

    data: Tensor
    batch_sizes: numpy.ndarray
    sorted_indices: numpy.ndarray | None = None
    unsorted_indices: numpy.ndarray | None = None

    @property
    def lengths(self) -> numpy.ndarray:
        """Each sequence's length, in the original batch order (int64, host)."""
        sizes = numpy.asarray(self.batch_sizes)
        in_sorted = (sizes[None, :] > numpy.arange(int(sizes[0]) if sizes.size else 0)[:, None]).sum(axis=1)
        if self.unsorted_indices is None:
            return in_sorted.astype(numpy.int64)
        return in_sorted[numpy.asarray(self.unsorted_indices)].astype(numpy.int64)

    def to(self, device: Any) -> PackedSequence:
        return self._replace(data=self.data.to(device))


def is_packed(value: Any) -> bool:
    return isinstance(value, PackedSequence)


def _tensor(value: Any, op: str, name: str) -> Tensor:
    if isinstance(value, Tensor):
        return value
    if isinstance(value, numpy.ndarray) or backend.is_cupy_array(value):
        return Tensor(value)
    raise TypeError(f"{op}: {name} must be a Tensor or an array, got {type(value).__name__}")


def _check_flag(op: str, name: str, value: Any) -> bool:
    if not isinstance(value, (bool, numpy.bool_)):
        raise TypeError(f"{op}: {name} must be True or False, got {value!r}")
    return bool(value)


def _check_padding(op: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{op}: padding_value must be a number, got {value!r}")
    return value


def _gather_with_padding(data: Tensor, index: numpy.ndarray, shape: tuple[int, ...], padding_value: float) -> Tensor:
    """``concat([data, pad_row])[index]`` reshaped to ``shape``; index ``len(data)`` is the pad row."""
    xp = data.xp
    pad = Tensor(xp.full((1,) + tuple(data.shape[1:]), padding_value, dtype=data.dtype))
    rows = F.concat([data, pad], axis=0)
    return F.getitem(rows, xp.asarray(index.reshape(-1))).reshape(*shape)


def pad_sequence(sequences: Sequence[Any], batch_first: bool = False, padding_value: float = 0.0,
                 padding_side: str = "right") -> Tensor:
    """Stack ``(L_i, *)`` sequences into ``(T, B, *)`` (or ``(B, T, *)``), ``T = max L_i``."""
    op = "pad_sequence"
    if isinstance(sequences, (Tensor, numpy.ndarray)) or not isinstance(sequences, Sequence) or not sequences:
        raise TypeError(f"{op}: sequences must be a non-empty list of Tensors, got {type(sequences).__name__}"
                        + (" (empty)" if isinstance(sequences, Sequence) and not sequences else ""))
    batch_first = _check_flag(op, "batch_first", batch_first)
    padding_value = _check_padding(op, padding_value)
    if padding_side not in ("right", "left"):
        raise ValueError(f"{op}: padding_side must be 'right' or 'left', got {padding_side!r}")
    seqs = [_tensor(s, op, f"sequences[{i}]") for i, s in enumerate(sequences)]
    for i, s in enumerate(seqs):
        if s.ndim == 0 or s.shape[1:] != seqs[0].shape[1:] or s.dtype != seqs[0].dtype:
            raise ValueError(f"{op}: sequences[{i}] has shape {s.shape} and dtype {s.dtype}; every sequence must "
                             f"be (L, {', '.join(map(str, seqs[0].shape[1:])) or ''}) of {seqs[0].dtype}"
                             .replace(", )", ")"))
    lengths = numpy.array([s.shape[0] for s in seqs], dtype=numpy.int64)
    steps, batch, total = int(lengths.max()), len(seqs), int(lengths.sum())
    starts = numpy.concatenate([[0], numpy.cumsum(lengths)[:-1]])
    t = numpy.arange(steps)[:, None]
    shift = (steps - lengths)[None, :] if padding_side == "left" else 0
    position = t - shift
    valid = (position >= 0) & (position < lengths[None, :])
    index = numpy.where(valid, starts[None, :] + position, total)  # (T, B)
    if batch_first:
        index = index.T
    shape = (index.shape[0], index.shape[1]) + tuple(seqs[0].shape[1:])
    data = seqs[0] if batch == 1 else F.concat(seqs, axis=0)
    return _gather_with_padding(data, index, shape, padding_value)


def unpad_sequence(padded: Tensor, lengths: Any, batch_first: bool = False) -> list[Tensor]:
    """The sequences of a padded batch, each cut to its length."""
    lengths = _lengths("unpad_sequence", lengths, padded.shape[0 if batch_first else 1],
                       padded.shape[1 if batch_first else 0], allow_zero=True)
    if not batch_first:
        padded = padded.transpose(1, 0, *range(2, padded.ndim))
    return [padded[b, : int(n)] for b, n in enumerate(lengths)]


def _lengths(op: str, lengths: Any, batch: int, steps: int, allow_zero: bool = False) -> numpy.ndarray:
    if isinstance(lengths, Tensor):
        lengths = lengths.data
    host = numpy.asarray(backend.to_numpy(lengths) if backend.is_cupy_array(lengths) else lengths)
    if host.ndim != 1 or host.shape[0] != batch or (host.size and host.dtype.kind not in "iu"):
        raise ValueError(f"{op}: lengths must be {batch} integers (one per sequence), got "
                         f"{host.dtype} of shape {host.shape}")
    low = 0 if allow_zero else 1
    if host.size and (host.min() < low or host.max() > steps):
        raise ValueError(f"{op}: lengths must lie in [{low}, {steps}] (the padded length), got "
                         f"[{host.min()}, {host.max()}]")
    return host.astype(numpy.int64)


def pack_padded_sequence(input: Any, lengths: Any, batch_first: bool = False,  # noqa: A002 (PyTorch's name)
                         enforce_sorted: bool = True) -> PackedSequence:
    """Pack a padded ``(T, B, *)`` batch (``(B, T, *)`` with ``batch_first``) of the given lengths.

    With ``enforce_sorted`` (PyTorch's default) the lengths must be in decreasing order;
    pass ``enforce_sorted=False`` to have them sorted (the permutation is kept).
    """
    op = "pack_padded_sequence"
    x = _tensor(input, op, "input")
    batch_first = _check_flag(op, "batch_first", batch_first)
    enforce_sorted = _check_flag(op, "enforce_sorted", enforce_sorted)
    if x.ndim < 2:
        raise ValueError(f"{op}: input must be (T, B, *) or (B, T, *) with batch_first, got shape {x.shape}")
    if batch_first:
        x = x.transpose(1, 0, *range(2, x.ndim))
    steps, batch = x.shape[0], x.shape[1]
    lengths = _lengths(op, lengths, batch, steps)
    if enforce_sorted:
        if numpy.any(numpy.diff(lengths) > 0):
            raise ValueError(f"{op}: lengths must be in decreasing order when enforce_sorted=True, got "
                             f"{lengths.tolist()}; pass enforce_sorted=False to sort them")
        sorted_indices = unsorted_indices = None
        order = numpy.arange(batch)
    else:
        order = numpy.argsort(-lengths, kind="stable")
        sorted_indices, unsorted_indices = order, numpy.argsort(order, kind="stable")
    batch_sizes = (lengths[None, :] > numpy.arange(int(lengths.max()))[:, None]).sum(axis=1).astype(numpy.int64)
    return PackedSequence(_pack(x, batch_sizes, order), batch_sizes, sorted_indices, unsorted_indices)


def _pack(x: Tensor, batch_sizes: numpy.ndarray, order: numpy.ndarray) -> Tensor:
    """The packed rows of the time-major ``x`` (original batch order) for the given layout."""
    batch = x.shape[1]
    index = numpy.concatenate([t * batch + order[:n] for t, n in enumerate(batch_sizes.tolist())])
    flat = x.reshape(x.shape[0] * batch, *x.shape[2:])
    return F.getitem(flat, x.xp.asarray(index))


def pack_sequence(sequences: Sequence[Any], enforce_sorted: bool = True) -> PackedSequence:
    """Pack a list of ``(L_i, *)`` sequences (``pad_sequence`` then ``pack_padded_sequence``)."""
    lengths = numpy.array([len(s) for s in sequences], dtype=numpy.int64)
    return pack_padded_sequence(pad_sequence(sequences), lengths, enforce_sorted=enforce_sorted)


def pad_packed_sequence(sequence: PackedSequence, batch_first: bool = False, padding_value: float = 0.0,
                        total_length: int | None = None) -> tuple[Tensor, numpy.ndarray]:
    """The padded batch ``(T, B, *)`` (or ``(B, T, *)``) and the lengths of a PackedSequence."""
    op = "pad_packed_sequence"
    if not isinstance(sequence, PackedSequence):
        raise TypeError(f"{op}: expected a PackedSequence, got {type(sequence).__name__}")
    batch_first = _check_flag(op, "batch_first", batch_first)
    padding_value = _check_padding(op, padding_value)
    data, sizes = sequence.data, numpy.asarray(sequence.batch_sizes, dtype=numpy.int64)
    steps, batch = len(sizes), int(sizes[0])
    if total_length is not None:
        if isinstance(total_length, bool) or not isinstance(total_length, numbers.Integral) or total_length < steps:
            raise ValueError(f"{op}: total_length must be an integer >= the longest sequence ({steps}), "
                             f"got {total_length!r}")
        steps = int(total_length)
    offsets = numpy.concatenate([[0], numpy.cumsum(sizes)[:-1]])
    slot = numpy.arange(batch) if sequence.unsorted_indices is None else numpy.asarray(sequence.unsorted_indices)
    t = numpy.arange(steps)[:, None]
    known = t < len(sizes)
    running = numpy.where(known, sizes[numpy.minimum(t, len(sizes) - 1)], 0)
    index = numpy.where(known & (slot[None, :] < running),
                        offsets[numpy.minimum(t, len(sizes) - 1)] + slot[None, :], data.shape[0])
    if batch_first:
        index = index.T
    shape = (index.shape[0], index.shape[1]) + tuple(data.shape[1:])
    return _gather_with_padding(data, index, shape, padding_value), sequence.lengths


def packed_forward(module: Any, packed: PackedSequence, hx: Any) -> tuple[PackedSequence, Any]:
    """Run a recurrent layer on a PackedSequence: padded + ``lengths=``, then pack the output."""
    padded, lengths = pad_packed_sequence(packed, batch_first=module.batch_first)
    y, state = module.forward(padded, hx, lengths=lengths)
    if module.batch_first:
        y = y.transpose(1, 0, 2)
    sizes = numpy.asarray(packed.batch_sizes, dtype=numpy.int64)
    order = numpy.arange(int(sizes[0])) if packed.sorted_indices is None else numpy.asarray(packed.sorted_indices)
    data = _pack(y[: len(sizes)], sizes, order)
    return packed._replace(data=data), state
