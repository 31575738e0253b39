"""The six cell-step hot ops (saved buffers included) and the whole-sequence forwards on every
implementation, against the reference (gpunet/ops/cells.py), on cases.CELL_CASES / SEQUENCE_CASES."""

from __future__ import annotations

import cases
import numpy
import pytest

from gpunet.ops import catalog, cells


@pytest.mark.ops("rnn_step_forward", "rnn_step_backward", cases=cases.CELL_CASES)
@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_rnn_step(impl, case, nonlinearity, dtype):
    cases.check_rnn(impl, case.batch, case.hidden, nonlinearity, dtype, impl.put, impl.get)


@pytest.mark.ops("lstm_step_forward", "lstm_step_backward", cases=cases.CELL_CASES)
def test_lstm_step(impl, case, dtype):
    cases.check_lstm(impl, case.batch, case.hidden, dtype, impl.put, impl.get)


@pytest.mark.ops("gru_step_forward", "gru_step_backward", cases=cases.CELL_CASES)
def test_gru_step(impl, case, dtype):
    cases.check_gru(impl, case.batch, case.hidden, dtype, impl.put, impl.get)


@pytest.mark.ops(*catalog.SEQUENCE_OPS, cases=cases.SEQUENCE_CASES)
@pytest.mark.parametrize("cell", list(cases.SEQ_GATES))
def test_sequence_forward_is_the_step_loop(impl, case, cell, dtype):
    cases.check_sequence(impl, cell, case.steps, case.batch, case.hidden, dtype, impl.put, impl.get)


@pytest.mark.ops(*catalog.CELL_OPS)
def test_non_contiguous_inputs_are_copied(impl):
    rng = numpy.random.default_rng(1)
    xg = impl.put(rng.standard_normal((8, 4))).T                             # (4, 8) transposed
    args = (xg, xg, impl.put(numpy.zeros(8)), impl.put(numpy.ones((4, 8))), impl.put(numpy.array([1.0, 0, 1, 0])))
    want = cells.rnn_step_forward(*(impl.get(a) for a in args))
    cases.assert_close("rnn_step_forward", impl.get(impl["rnn_step_forward"](*args)), want, numpy.float64)
    h = impl.put(numpy.tanh(rng.standard_normal((3, 6))))[:, ::2]             # strided columns
    dh, mask = impl.put(rng.standard_normal((3, 3))), impl.put(numpy.array([1.0, 0, 1]))
    got = impl["rnn_step_backward"](h, dh, mask)
    want = cells.rnn_step_backward(impl.get(h), impl.get(dh), impl.get(mask))
    for k in range(3):
        cases.assert_close(f"rnn_step_backward[{k}]", impl.get(got[k]), want[k], numpy.float64)
