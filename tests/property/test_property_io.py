"""Checkpoint round trip over generated nested structures of arrays and JSON values."""

from __future__ import annotations

import math
import tempfile
from pathlib import Path
from typing import Any

import numpy
from hypothesis import given
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
