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
