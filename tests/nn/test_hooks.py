"""Forward hooks and pre-hooks with removable handles (PyTorch's API), and their users."""

from __future__ import annotations

import gc
import weakref

import numpy as np
import pytest

import gpunet
from gpunet import Tensor, nn
from gpunet.nn import module as module_mod
from gpunet.nn.module import RemovableHandle, register_module_forward_hook, register_module_forward_pre_hook
from gpunet.summary import format_table, layer_table
from gpunet.visualize import first_layer


def ones(*shape: int) -> Tensor:
    return gpunet.tensor(np.ones(shape, dtype=np.float32))


@pytest.fixture(autouse=True)
def _no_global_hooks_leak():
    """Every test leaves the process-wide hook tables as it found them (empty)."""
    assert not module_mod._global_forward_hooks and not module_mod._global_forward_pre_hooks
    yield
    assert not module_mod._global_forward_hooks and not module_mod._global_forward_pre_hooks


def test_forward_hooks_run_in_registration_order_after_forward(backend_name):
    layer = nn.Linear(2, 3)
    calls = []
    layer.register_forward_hook(lambda m, i, o: calls.append(("a", m, i, o.shape)))
    layer.register_forward_hook(lambda m, i, o: calls.append(("b", m, i, o.shape)))
    x = ones(4, 2)
    layer(x)
    assert [c[0] for c in calls] == ["a", "b"]
    assert all(c[1] is layer and c[2] == (x,) and c[3] == (4, 3) for c in calls)


def test_remove_unregisters_only_that_hook_and_is_idempotent():
    layer = nn.Linear(2, 3)
    calls = []
    first = layer.register_forward_hook(lambda m, i, o: calls.append("first"))
    layer.register_forward_hook(lambda m, i, o: calls.append("second"))
    assert isinstance(first, RemovableHandle)
    first.remove()
    first.remove()  # a second remove is a no-op
    layer(ones(1, 2))
    assert calls == ["second"]


def test_handle_is_a_context_manager():
    layer = nn.Linear(2, 3)
    calls = []
    with layer.register_forward_hook(lambda m, i, o: calls.append(1)) as handle:
        assert isinstance(handle, RemovableHandle)
        layer(ones(1, 2))
    layer(ones(1, 2))
    assert calls == [1]


def test_handle_removes_even_when_the_body_raises():
    layer = nn.Linear(2, 3)
    calls = []
    hook = layer.register_forward_hook(lambda m, i, o: calls.append(1))
    with pytest.raises(RuntimeError, match="boom"), hook:
        raise RuntimeError("boom")
    layer(ones(1, 2))
    assert calls == []


def test_hook_may_remove_itself_while_running():
    layer = nn.Linear(2, 3)
    calls = []

    def once(m, i, o):
        calls.append(1)
        handle.remove()

    handle = layer.register_forward_hook(once)
    layer(ones(1, 2))
    layer(ones(1, 2))
    assert calls == [1]


def test_forward_hook_may_replace_the_output_and_the_next_hook_sees_it(backend_name):
    layer = nn.Linear(2, 3)
    seen = []
    layer.register_forward_hook(lambda m, i, o: o * 0.0 + 5.0)
    layer.register_forward_hook(lambda m, i, o: seen.append(o.numpy().copy()))  # returns None: kept
    out = layer(ones(2, 2))
    np.testing.assert_array_equal(out.numpy(), np.full((2, 3), 5.0, np.float32))
    np.testing.assert_array_equal(seen[0], np.full((2, 3), 5.0, np.float32))


def test_replaced_output_flows_on_to_the_parent_and_into_backward():
    model = nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 1))
    model[0].register_forward_hook(lambda m, i, o: o * 0.0)  # zero the first layer's output
    out = model(ones(3, 2))
    np.testing.assert_allclose(out.numpy(), np.broadcast_to(model[2].bias.numpy(), (3, 1)))
    out.sum().backward()
    assert not model[0].weight.grad.any()  # the zeroing is part of the graph


def test_hooks_fire_on_children_only_where_registered():
    model = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    fired = []
    for name, child in model.named_modules():
        child.register_forward_hook(lambda m, i, o, name=name: fired.append(name))
    model(ones(1, 2))
    assert fired == ["0", "1", "2", ""]  # children finish first, the container last
    fired.clear()
    model[1].register_forward_hook(lambda m, i, o: fired.append("relu again"))
    model[2](ones(1, 3))
    assert fired == ["2"]


def test_pre_hooks_see_and_may_replace_the_inputs():
    layer = nn.Linear(2, 1)
    order = []
    layer.register_forward_pre_hook(lambda m, args: order.append(("pre", args[0].shape)))
    layer.register_forward_pre_hook(lambda m, args: args[0] * 0.0)  # one value: wrapped in a tuple
    layer.register_forward_pre_hook(lambda m, args: order.append(("after", float(args[0].numpy().sum()))))
    layer.register_forward_hook(lambda m, args, out: order.append(("hook", float(args[0].numpy().sum()))))
    out = layer(ones(4, 2))
    assert order == [("pre", (4, 2)), ("after", 0.0), ("hook", 0.0)]
    np.testing.assert_allclose(out.numpy(), np.broadcast_to(layer.bias.numpy(), (4, 1)))


def test_pre_hook_returning_a_tuple_replaces_all_positional_inputs():
    class Add(nn.Module):
        def forward(self, a, b):
            return a + b

    add = Add()
    with add.register_forward_pre_hook(lambda m, args: (args[1], args[1])):
        assert add(ones(1) * 1.0, ones(1) * 2.0).item() == 4.0
    assert add(ones(1) * 1.0, ones(1) * 2.0).item() == 3.0


def test_global_hooks_see_every_module_and_run_before_the_modules_own():
    model = nn.Sequential(nn.Linear(2, 3), nn.Tanh())
    events = []
    model[0].register_forward_hook(lambda m, i, o: events.append("own"))
    model[0].register_forward_pre_hook(lambda m, i: events.append("own pre"))
    with register_module_forward_pre_hook(lambda m, i: events.append(f"global pre {type(m).__name__}")), \
            register_module_forward_hook(lambda m, i, o: events.append(f"global {type(m).__name__}")):
        model(ones(1, 2))
    assert events == ["global pre Sequential", "global pre Linear", "own pre", "global Linear", "own",
                      "global pre Tanh", "global Tanh", "global Sequential"]
    events.clear()
    model(ones(1, 2))
    assert events == ["own pre", "own"]


def test_hooks_are_kept_per_module_by_handle_id():
    a, b = nn.Linear(2, 2), nn.Linear(2, 2)
    h1 = a.register_forward_hook(lambda m, i, o: None)
    h2 = a.register_forward_hook(lambda m, i, o: None)
    assert h1.id != h2.id
    b.register_forward_hook(lambda m, i, o: None)
    assert list(a._forward_hooks) == [h1.id, h2.id] and len(b._forward_hooks) == 1
    h1.remove()
    assert list(a._forward_hooks) == [h2.id]


def test_a_handle_does_not_keep_its_module_alive():
    layer = nn.Linear(2, 2)
    handle = layer.register_forward_hook(lambda m, i, o: None)
    ref = weakref.ref(layer)
    del layer
    gc.collect()
    assert ref() is None
    handle.remove()  # harmless once the module is gone


def test_a_hook_must_be_callable():
    with pytest.raises(TypeError, match="callable"):
        nn.Linear(2, 2).register_forward_hook("not a function")


def test_parameters_without_recursion_are_the_modules_own():
    model = nn.Sequential(nn.Linear(2, 3))
    assert model.parameters(recurse=False) == []
    assert [n for n, _ in model[0].named_parameters(recurse=False)] == ["weight", "bias"]


# ----- users of the hooks: the layer table and the feature maps ------------------------------

def test_layer_table_rows_and_text_are_unchanged():
    gpunet.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 1))
    rows = layer_table(model, ones(2, 2))
    assert rows == [
        {"name": "0", "type": "Linear", "output": (2, 16), "params": 48, "layer": 1},
        {"name": "1", "type": "ReLU", "output": (2, 16), "params": 0, "layer": 0},
        {"name": "2", "type": "Linear", "output": (2, 1), "params": 17, "layer": 1},
    ]
    assert format_table(model, rows).splitlines() == [
        "layer                   type              output shape              params",
        "-" * 74,
        "0                       Linear            (2, 16)                       48",
        "1                       ReLU              (2, 16)                        0",
        "2                       Linear            (2, 1)                        17",
        "-" * 74,
        "total parameters: 65",
        "layers (input layer not counted): 2  -> deep (deep = hidden + output layers >= 2)",
    ]
    assert model.training  # back in training mode


def test_layer_table_leaves_no_hook_behind_when_the_forward_fails():
    class Broken(nn.Module):
        def forward(self, x):
            raise ValueError("broken forward")

    with pytest.raises(ValueError, match="broken forward"):
        layer_table(Broken(), ones(1))
    # the autouse fixture checks that the global hook table is empty again


def test_first_layer_maps_are_the_conv_output_and_no_hook_is_left():
    from gpunet.models.cnn import LeNet

    model = LeNet(num_classes=10, in_channels=1, input_size=8)
    image = np.random.default_rng(0).random((1, 8, 8), dtype=np.float32)
    filters, maps = first_layer(model, image)
    with gpunet.no_grad():
        direct = model.conv1(Tensor(image[None])).numpy()[0]
    np.testing.assert_array_equal(maps, direct)
    np.testing.assert_array_equal(filters, model.conv1.weight.numpy())
    assert not model.conv1._forward_hooks and model.training
