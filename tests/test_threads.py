"""The one threads setting drives BLAS (threadpoolctl) and numba together."""

from __future__ import annotations

import os

import numba
import pytest

import gpunet
from gpunet import parallel, settings


def test_default_is_the_cores_this_process_may_use() -> None:
    assert settings._initial().threads == len(os.sched_getaffinity(0)) == parallel.available_cores()


def test_set_num_threads_and_using_apply_to_blas_and_numba() -> None:
    pytest.importorskip("threadpoolctl")
    before = gpunet.get_num_threads()
    try:
        gpunet.set_num_threads(1)
        assert gpunet.get_num_threads() == 1 and numba.get_num_threads() == 1
        assert parallel.blas_threads() in (1, None)
        top = min(2, numba.config.NUMBA_NUM_THREADS)
        with gpunet.using(threads=top):
            assert gpunet.get_num_threads() == top and numba.get_num_threads() == top
            assert parallel.blas_threads() in (top, None)
        assert numba.get_num_threads() == 1 and parallel.blas_threads() in (1, None)
    finally:
        gpunet.set_num_threads(before)


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_bad_thread_counts_are_refused(bad) -> None:
    with pytest.raises(ValueError, match="threads"):
        gpunet.set_num_threads(bad)
