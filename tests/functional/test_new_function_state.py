"""The explicit Function state contract (tests/test_autograd.py) for issue 12's new Functions:
no state outside save_for_backward, nothing kept when not recording."""

from __future__ import annotations

import numpy as np
import pytest

import gpunet
from gpunet import Tensor
from gpunet.functional import activation, adaptive, loss, norm, regularization, sparse

RNG = np.random.default_rng(0)
X34 = RNG.standard_normal((3, 4))
BITS = (RNG.random((3, 4)) > 0.5) * 1.0
FUNCTIONS = {
    "gelu": (activation.GELU, [X34]), "gelu_tanh": (lambda: activation.GELU("tanh"), [X34]),
    "leaky_relu": (lambda: activation.LeakyReLU(0.1), [X34]),
    "l1": (loss.L1Loss, [X34, BITS]), "mse_sum": (lambda: loss.MSELoss("sum"), [X34, BITS]),
    "bce": (loss.BCELoss, [np.clip(np.abs(X34), 0.01, 0.99), BITS]),
    "bce_logits": (lambda: loss.BCEWithLogits("none", None, np.ones(4)), [X34, BITS]),
    "nll": (lambda: loss.NLLLoss(None, -100, "mean", 0.0), [X34, np.array([0, 3, 1])]),
    "cross_entropy": (lambda: loss.CrossEntropyLoss(np.ones(4), 1, "sum", 0.1), [X34, np.array([0, 3, 1])]),
    "batch_norm": (lambda: norm.BatchNorm(True, 1e-5, np.zeros(4), np.ones(4), True, True),
                   [X34, np.ones(4), np.zeros(4)]),
    "batch_norm_eval": (lambda: norm.BatchNorm(False, 1e-5, np.zeros(4), np.ones(4)), [X34]),
    "layer_norm": (lambda: norm.LayerNorm((4,), 1e-5, True, False), [X34, np.ones(4)]),
    "dropout": (lambda: regularization.Dropout(np.full((3, 4), 2.0)), [X34]),
    "embedding": (lambda: sparse.EmbeddingLookup(np.array([[1, 0], [2, 2]])), [X34]),
    "adaptive": (lambda: adaptive.AdaptiveAvgPool2d((2, 3)), [RNG.standard_normal((1, 1, 5, 4))]),
}
ENGINE = {"xp", "recording", "needs_input_grad", "_saved"}


def call(name, requires_grad):
    factory, arrays = FUNCTIONS[name]
    func = factory()
    tensors = [Tensor(a.copy(), requires_grad=requires_grad and a.dtype.kind == "f") for a in arrays]
    return func, func(*tensors)


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_inference_forward_keeps_nothing(name):
    with gpunet.no_grad():
        func, y = call(name, requires_grad=True)
    assert func._saved == () and not func.recording and y.creator is None
    assert set(vars(func)) - set(vars(FUNCTIONS[name][0]())) <= ENGINE


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_recording_forward_keeps_state_in_saved_only_and_backward_runs(name):
    func, y = call(name, requires_grad=True)
    assert func.recording
    assert set(vars(func)) - set(vars(FUNCTIONS[name][0]())) <= ENGINE | {"inputs", "outputs", "output_specs",
                                                                       "input_versions"}
    y.sum().backward()
    with pytest.raises(gpunet.OpError, match="already freed"):
        _ = func.saved
