"""Optimizers against their update formulas; clipping; state round trip."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gpunet import optim
from gpunet.nn import Parameter


def param(values):
    return Parameter(np.asarray(values, dtype=np.float64))


def test_sgd_momentum_weight_decay_follow_pytorchs_form():
    p = param([1.0, -2.0])
    opt = optim.SGD([p], lr=0.1, momentum=0.9, weight_decay=0.01)
    v = np.zeros(2)
    w = p.data.copy()
    for g in ([0.5, 0.5], [1.0, -1.0], [0.0, 2.0]):
        p.grad = np.array(g)
        opt.step()
        d = np.array(g) + 0.01 * w
        v = d if not v.any() else 0.9 * v + d
        w = w - 0.1 * v
        np.testing.assert_allclose(p.data, w)


def test_adam_matches_the_paper():
    p = param([0.5])
    opt = optim.Adam([p], lr=0.01)
    m = v = 0.0
    w = 0.5
    for t, g in enumerate([0.3, -0.1, 0.7], start=1):
        p.grad = np.array([g])
        opt.step()
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g * g
        w -= 0.01 * (m / (1 - 0.9 ** t)) / (math.sqrt(v / (1 - 0.999 ** t)) + 1e-8)
        assert p.data[0] == pytest.approx(w, rel=1e-9)


def test_clip_grad_norm_scales_to_max_norm():
    a, b = param([0.0, 0.0]), param([0.0])
    a.grad, b.grad = np.array([3.0, 0.0]), np.array([4.0])
    assert optim.clip_grad_norm([a, b], 1.0) == pytest.approx(5.0)
    total = math.sqrt((a.grad ** 2).sum() + (b.grad ** 2).sum())
    assert total == pytest.approx(1.0, rel=1e-5)
    assert optim.clip_grad_norm([a, b], 10.0) == pytest.approx(1.0, rel=1e-5)  # no change below max


def test_state_dict_round_trip_gives_identical_updates():
    p1, p2 = param([1.0, 2.0]), param([1.0, 2.0])
    o1 = optim.Adam([p1], lr=0.1)
    p1.grad = np.array([0.1, -0.2])
    o1.step()
    p2.data = p1.data.copy()
    o2 = optim.Adam([p2], lr=0.1)
    o2.load_state_dict(o1.state_dict())
    for o, p in ((o1, p1), (o2, p2)):
        p.grad = np.array([0.3, 0.4])
        o.step()
    np.testing.assert_array_equal(p1.data, p2.data)


def test_bad_hyperparameters_and_mismatched_state():
    with pytest.raises(ValueError, match="SGD: expected lr > 0"):
        optim.SGD([param([1.0])], lr=-1)
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.Adam([])
    with pytest.raises(ValueError, match="load_state_dict"):
        optim.SGD([param([1.0])]).load_state_dict(optim.Adam([param([1.0])]).state_dict())
