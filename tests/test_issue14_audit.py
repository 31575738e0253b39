"""Issue 14 ("nothing a file or an input can do to you"): the failures that the audit found still
open, each with a test here, plus where every other bullet of the issue is tested.

Already tested elsewhere (bullet -> test):
- zip bomb, peak RSS in a subprocess: test_io_bounded.py::test_zip_bomb_is_refused_before_decompressing,
  ::test_peak_memory_of_load_stays_within_twice_the_arrays; through the CLI:
  training/test_checkpoint_schema.py::test_a_zip_bomb_is_refused_by_evaluate_at_once
- duplicate / a0+a0.npy / non-.npy pickle members: test_io_bounded.py::test_duplicate_members_are_refused,
  ::test_same_name_with_and_without_npy_suffix, ::test_referenced_non_npy_member_holding_a_pickle
- metadata depth, raw __meta__, tree that is an array: test_io_bounded.py::test_metadata_nested_too_deep,
  ::test_raw_or_odd_meta_member, ::test_metadata_schema; save/load symmetry:
  ::test_save_refuses_what_is_not_a_dict, ::test_what_load_returns_saves_again_to_the_same
- load_state_dict: nn/test_validation.py::test_load_state_dict_refuses_non_mappings_and_bad_keys,
  ::test_load_state_dict_refuses_bad_values_naming_the_key (strings, datetime, complex, structured,
  list/None); strict=False named tuple: test_strict_false_returns_a_named_tuple below
- training-checkpoint fields through the CLI: training/test_checkpoint_schema.py::test_restore_names_the_bad_field,
  ::test_evaluate_shows_the_bad_field_as_one_line, ::test_train_resume_shows_the_bad_field_as_one_line
- dtype rule: nn/test_validation.py::test_every_layer_refuses_another_dtype; cross_entropy on integer logits:
  test_cross_entropy_refuses_integer_logits below
- autograd: test_autograd_engine.py::test_second_backward_through_a_freed_graph_says_how_to_keep_it,
  ::test_explicit_gradient_is_checked
- optimizers: test_optim.py::test_bad_hyperparameters_name_the_class_and_argument
- CLI data files, empty split, IDX overflow, --clip/--weight-decay NaN, NaN-stop cause, GPUNET_KERNELS /
  GPUNET_BACKEND: cli/test_strict_inputs.py (test_gz_that_is_not_gzip, test_truncated_gz_is_an_error_not_an_abort,
  test_empty_split_is_refused, test_idx_header_whose_size_overflows, test_non_finite_options_are_refused,
  test_nan_in_the_data_is_named_as_the_cause, test_divergence_is_named_as_the_cause,
  test_invalid_environment_variables_are_errors_naming_them, test_invalid_backend_variable_is_a_backend_error_naming_it)
- file mode and stale temp files: test_io.py::test_file_mode_follows_the_umask,
  ::test_temp_files_of_dead_writers_go_at_the_next_save_and_live_ones_stay
- hypothesis fuzz: property/test_property_io.py; the safetensors hole it found: test_damaged_checksum_key_* below
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import gpunet
import gpunet.functional as F
from gpunet import nn
from gpunet.data import DataLoader, TensorDataset
from gpunet.io import CheckpointError


# ----- tensor creation ----------------------------------------------------------------------
@pytest.mark.parametrize("make", [gpunet.Tensor, gpunet.tensor])
@pytest.mark.parametrize(("data", "fragment"), [
    (np.array([1, "a"], dtype=object), "object dtype"),
    (np.array([1.0, 2.0], dtype=object), "object dtype"),
    (np.array(["1.5", "2"]), "string dtype"),
    (["a", "b"], "string dtype"),
    (np.array([b"x"]), "bytes dtype"),
    (np.zeros(2, dtype=[("a", "f4")]), "structured/void dtype"),
])
def test_object_string_and_structured_data_are_refused_at_creation(make, data, fragment: str) -> None:
    name = "Tensor" if make is gpunet.Tensor else "tensor"
    with pytest.raises(gpunet.OpError, match=f"^{name}: expected numeric or bool data, got {fragment}"):
        make(data)


@pytest.mark.parametrize("make", [gpunet.Tensor, gpunet.tensor])
def test_ragged_lists_are_refused_naming_the_constructor(make) -> None:
    name = "Tensor" if make is gpunet.Tensor else "tensor"
    with pytest.raises(gpunet.OpError, match=f"^{name}: expected a rectangular nested list .* ragged or mixed list"):
        make([[1.0, 2.0], [3.0]])


def test_numbers_and_bools_still_make_tensors() -> None:
    assert gpunet.tensor([True, False]).dtype == np.bool_
    assert gpunet.Tensor(np.float32(2.0)).shape == ()
    assert gpunet.tensor([[1, 2], [3, 4]]).dtype.kind == "i"


# ----- ops ------------------------------------------------------------------------------------
@pytest.mark.parametrize("fast", [True, False])
@pytest.mark.parametrize("args", [(2,), (3, 1, 1)])
def test_max_pool2d_on_float16_works_on_every_numpy_implementation(fast: bool, args: tuple[int, ...]) -> None:
    data = np.random.default_rng(0).random((2, 3, 5, 5)).astype(np.float16)
    x = gpunet.Tensor(data, requires_grad=True)
    with gpunet.using(fast_paths=fast):
        y = F.max_pool2d(x, *args)
        y.sum().backward()
    with gpunet.using(fast_paths=False):
        ref = F.max_pool2d(gpunet.Tensor(data.astype(np.float32)), *args)
    assert y.dtype == np.float16 and x.grad.dtype == np.float16
    np.testing.assert_array_equal(y.numpy().astype(np.float32), ref.numpy())
    # every window passes one gradient to its maximum: the grads sum to the number of outputs
    assert float(x.grad.astype(np.float32).sum()) == y.numel()


@pytest.mark.parametrize("cls", [nn.RNN, nn.LSTM, nn.GRU])
@pytest.mark.parametrize(("batch_first", "shape"), [(True, (0, 5, 3)), (False, (5, 0, 3)), (False, (0, 2, 3))])
def test_recurrent_layers_refuse_an_empty_batch_or_sequence(cls, batch_first: bool, shape: tuple[int, ...]) -> None:
    layer = cls(3, 4, batch_first=batch_first)
    with pytest.raises(ValueError, match=f"^{cls.__name__}: expected input .* batch B >= 1 and a sequence length "
                                         r"T >= 1, got \(" + ", ".join(map(str, shape))):
        layer(gpunet.Tensor(np.zeros(shape, np.float32)))


def test_uint64_label_beyond_int64_is_reported_as_itself() -> None:
    with pytest.raises(gpunet.OpError, match="9223372036854775808") as info:
        F.cross_entropy(gpunet.Tensor(np.zeros((1, 3), np.float32)), gpunet.Tensor(np.array([2**63], np.uint64)))
    assert "-9223372036854775808" not in str(info.value)


def test_cross_entropy_refuses_integer_logits() -> None:
    with pytest.raises(gpunet.OpError, match="cross_entropy: expected a floating input"):
        F.cross_entropy(gpunet.Tensor(np.zeros((2, 3), np.int64)), gpunet.Tensor(np.array([0, 1])))


def test_conv_with_zero_output_channels_names_the_argument() -> None:
    with pytest.raises(ValueError, match="Conv2d: expected out_channels >= 1, got 0"):
        nn.Conv2d(1, 0, 3)
    with pytest.raises(gpunet.OpError, match=r"conv2d: expected output channels \(weight dim 0\) >= 1, got 0"):
        F.conv2d(gpunet.Tensor(np.zeros((1, 1, 8, 8), np.float32)), gpunet.Tensor(np.zeros((0, 1, 3, 3), np.float32)))


# ----- constructors ---------------------------------------------------------------------------
@pytest.mark.parametrize(("make", "message"), [
    (lambda: nn.Linear(3.5, 2), "Linear: expected in_features to be an integer >= 1, got float 3.5"),
    (lambda: nn.LSTM(3, 4, num_layers=1.5), "LSTM: expected num_layers to be an integer >= 1, got float 1.5"),
    (lambda: DataLoader(TensorDataset(gpunet.Tensor(np.zeros((4, 2), np.float32))), batch_size=2.5),
     r"DataLoader: batch_size must be an integer >= 1, got 2.5"),
])
def test_constructors_name_the_class_and_argument(make, message: str) -> None:
    with pytest.raises((TypeError, ValueError), match=message):
        make()


def test_strict_false_returns_a_named_tuple() -> None:
    layer = nn.Linear(3, 2)
    result = layer.load_state_dict({"weight": layer.state_dict()["weight"], "extra": np.zeros(1)}, strict=False)
    assert result.missing_keys == ["bias"] and result.unexpected_keys == ["extra"]
    assert tuple(result) == (["bias"], ["extra"])


# ----- the hole the checkpoint fuzz found ----------------------------------------------------
def _mangle(path: Path, old: bytes, new: bytes) -> None:
    raw = path.read_bytes()
    assert raw.count(old) == 1 and len(old) == len(new)
    path.write_bytes(raw.replace(old, new))


@pytest.mark.parametrize("key", [b"gpunet_crc32", b"gpunet_version"])
def test_damaged_checksum_key_does_not_make_an_unchecked_file(tmp_path: Path, key: bytes) -> None:
    path = tmp_path / "m.safetensors"
    gpunet.save({"fc.weight": np.arange(6, dtype=np.float32).reshape(2, 3), "fc.bias": np.ones(2)}, path)
    _mangle(path, b"gpunet_crc32", b"gpunet_crc22")
    if key == b"gpunet_version":
        _mangle(path, b"gpunet_version", b"gpunet_versiom")
    _mangle(path, b"fc.bias", b"fc.bhas")  # the altered content that used to load
    with pytest.raises(CheckpointError, match="gpunet_crc32.*missing from metadata that gpunet wrote"):
        gpunet.load(path)


def test_foreign_safetensors_without_a_checksum_still_load(tmp_path: Path) -> None:
    import json
    import struct

    header = json.dumps({"__metadata__": {"format": "pt"},
                         "w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}).encode()
    path = tmp_path / "foreign.safetensors"
    path.write_bytes(struct.pack("<Q", len(header)) + header + np.array([1.0, 2.0], np.float32).tobytes())
    np.testing.assert_array_equal(gpunet.load(path)["w"], [1.0, 2.0])
