"""The ``recurrent`` (training) and ``recurrent_inference`` loop objects on every implementation,
against the reference loop (gpunet/ops/recurrent.py), saved-buffer layout included, on
cases.RECURRENT_CASES (finished rows, reverse, no bias, both nonlinearities)."""

from __future__ import annotations

import cases
import pytest


@pytest.mark.ops("recurrent", cases=cases.RECURRENT_CASES)
def test_recurrent_loop(impl, case, dtype):
    cases.check_recurrent(impl.op("recurrent"), case, dtype, impl.put, impl.get)


@pytest.mark.ops("recurrent_inference", cases=cases.RECURRENT_CASES)
def test_recurrent_inference(impl, case, dtype):
    cases.check_recurrent_inference(impl.op("recurrent_inference"), case, dtype, impl.put, impl.get)


@pytest.mark.parametrize("threads", [2, 3])
@pytest.mark.ops("recurrent", cases=cases.RECURRENT_CASES, impls=("numpy-fast",))
def test_recurrent_loop_with_the_rows_split_over_threads(impl, case, dtype, threads, monkeypatch):
    """The fast loops with the batch rows split (parts of one row, uneven parts, finished rows
    in every part) equal the reference, forward and backward."""
    import numba

    import gpunet
    from gpunet.ops import sequence_cpu

    monkeypatch.setattr(sequence_cpu, "SPLIT_MIN", 0)
    threads = min(threads, numba.config.NUMBA_NUM_THREADS)
    with gpunet.using(threads=threads):
        assert sequence_cpu.parts_for(case.batch, 1) == min(threads, case.batch)
        cases.check_recurrent(impl.op("recurrent"), case, dtype, impl.put, impl.get)
