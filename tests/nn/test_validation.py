"""Issue 14 for the layers: load_state_dict validation, one dtype rule for every layer, and
validation of every constructor argument (errors name the class/key and the argument)."""

from __future__ import annotations

import datetime

import numpy as np
import pytest

import gpunet
from gpunet import nn


def test_load_state_dict_refuses_non_mappings_and_bad_keys():
    model = nn.Linear(2, 3)
    for bad in ([("weight", np.zeros((3, 2)))], None, 5, "weight"):
        with pytest.raises(TypeError, match="expected a mapping of name -> array"):
            model.load_state_dict(bad)
    with pytest.raises(TypeError, match="expected str keys, got 1"):
        model.load_state_dict({1: np.zeros(3)})


@pytest.mark.parametrize("value,message", [
    (np.array([["1.5", "2"]] * 3), "string dtype"),
    (np.zeros((3, 2), dtype="datetime64[s]"), "datetime64 dtype"),
    (np.zeros((3, 2), dtype="timedelta64[s]"), "timedelta64 dtype"),
    (np.zeros((3, 2), dtype=np.complex128), "complex dtype"),
    (np.zeros((3, 2), dtype=[("a", "f4")]), "structured dtype"),
    (np.zeros((3, 2), dtype=object), "object dtype"),
    (np.zeros((3, 2), dtype=np.int64), "expected a real floating array"),
    (np.zeros((3, 2), dtype=bool), "expected a real floating array"),
    ([[0.0, 0.0]] * 3, "expected an array or a tensor, got list"),
    (1.5, "expected an array or a tensor, got float"),
    (None, "expected an array or a tensor, got NoneType"),
    (datetime.datetime(2020, 1, 1), "expected an array or a tensor, got datetime"),
])
def test_load_state_dict_refuses_bad_values_naming_the_key(value, message):
    model = nn.Linear(2, 3)
    before = model.weight.numpy().copy(), model.bias.numpy().copy()
    with pytest.raises(TypeError, match=f"load_state_dict: weight: .*{message}"):
        model.load_state_dict({"bias": np.ones(3, np.float32), "weight": value})
    np.testing.assert_array_equal(model.weight.numpy(), before[0])  # nothing copied
    np.testing.assert_array_equal(model.bias.numpy(), before[1])


def test_load_state_dict_accepts_floats_of_any_precision_and_integer_buffers():
    model = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3))
    state = {k: np.asarray(v).astype(np.float16 if v.dtype.kind == "f" else np.int32)
             for k, v in model.state_dict().items()}
    assert model.load_state_dict(state) == ([], [])
    assert model[0].weight.dtype == np.float32 and model[1].num_batches_tracked.dtype == np.int64
    with pytest.raises(TypeError, match="1.num_batches_tracked: expected a integer array"):
        model.load_state_dict({**state, "1.num_batches_tracked": np.array(1.5)})
    with pytest.raises(ValueError, match=r"1.running_mean expected shape \(3,\), got \(4,\)"):
        model.load_state_dict({**state, "1.running_mean": np.zeros(4)})
    with pytest.raises(KeyError, match=r"missing \['1.running_var'\]"):
        model.load_state_dict({k: v for k, v in state.items() if k != "1.running_var"})
    result = model.load_state_dict({"0.weight": state["0.weight"], "junk": np.zeros(1)}, strict=False)
    assert result.missing_keys == [k for k in state if k != "0.weight"] and result.unexpected_keys == ["junk"]


def test_load_state_dict_round_trips_through_save_and_tensors(tmp_path):
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2))
    other = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2))
    other.load_state_dict({k: gpunet.Tensor(v) for k, v in model.state_dict().items()})
    for (k, a), b in zip(model.state_dict().items(), other.state_dict().values()):
        np.testing.assert_array_equal(a, b, err_msg=k)


# ----- one dtype rule for every layer -----------------------------------------------------------------
LAYERS = [
    ("Linear", lambda: nn.Linear(4, 2), (3, 4)),
    ("Conv2d", lambda: nn.Conv2d(1, 2, 3), (2, 1, 5, 5)),
    ("Conv1d", lambda: nn.Conv1d(1, 2, 3), (2, 1, 6)),
    ("RNN", lambda: nn.RNN(4, 3), (5, 2, 4)),
    ("LSTM", lambda: nn.LSTM(4, 3), (5, 2, 4)),
    ("GRU", lambda: nn.GRU(4, 3), (5, 2, 4)),
    ("LSTMCell", lambda: nn.LSTMCell(4, 3), (2, 4)),
    ("BatchNorm1d", lambda: nn.BatchNorm1d(4), (3, 4)),
    ("BatchNorm2d", lambda: nn.BatchNorm2d(1), (2, 1, 3, 3)),
    ("LayerNorm", lambda: nn.LayerNorm(4), (3, 4)),
]


@pytest.mark.parametrize("name,make,shape", LAYERS, ids=[row[0] for row in LAYERS])
@pytest.mark.parametrize("dtype", [np.float64, np.float16, np.int64, np.int32, np.bool_])
def test_every_layer_refuses_another_dtype(name, make, shape, dtype):
    layer = make()
    x = gpunet.Tensor(np.ones(shape, dtype=dtype))
    hint = "model.double()" if dtype == np.float64 else "x.float()"
    with pytest.raises(nn.LayerDtypeError, match=rf"{name}: expected .*float32.*got {np.dtype(dtype)}.*") as info:
        layer(x)
    assert hint in str(info.value)
    assert isinstance(info.value, TypeError) and isinstance(info.value, gpunet.OpError)
    layer(gpunet.Tensor(np.ones(shape, dtype=np.float32)))  # its own dtype works
    layer.double()(gpunet.Tensor(np.ones(shape, dtype=np.float64)))  # and after model.double()


@pytest.mark.parametrize("dtype", [object, "U3"])
def test_object_and_string_arrays_are_refused_before_any_layer_sees_them(dtype):
    with pytest.raises(gpunet.OpError, match="Tensor: expected numeric or bool data, got (object|string) dtype"):
        nn.Linear(2, 1)(gpunet.Tensor(np.array([["1", "2"]], dtype=dtype)))


def test_weightless_layers_take_any_float_but_not_integers():
    for layer in (nn.Dropout(0.2), nn.MaxPool2d(2), nn.AvgPool2d(2), nn.AdaptiveAvgPool2d(1)):
        layer(gpunet.Tensor(np.ones((1, 1, 4, 4), dtype=np.float64)))
        with pytest.raises(nn.LayerDtypeError, match=f"{type(layer).__name__}: expected floating input"):
            layer(gpunet.Tensor(np.ones((1, 1, 4, 4), dtype=np.int64)))


def test_embedding_ids_must_be_integers():
    emb = nn.Embedding(5, 2)
    assert emb(gpunet.Tensor(np.array([1, 2], dtype=np.int32))).shape == (2, 2)
    for bad in (np.array([1.0]), np.array([True])):
        with pytest.raises(nn.LayerDtypeError, match="Embedding: expected integer token ids"):
            emb(gpunet.Tensor(bad))


def test_functional_linear_refuses_mixed_dtypes():
    with pytest.raises(gpunet.OpError, match="linear: expected input and bias of the weight's dtype float32"):
        gpunet.functional.linear(gpunet.Tensor(np.ones((1, 2))), gpunet.Tensor(np.ones((1, 2), np.float32)),
                                 gpunet.Tensor(np.ones(1, np.float32)))


# ----- every constructor ------------------------------------------------------------------------------
CONSTRUCTORS = [
    (lambda: nn.Linear(3.5, 2), TypeError, "Linear: expected in_features to be an integer"),
    (lambda: nn.Linear(3, 0), ValueError, "Linear: expected out_features >= 1"),
    (lambda: nn.Linear(True, 2), TypeError, "Linear: expected in_features"),
    (lambda: nn.Linear(2, 2, bias="yes"), TypeError, "Linear: expected bias to be True or False"),
    (lambda: nn.LSTM(2, 3, num_layers=1.5), TypeError, "LSTM: expected num_layers to be an integer"),
    (lambda: nn.GRU(0, 3), ValueError, "GRU: expected input_size >= 1"),
    (lambda: nn.RNN(2, 3, dropout=1.0), ValueError, r"RNN: expected dropout in \[0, 1\)"),
    (lambda: nn.RNNCell(2, 2.0), TypeError, "RNNCell: expected hidden_size to be an integer"),
    (lambda: nn.Conv2d(1, 0, 3), ValueError, "Conv2d: expected out_channels >= 1"),
    (lambda: nn.Conv2d(1.0, 2, 3), TypeError, "Conv2d: expected in_channels to be an integer"),
    (lambda: nn.Conv1d(1, 2, 0), ValueError, "Conv1d: expected kernel_size >= 1"),
    (lambda: nn.Conv1d(1, 2, 3, padding=-1), ValueError, "Conv1d: expected padding >= 0"),
    (lambda: nn.MaxPool2d(0), ValueError, "MaxPool2d: expected kernel_size >= 1"),
    (lambda: nn.AvgPool2d(2, stride=1.5), ValueError, "AvgPool2d: expected stride as an int"),
    (lambda: nn.AdaptiveAvgPool2d(0), ValueError, "AdaptiveAvgPool2d: expected output_size"),
    (lambda: nn.Embedding(10, 2.5), TypeError, "Embedding: expected embedding_dim to be an integer"),
    (lambda: nn.Embedding(10, 2, padding_idx=1.0), TypeError, "Embedding: expected padding_idx"),
    (lambda: nn.BatchNorm1d(0), ValueError, "BatchNorm1d: expected num_features >= 1"),
    (lambda: nn.BatchNorm2d(3, eps=0), ValueError, "BatchNorm2d: expected eps > 0"),
    (lambda: nn.BatchNorm2d(3, momentum=float("nan")), ValueError, "BatchNorm2d: expected momentum to be finite"),
    (lambda: nn.BatchNorm1d(3, momentum=1.5), ValueError, r"BatchNorm1d: expected momentum in \[0, 1\]"),
    (lambda: nn.LayerNorm(0), ValueError, "LayerNorm: expected normalized_shape"),
    (lambda: nn.LayerNorm(3, eps=-1), ValueError, "LayerNorm: expected eps > 0"),
    (lambda: nn.Dropout(1.0), ValueError, r"Dropout: expected p in \[0, 1\)"),
    (lambda: nn.Dropout(-0.1), ValueError, r"Dropout: expected p in \[0, 1\)"),
    (lambda: nn.Dropout("0.5"), TypeError, "Dropout: expected p to be a real number"),
    (lambda: nn.LeakyReLU("x"), TypeError, "LeakyReLU: expected negative_slope"),
    (lambda: nn.GELU("fast"), ValueError, "GELU: expected approximate"),
    (lambda: nn.Softmax(1.5), TypeError, "Softmax: expected dim"),
    (lambda: nn.CrossEntropyLoss(label_smoothing=2), ValueError, r"CrossEntropyLoss: expected label_smoothing"),
    (lambda: nn.NLLLoss(ignore_index=1.5), TypeError, "NLLLoss: expected ignore_index"),
    (lambda: nn.BCELoss(weight=np.array(["a"])), TypeError, "BCELoss: expected weight"),
    (lambda: nn.MLP([2, 2.5, 1]), TypeError, r"MLP: expected sizes\[1\] to be an integer"),
    (lambda: nn.Perceptron(0), ValueError, "Linear: expected in_features >= 1"),
]


@pytest.mark.parametrize("make,error,message", CONSTRUCTORS, ids=[c[2].split(":")[0] + str(i)
                                                                  for i, c in enumerate(CONSTRUCTORS)])
def test_constructors_validate_their_arguments(make, error, message):
    with pytest.raises(error, match=message):
        make()


def test_numpy_integers_are_valid_sizes():
    assert nn.Linear(np.int64(3), np.int32(2)).weight.shape == (2, 3)
