"""Learning-rate schedules of the training loop."""

from __future__ import annotations

import math

import pytest

from gpunet.training import Settings


def test_constant_schedule_keeps_the_rate():
    s = Settings(epochs=5, batch_size=8, lr=0.1, optimizer="sgd")
    assert [s.lr_at(e) for e in range(5)] == [0.1] * 5


def test_cosine_schedule_starts_at_lr_and_decays_to_zero():
    s = Settings(epochs=4, batch_size=8, lr=0.2, optimizer="sgd", schedule="cosine")
    rates = [s.lr_at(e) for e in range(5)]
    assert rates[0] == pytest.approx(0.2)
    assert rates[2] == pytest.approx(0.1)
    assert rates[4] == pytest.approx(0.0, abs=1e-12)
    assert all(a > b for a, b in zip(rates, rates[1:]))
    assert rates[1] == pytest.approx(0.2 * 0.5 * (1 + math.cos(math.pi / 4)))


def test_unknown_schedule_is_refused():
    with pytest.raises(ValueError, match="schedule: expected 'constant' or 'cosine'"):
        Settings(epochs=1, batch_size=1, lr=0.1, optimizer="sgd", schedule="step").lr_at(0)
