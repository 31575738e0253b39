"""The backward engine: order, accumulation, broadcasting, no_grad, graph release, Function state."""

from __future__ import annotations

import gc
import weakref

import numpy as np
import pytest

import gpunet
from gpunet import Tensor
from gpunet import functional as F
from gpunet.autograd import Function
from gpunet.functional import activation, loss, math
from gpunet.functional.linear import Linear, LinearReLU
from gpunet.nn.embedding import EmbeddingLookup


def leaf(values, requires_grad=True):
    return Tensor(np.asarray(values, dtype=np.float64), requires_grad=requires_grad)


def test_diamond_graph_accumulates_in_topological_order():
    x = leaf(3.0)
    a = x * x          # 9, da/dx = 6
    b = a * 2.0        # 18
    c = a + x          # 12
    y = b * c          # 216; dy/dx = c*2*6 + b*(6+1) = 144 + 126 = 270
    y.backward()
    assert x.grad == pytest.approx(270.0)


def test_tensor_used_twice_gets_summed_gradient():
    x = leaf([1.0, 2.0])
    (x * x + x).sum().backward()
    np.testing.assert_allclose(x.grad, [3.0, 5.0])


def test_leaf_grads_accumulate_over_backward_calls_until_zeroed():
    x = leaf(2.0)
    (x * 3.0).backward()
    (x * 3.0).backward()
    assert x.grad == pytest.approx(6.0)
    x.zero_grad()
    assert x.grad is None


def test_broadcast_gradients_reduce_to_the_input_shape():
    x = leaf(np.ones((4, 3)))
    b = leaf(np.ones((1, 3)))
    s = leaf(2.0)
    ((x + b) * s).sum().backward()
    assert b.grad.shape == (1, 3) and np.allclose(b.grad, 8.0)
    assert s.grad.shape == () and s.grad == pytest.approx(24.0)


def test_no_grad_records_nothing():
    x = leaf(1.0)
    with gpunet.no_grad():
        y = x * 2.0
        assert not gpunet.is_grad_enabled()
    assert y.creator is None and not y.requires_grad
    assert gpunet.is_grad_enabled()


def test_graph_is_released_after_backward():
    x = leaf(np.ones(3))
    y = F.tanh(x * 2.0)
    func_ref = weakref.ref(y.creator)
    loss = y.sum()
    loss.backward()
    assert y.creator is None and loss.creator is None
    del loss, y
    gc.collect()
    assert func_ref() is None


def test_retain_graph_allows_a_second_backward():
    x = leaf(2.0)
    y = x * x
    y.backward(retain_graph=True)
    y.backward()
    assert x.grad == pytest.approx(8.0)


def test_backward_of_non_scalar_needs_a_gradient():
    x = leaf([1.0, 2.0])
    with pytest.raises(gpunet.OpError, match="one-element"):
        (x * 2.0).backward()
    (x * 2.0).backward(np.array([1.0, 10.0]))
    np.testing.assert_allclose(x.grad, [2.0, 20.0])


def test_python_scalars_keep_the_tensor_dtype():
    x = Tensor(np.ones(2, dtype=np.float32))
    assert (x * 2.5).dtype == np.float32
    assert (1.0 - x).dtype == np.float32
    assert (x / 3).dtype == np.float32


def test_inputs_not_requiring_grad_get_none():
    x = leaf([1.0, 2.0])
    c = leaf([3.0, 4.0], requires_grad=False)
    (x * c).sum().backward()
    assert c.grad is None
    np.testing.assert_allclose(x.grad, [3.0, 4.0])


def test_long_chain_does_not_recurse():
    x = leaf(1.0)
    y = x
    for _ in range(5000):
        y = y + 0.0
    y.backward()
    assert x.grad == pytest.approx(1.0)


def test_shape_error_names_the_op():
    with pytest.raises(gpunet.OpError, match=r"matmul: expected .*\(2, 3\) @ \(4, 5\)"):
        _ = leaf(np.ones((2, 3))) @ leaf(np.ones((4, 5)))
    with pytest.raises(gpunet.OpError, match="add: cannot apply to inputs of shapes"):
        _ = leaf(np.ones((2, 3))) + leaf(np.ones((4,)))


# ----- explicit Function state: save_for_backward / saved / needs_input_grad / release -----------

RNG = np.random.default_rng(0)
X34, Y34 = RNG.standard_normal((3, 4)), RNG.standard_normal((3, 4))
# (a fresh Function, its inputs) for every Function of math, activation, loss, linear, embedding
FUNCTIONS = {
    "add": (math.Add, [X34, Y34]), "sub": (math.Sub, [X34, Y34]), "mul": (math.Mul, [X34, Y34]),
    "div": (math.Div, [X34, np.abs(Y34) + 1]), "neg": (math.Neg, [X34]),
    "pow": (lambda: math.Pow(2.0), [X34]), "exp": (math.Exp, [X34]), "log": (math.Log, [np.abs(X34) + 1]),
    "abs": (math.Abs, [X34]), "cast": (lambda: math.Cast(np.float32), [X34]),
    "matmul": (math.MatMul, [X34, Y34.T]), "sum": (lambda: math.Sum(1, False), [X34]),
    "mean": (lambda: math.Mean(None, False), [X34]), "max": (lambda: math.Max(0, True), [X34]),
    "reshape": (lambda: math.Reshape((4, 3)), [X34]), "transpose": (lambda: math.Transpose((1, 0)), [X34]),
    "getitem": (lambda: math.GetItem(np.array([2, 0])), [X34]), "concat": (lambda: math.Concat(1), [X34, Y34]),
    "where": (lambda: math.Where(X34 > 0), [X34, Y34]),
    "identity": (activation.Identity, [X34]), "step": (activation.Step, [X34]),
    "sigmoid": (activation.Sigmoid, [X34]), "tanh": (activation.Tanh, [X34]), "relu": (activation.ReLU, [X34]),
    "softmax": (lambda: activation.Softmax(-1), [X34]), "log_softmax": (lambda: activation.LogSoftmax(1), [X34]),
    "mse": (loss.MSELoss, [X34, Y34]), "bce": (loss.BCEWithLogits, [X34, (Y34 > 0) * 1.0]),
    "cross_entropy": (loss.SoftmaxCrossEntropy, [X34, np.array([0, 3, 1])]),
    "perceptron": (loss.PerceptronCriterion, [X34, (Y34 > 0) * 1.0]),
    "linear": (Linear, [X34, RNG.standard_normal((5, 4)), RNG.standard_normal(5)]),
    "linear_relu": (LinearReLU, [X34, RNG.standard_normal((5, 4)), RNG.standard_normal(5)]),
    "embedding": (lambda: EmbeddingLookup(np.array([[1, 0], [2, 2]])), [X34]),
}
STATE_SET_BY_CALL = {"xp", "recording", "needs_input_grad", "_saved"}


def call(name, requires_grad):
    """A fresh Function of ``name`` applied to new tensors; returns (function, inputs, output)."""
    factory, arrays = FUNCTIONS[name]
    func = factory()
    tensors = [Tensor(a.copy(), requires_grad=requires_grad and a.dtype.kind == "f") for a in arrays]
    return func, tensors, func(*tensors)


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_inference_forward_keeps_nothing(name):
    with gpunet.no_grad():
        func, _, y = call(name, requires_grad=True)
    assert func._saved == () and not func.recording and y.creator is None
    assert not any(func.needs_input_grad)
    # no state outside save_for_backward: the call adds only the engine's own fields
    assert set(vars(func)) - set(vars(FUNCTIONS[name][0]())) <= STATE_SET_BY_CALL


@pytest.mark.parametrize("name", ["mul", "matmul", "tanh", "linear", "cross_entropy"])
def test_forward_without_inputs_requiring_grad_keeps_nothing(name):
    func, _, y = call(name, requires_grad=False)  # grad enabled, but nothing to differentiate
    assert func._saved == () and not func.recording and not y.requires_grad


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_recording_forward_keeps_its_state_in_saved_only(name):
    func, _, _ = call(name, requires_grad=True)
    assert func.recording
    assert set(vars(func)) - set(vars(FUNCTIONS[name][0]())) <= STATE_SET_BY_CALL | {"inputs", "outputs",
                                                                                     "output_specs", "input_versions"}


def test_needs_input_grad_follows_requires_grad_of_each_input():
    x, c = leaf(np.ones(3)), leaf(np.ones(3), requires_grad=False)
    assert (x * c).creator.needs_input_grad == (True, False)
    assert (c * x).creator.needs_input_grad == (False, True)
    assert (x * x).creator.needs_input_grad == (True, True)
    assert (x * 2.0).creator.needs_input_grad == (True, False)  # a Python scalar needs none
    func = math.Mul()
    with gpunet.no_grad():
        func(x, x)
    assert func.needs_input_grad == (False, False)


def test_gradients_of_inputs_that_need_none_are_not_computed():
    a, b = leaf(np.ones((2, 3)), requires_grad=False), leaf(np.ones((3, 4)))
    y = a @ b
    assert y.creator.saved[1] is None  # ga would need b: not kept
    ga, gb = y.creator.backward(np.ones((2, 4)))
    assert ga is None and gb.shape == (3, 4)
    x, w = leaf(np.ones((2, 3)), requires_grad=False), leaf(np.ones((5, 3)))
    out = F.linear(x, w)
    saved_x, saved_w, _impl, _state = out.creator.saved
    assert saved_x is x.data and saved_w is None  # w is not kept: gx is not needed
    assert out.creator.backward(np.ones((2, 5)))[0] is None


def test_saved_after_release_raises_the_freed_graph_error():
    x = leaf([1.0, 2.0])
    h = F.tanh(x)  # a non-leaf output the user keeps
    func = h.creator
    h.sum().backward()
    assert func._saved is None and h.creator is None
    with pytest.raises(gpunet.OpError, match="tanh: backward through a graph that was already freed; "
                                             r"call backward\(retain_graph=True\)"):
        func.backward(np.ones(2))


def test_second_backward_through_a_released_intermediate_raises():
    x = leaf([1.0, 2.0])
    h = F.tanh(x * 3.0)
    h.sum().backward()
    with pytest.raises(gpunet.OpError, match="was freed by an earlier backward.*retain_graph=True"):
        (h * 2.0).sum().backward()


def test_retain_graph_allows_two_backward_passes_through_saved_state():
    x = leaf([0.5, -1.0])
    h = F.tanh(x * x)  # Mul and Tanh both read saved values in backward
    loss = F.sum(h * h)
    loss.backward(retain_graph=True)
    first = x.grad.copy()
    assert h.creator is not None and h.creator.saved
    func = h.creator
    loss.backward()
    np.testing.assert_array_equal(x.grad, 2 * first)
    assert func._saved is None and h.creator is None  # released by the pass without retain_graph


def test_saved_arrays_are_dropped_after_backward_even_if_the_function_lives():
    gc.disable()  # reference counting alone must free them
    try:
        x = leaf(np.ones((2, 3)))
        a = x * 2.0                      # intermediate: Mul below saves its array
        h = F.relu(a * a)                # ReLU saves a mask nothing else holds
        func = h.creator                 # the user keeps the Function and the output
        mask = next(s for s in func.saved if isinstance(s, np.ndarray))  # saved: (implementation, mask)
        mask_ref = weakref.ref(mask)
        del mask
        a_ref = weakref.ref(a.data)
        del a
        h.sum().backward()
        assert mask_ref() is None and a_ref() is None
        assert isinstance(func, Function) and h.data.shape == (2, 3)
    finally:
        gc.enable()
