"""The NumPy fast path (``numpy-fast``) of ``sgd_step``: one numba pass per parameter.

The reference (:func:`gpunet.ops.fused.sgd_step`) makes two to six whole-array passes and
allocates ``lr * d`` (and ``weight_decay * p``, ``momentum * buf``) every step; here each element
is read and written once, in the parameter's dtype with the reference's operation order (the
scalars are cast to that dtype first, as NumPy does with a Python float). Large parameters run
the ``parallel=True`` compilation when more than one thread is set
(:func:`gpunet.ops.regions_cpu.run_sized`). Other dtypes, mixed dtypes and non-contiguous
arrays run the reference.
"""

from __future__ import annotations

from typing import Any

import numba
import numpy

from gpunet import settings
from gpunet.ops import fused
from gpunet.ops.regions_cpu import run_sized

Array = Any
settings.apply_threads()  # before numba's pool starts: see gpunet.parallel


@numba.njit(parallel=True, cache=True, nogil=True)
def sgd_update(p, g, buf, lr, momentum, keep, weight_decay, nesterov, maximize, first):  # pragma: no cover
    """Flat ``p``, ``g`` (and ``buf`` when ``momentum``): ``d = ±g + wd p``; ``buf = d`` (``first``)
    or ``momentum buf + keep d``; ``d = d + momentum buf`` (Nesterov) or ``buf``; ``p -= lr d``."""
    for k in numba.prange(p.shape[0]):
        d = -g[k] if maximize else g[k]
        if weight_decay != 0:
            d = d + weight_decay * p[k]
        if momentum != 0:
            b = d if first else buf[k] * momentum + keep * d
            buf[k] = b
            d = d + momentum * b if nesterov else b
        p[k] = p[k] - lr * d


def _fits(p: Array, grad: Array, buf: Array | None) -> bool:
    """float32/float64 NumPy arrays of one dtype and shape, all C-contiguous."""
    ndarray, dtype, shape = numpy.ndarray, p.dtype, p.shape
    for a in (p, grad) if buf is None else (p, grad, buf):
        if type(a) is not ndarray or a.dtype is not dtype and a.dtype != dtype or a.shape != shape \
                or not a.flags.c_contiguous:
            return False
    return dtype.char in "fd"  # float32, float64


def sgd_step(p: Array, grad: Array, buf: Array | None, lr: float, momentum: float, dampening: float,
             weight_decay: float, nesterov: bool, maximize: bool) -> Array | None:
    """:func:`gpunet.ops.fused.sgd_step` in one pass (``p`` updated in place; returns ``buf``)."""
    if not _fits(p, grad, buf):
        return fused.sgd_step(p, grad, buf, lr, momentum, dampening, weight_decay, nesterov, maximize)
    cast = p.dtype.type
    first = bool(momentum) and buf is None
    if first:
        buf = numpy.empty_like(p)
    flat_buf = buf.reshape(-1) if buf is not None else p.reshape(-1)[:0]
    run_sized(sgd_update, p.size, p.reshape(-1), grad.reshape(-1), flat_buf, cast(lr), cast(momentum),
              cast(1 - dampening), cast(weight_decay), bool(nesterov), bool(maximize), first)
    return buf
