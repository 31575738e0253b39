"""The thread count (BLAS and the numba kernels together) while training."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from gpunet.training.errors import UsageError


@contextlib.contextmanager
def blas_threads(threads: int | None) -> Iterator[None]:
    """Use ``threads`` threads for BLAS and the numba kernels for the duration (the ``threads``
    setting, :mod:`gpunet.parallel`); no-op when ``threads`` is None (the default: every core
    this process may use)."""
    if threads is None:
        yield
        return
    try:
        import threadpoolctl  # noqa: F401  (a dependency; a broken install gets a clear message)
    except ImportError as exc:
        raise UsageError("--threads needs threadpoolctl: pip install threadpoolctl") from exc
    from gpunet import settings

    with settings.using(threads=threads):
        yield
