"""safetensors: gpunet's files load in the safetensors package (NumPy and PyTorch), theirs load in gpunet,
and damaged or hostile files are refused with CheckpointError naming the file and the field."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy
import pytest

import gpunet
from gpunet import io, nn
from gpunet.autograd import Tensor
from gpunet.io import CheckpointError

ALL_DTYPES = ["bool", "uint8", "int8", "uint16", "int16", "float16", "uint32", "int32", "float32", "uint64",
              "int64", "float64", "complex64"]


def state() -> dict[str, numpy.ndarray]:
    rng = numpy.random.default_rng(0)
    out = {f"layer.{d}": (rng.standard_normal((2, 3)) * 50).astype(d) for d in ALL_DTYPES}
    out["scalar"] = numpy.array(1.5, numpy.float32)
    out["empty"] = numpy.zeros((0, 4), numpy.float32)
    out["fortran"] = numpy.asfortranarray(numpy.arange(6.0).reshape(2, 3))
    out["big-endian"] = numpy.arange(4, dtype=">i4")
    out["tensor"] = Tensor(numpy.ones(3, numpy.float32))
    return out


def assert_same(expected: dict, got: dict) -> None:
    assert list(got) == list(expected)
    for name, value in expected.items():
        value = value.data if isinstance(value, Tensor) else value
        got_value = numpy.asarray(got[name])
        assert got_value.shape == value.shape and got_value.dtype == value.dtype.newbyteorder("="), name
        assert numpy.array_equal(got_value, value), name


def test_round_trip_through_gpunet(tmp_path: Path) -> None:
    obj = state()
    io.save(obj, tmp_path / "w.safetensors")
    back = io.load(tmp_path / "w.safetensors")
    assert_same(obj, back)
    assert all(type(v) is numpy.ndarray and v.flags.c_contiguous for v in back.values())
    meta = io.load_metadata(tmp_path / "w.safetensors")
    assert meta["format"] == "safetensors" and meta["metadata"]["gpunet_version"] == gpunet.__version__
    assert meta["tensors"]["layer.float32"] == {"dtype": "F32", "shape": [2, 3]}


def test_gpunet_files_load_in_the_safetensors_package(tmp_path: Path) -> None:
    numpy_api = pytest.importorskip("safetensors.numpy")
    obj = state()
    io.save(obj, tmp_path / "w.safetensors")
    theirs = numpy_api.load_file(str(tmp_path / "w.safetensors"))
    assert_same(obj, {k: theirs[k] for k in obj})


def test_gpunet_files_load_in_pytorch(tmp_path: Path) -> None:
    torch_api = pytest.importorskip("safetensors.torch")
    pytest.importorskip("torch")
    gpunet.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    io.save(net.state_dict(), tmp_path / "net.safetensors")
    theirs = torch_api.load_file(str(tmp_path / "net.safetensors"))
    assert list(theirs) == list(net.state_dict())  # named by the state_dict keys, PyTorch's names
    for name, value in net.state_dict().items():
        assert numpy.array_equal(theirs[name].numpy(), value), name


def test_files_written_by_the_safetensors_package_load_in_gpunet(tmp_path: Path) -> None:
    numpy_api = pytest.importorskip("safetensors.numpy")
    rng = numpy.random.default_rng(1)
    obj = {f"t.{d}": (rng.standard_normal((3, 2)) * 9).astype(d) for d in ALL_DTYPES}
    obj["zero-size"] = numpy.zeros((2, 0), numpy.int32)
    numpy_api.save_file(obj, str(tmp_path / "theirs.safetensors"), metadata={"format": "np"})
    back = io.load(tmp_path / "theirs.safetensors")
    assert back.keys() == obj.keys()
    for name, value in obj.items():
        assert back[name].dtype == value.dtype and numpy.array_equal(back[name], value), name
    assert io.load_metadata(tmp_path / "theirs.safetensors")["metadata"] == {"format": "np"}


def test_pytorch_files_load_bfloat16_as_exact_float32(tmp_path: Path) -> None:
    torch_api = pytest.importorskip("safetensors.torch")
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    tensors = {"w": torch.randn(4, 5, dtype=torch.bfloat16), "b": torch.randn(5), "i": torch.arange(3)}
    torch_api.save_file(tensors, str(tmp_path / "pt.safetensors"))
    back = io.load(tmp_path / "pt.safetensors")
    assert back["w"].dtype == numpy.float32
    assert numpy.array_equal(back["w"], tensors["w"].float().numpy())
    assert numpy.array_equal(back["b"], tensors["b"].numpy()) and numpy.array_equal(back["i"], tensors["i"].numpy())
    gpunet.manual_seed(0)
    net = nn.Linear(5, 4)
    torch_api.save_file({"weight": torch.randn(4, 5), "bias": torch.randn(4)}, str(tmp_path / "lin.safetensors"))
    net.load_state_dict(io.load(tmp_path / "lin.safetensors"))


@pytest.mark.parametrize("obj, message", [
    ({"a": {"nested": numpy.ones(1)}}, "holds only arrays"),
    ({"a": [1.0]}, "holds only arrays"),
    ({"a": 1.5}, "holds only arrays"),
    ({"a": numpy.array(["x"])}, "dtype <U1, which safetensors cannot hold"),
    ({"a": numpy.ones(1, numpy.complex128)}, "complex128"),
    ({"__metadata__": numpy.ones(1)}, "reserved"),
    ({1: numpy.ones(1)}, "string keys"),
    ([numpy.ones(1)], "mapping of names to arrays"),
])
def test_save_refuses_what_safetensors_cannot_hold(tmp_path: Path, obj: object, message: str) -> None:
    with pytest.raises(TypeError, match=message):
        io.save(obj, tmp_path / "x.safetensors")
    assert list(tmp_path.iterdir()) == []


# ----- hostile and damaged files --------------------------------------------------------------
def raw_file(path: Path, header: object, data: bytes = b"", length: int | None = None) -> Path:
    text = header if isinstance(header, bytes) else json.dumps(header).encode()
    path.write_bytes((len(text) if length is None else length).to_bytes(8, "little") + text + data)
    return path


def refused(path: Path, *fragments: str) -> None:
    for reader in (io.load, io.load_metadata):
        with pytest.raises(CheckpointError) as info:
            reader(path)
        for fragment in (str(path), *fragments):
            assert fragment in str(info.value), str(info.value)


F32 = {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}


@pytest.mark.parametrize("header, data, fragments", [
    ({"a": F32, "b": {**F32, "data_offsets": [4, 12]}}, bytes(12), ["('b'.data_offsets)", "no gaps or overlaps"]),
    ({"a": F32, "b": {**F32, "data_offsets": [16, 24]}}, bytes(24), ["'b'.data_offsets", "starts at 16"]),
    ({"a": F32}, bytes(12), ["(data)", "the tensors take 8 bytes, the file holds 12"]),
    ({"a": {**F32, "shape": [3]}}, bytes(8), ["'a'.data_offsets", "needs 12"]),
    ({"a": {**F32, "shape": [-2]}}, bytes(8), ["'a'.shape"]),
    ({"a": {**F32, "dtype": "F8_E4M3", "shape": [8]}}, bytes(8), ["'a'.dtype", "no NumPy equivalent"]),
    ({"a": {**F32, "dtype": "Q7"}}, bytes(8), ["'a'.dtype", "unknown dtype"]),
    ({"a": {**F32, "extra": 1}}, bytes(8), ["('a')"]),
    ({"a": F32, "__metadata__": {"k": 1}}, bytes(8), ["(__metadata__)"]),
    (b'{"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, "a": {"dtype": "F32", "shape": [2], '
     b'"data_offsets": [0, 8]}}', bytes(8), ["duplicate key 'a'"]),
    (b'{"a": [[[[[1]]]]]}', b"", ["(header)", "nests"]),
    (b'{"a": 1' + b" " * 4, b"", ["(header)", "not valid JSON"]),
])
def test_malformed_headers(tmp_path: Path, header: object, data: bytes, fragments: list[str]) -> None:
    refused(raw_file(tmp_path / "x.safetensors", header, data), *fragments)


def test_header_length_beyond_the_file_or_the_limit(tmp_path: Path) -> None:
    refused(raw_file(tmp_path / "x.safetensors", {"a": F32}, bytes(8), length=10**12), "not a gpunet checkpoint")
    path = tmp_path / "y.safetensors"
    path.write_bytes((200_000_000).to_bytes(8, "little") + b"{" + bytes(300))
    refused(path, "not a gpunet checkpoint")  # a length beyond the format's limit: not safetensors at all
    refused(raw_file(tmp_path / "z.safetensors", {"a": F32}, b"", length=1000), "(header)", "truncated")


def test_pickle_named_safetensors_is_not_unpickled(tmp_path: Path) -> None:
    path = tmp_path / "evil.safetensors"
    path.write_bytes(pickle.dumps({"w": [1.0]}))
    refused(path, "a pickle")


def test_every_truncation_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "w.safetensors"
    io.save({"a": numpy.arange(5, dtype=numpy.float32), "b": numpy.ones((2, 2))}, path)
    raw = path.read_bytes()
    for cut in range(len(raw)):
        path.write_bytes(raw[:cut])
        with pytest.raises(CheckpointError):
            io.load(path)


def test_every_flipped_byte_is_refused_or_harmless(tmp_path: Path) -> None:
    """gpunet's checksum covers names, shapes, dtypes and data; the rest of the metadata is not content."""
    path = tmp_path / "w.safetensors"
    obj = {"fc.weight": numpy.arange(6, dtype=numpy.float32).reshape(2, 3), "fc.bias": numpy.ones(2)}
    io.save(obj, path)
    raw, refusals = path.read_bytes(), 0
    for i in range(len(raw)):
        flipped = bytearray(raw)
        flipped[i] ^= 0xFF
        path.write_bytes(bytes(flipped))
        try:
            back = io.load(path)
        except CheckpointError:
            refusals += 1
            continue
        assert back.keys() == obj.keys(), f"byte {i}"
        assert all(numpy.array_equal(back[k], obj[k]) and back[k].dtype == obj[k].dtype for k in obj), f"byte {i}"
    assert refusals > len(raw) * 0.9


def test_checksum_mismatch_names_the_field(tmp_path: Path) -> None:
    path = tmp_path / "w.safetensors"
    io.save({"a": numpy.zeros(4, numpy.float32)}, path)
    raw = bytearray(path.read_bytes())
    raw[-1] ^= 1
    path.write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match=r"\(__metadata__.gpunet_crc32\): checksum mismatch"):
        io.load(path)
