"""Limit NumPy's BLAS thread pool while training."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from gpunet.training.errors import UsageError


@contextlib.contextmanager
def blas_threads(threads: int | None) -> Iterator[None]:
    """Limit the BLAS thread pool for the duration (no-op when ``threads`` is None).

    Needs threadpoolctl; without it raises :class:`UsageError` saying how to install it.
    """
    if threads is None:
        yield
        return
    try:
        from threadpoolctl import threadpool_limits
    except ImportError as exc:
        raise UsageError("--threads needs threadpoolctl: pip install threadpoolctl") from exc
    with threadpool_limits(limits=threads, user_api="blas"):
        yield
