"""Checkpoint round trip over generated nested structures of arrays and JSON values."""

from __future__ import annotations

import math
import tempfile
from pathlib import Path
from typing import Any

import numpy
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from property_strategies import SETTINGS

from gpunet import io

dtypes = st.one_of(hnp.boolean_dtypes(), hnp.integer_dtypes(), hnp.unsigned_integer_dtypes(),
                   hnp.floating_dtypes(), hnp.complex_number_dtypes(), hnp.datetime64_dtypes(),
                   hnp.unicode_string_dtypes(max_len=4), hnp.byte_string_dtypes(max_len=4))
array_values = hnp.arrays(dtypes, hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=3))
scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**130), 2**130), st.floats(width=64), st.text(max_size=8))
keys = st.text(max_size=6).filter(lambda k: k != "__array__")
trees = st.recursive(st.one_of(scalars, array_values),
                     lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(keys, inner, max_size=3)),
                     max_leaves=8)


def same(a: Any, b: Any) -> bool:
    if isinstance(a, dict):
        return isinstance(b, dict) and list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, numpy.ndarray):
        return (isinstance(b, numpy.ndarray) and a.dtype == b.dtype and a.shape == b.shape
                and numpy.array_equal(a, b, equal_nan=a.dtype.kind in "fcmM"))
    if isinstance(a, float) and math.isnan(a):
        return isinstance(b, float) and math.isnan(b)
    return type(a) is type(b) and a == b


@SETTINGS
@given(tree=st.dictionaries(keys, trees, max_size=4))
def test_round_trip_of_any_tree(tree: dict[str, Any]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "ck.npz"
        io.save(tree, path)
        back = io.load(path)
    assert same(tree, back)


# ----- fuzz: mutated real files and crafted members load exactly what was saved, or are refused ------
FUZZ = settings(SETTINGS, max_examples=200)
SAVED = {"model": {"fc.weight": numpy.arange(6, dtype=numpy.float32).reshape(2, 3), "fc.bias": numpy.ones(2)},
         "optimizer": {"steps": 3, "state": [{"m": numpy.zeros(2)}]}, "epoch": 1, "name": "mlp"}
mutations = st.lists(st.tuples(st.sampled_from(["flip", "set", "cut", "insert", "delete"]),
                               st.floats(0.0, 1.0, exclude_max=True), st.integers(0, 255)), min_size=1, max_size=4)


def mutate(raw: bytes, edits: list[tuple[str, float, int]]) -> bytes:
    data = bytearray(raw)
    for kind, where, value in edits:
        at = int(where * len(data)) if data else 0
        if kind == "flip" and data:
            data[at] ^= 1 << (value % 8)
        elif kind == "set" and data:
            data[at] = value
        elif kind == "cut":
            del data[at:]
        elif kind == "insert":
            data[at:at] = bytes([value]) * (1 + value % 7)
        elif kind == "delete" and data:
            del data[at:at + 1 + value % 7]
    return bytes(data)


def loads_same_or_refused(path: Path, expected: dict[str, Any]) -> None:
    try:
        back = io.load(path)
    except io.CheckpointError:
        return
    assert same(expected, back), "a damaged file loaded with altered content"


@FUZZ
@given(edits=mutations, suffix=st.sampled_from([".npz", ".safetensors"]))
def test_mutated_checkpoints_load_exactly_or_are_refused(edits: list[tuple[str, float, int]], suffix: str) -> None:
    expected = SAVED if suffix == ".npz" else SAVED["model"]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"ck{suffix}"
        io.save(expected, path)
        path.write_bytes(mutate(path.read_bytes(), edits))
        loads_same_or_refused(path, expected)


json_scalars = st.one_of(st.none(), st.booleans(), st.integers(-5, 2**70), st.floats(), st.text(max_size=4))
json_values = st.recursive(json_scalars,
                           lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                   st.dictionaries(st.sampled_from(["__array__", "a", "tree", "w",
                                                                                    "shape", "nbytes"]), inner,
                                                                   max_size=3)), max_leaves=10)
def npy_bytes_of(array: numpy.ndarray) -> bytes:
    import io as pyio

    buffer = pyio.BytesIO()
    numpy.save(buffer, array)
    return buffer.getvalue()


member_names = st.sampled_from(["__meta__.npy", "w.npy", "w", "a0.npy", "model/fc.weight.npy", "x.txt"])
member_data = st.one_of(st.binary(max_size=64), st.sampled_from([npy_bytes_of(numpy.arange(3.0)),
                                                                 npy_bytes_of(numpy.arange(4, dtype=numpy.uint8))]))


@FUZZ
@given(meta=st.one_of(json_values, st.fixed_dictionaries(
           {"format": st.just(io.FORMAT), "format_version": st.sampled_from([1, 2, 3, True]),
            "gpunet_version": st.one_of(st.none(), st.text(max_size=3)), "tree": json_values},
           optional={"arrays": json_values})),
       members=st.lists(st.tuples(member_names, member_data), max_size=4),
       compressed=st.booleans())
def test_crafted_archives_never_crash_the_loader(meta: Any, members: list[tuple[str, bytes]], compressed: bool) -> None:
    import json
    import warnings
    import zipfile

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "crafted.npz"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED if compressed else zipfile.ZIP_STORED) as archive:
                archive.writestr("__meta__.npy", npy_bytes_of(numpy.frombuffer(json.dumps(meta).encode(), numpy.uint8)))
                for name, data in members:
                    archive.writestr(name, data)
        try:
            back = io.load(path)
        except io.CheckpointError:
            return
        assert isinstance(back, dict)  # whatever loads is a dict of the schema's values
        io.save(back, Path(folder) / "again.npz")  # and saves again
        assert same(back, io.load(Path(folder) / "again.npz"))
