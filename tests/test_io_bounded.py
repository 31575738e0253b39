"""Checkpoint files as adversaries: bounded loading, one strict schema, save <-> load symmetry.

Each test crafts a file that went wrong on gpunet 0.1 (a zip bomb, duplicate or foreign members,
metadata too deep or too large, malformed references) and checks that ``load`` refuses it with a
``CheckpointError`` naming the file and the field, before reading the bytes it describes.
"""

from __future__ import annotations

import io as pyio
import json
import os
import pickle
import subprocess
import sys
import warnings
import zipfile
from pathlib import Path
from typing import Any

import numpy
import pytest

import gpunet
from gpunet import io, nn
from gpunet.io import CheckpointError, limits


def npy(array: numpy.ndarray) -> bytes:
    buffer = pyio.BytesIO()
    numpy.save(buffer, array, allow_pickle=array.dtype.hasobject)
    return buffer.getvalue()


def meta_npy(meta: Any) -> bytes:
    return npy(numpy.frombuffer(json.dumps(meta).encode(), dtype=numpy.uint8))


def meta_v2(tree: dict[str, Any], arrays: dict[str, numpy.ndarray]) -> dict[str, Any]:
    return {"format": io.FORMAT, "format_version": 2, "gpunet_version": "test",
            "arrays": {k: {"shape": list(a.shape), "nbytes": a.nbytes} for k, a in arrays.items()}, "tree": tree}


def write_zip(path: Path, members: list[tuple[str, bytes]], compression: int = zipfile.ZIP_STORED) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about duplicate names: wanted here
        with zipfile.ZipFile(path, "w", compression) as archive:
            for name, data in members:
                archive.writestr(name, data)
    return path


def refused(path: Path, *fragments: str) -> CheckpointError:
    """``load`` and ``load_metadata`` raise CheckpointError naming the file and each fragment."""
    for reader in (io.load, io.load_metadata):
        with pytest.raises(CheckpointError) as info:
            reader(path)
        message = str(info.value)
        assert str(path) in message and info.value.path is not None, message
        for fragment in fragments:
            assert fragment in message, f"{fragment!r} not in {message!r}"
    return info.value


W = numpy.arange(6, dtype=numpy.float32)


def good_members() -> list[tuple[str, bytes]]:
    return [("__meta__.npy", meta_npy(meta_v2({"w": {"__array__": "w"}}, {"w": W}))), ("w.npy", npy(W))]


def test_the_crafted_good_file_loads(tmp_path: Path) -> None:
    """The baseline every crafted file below departs from."""
    back = io.load(write_zip(tmp_path / "ok.npz", good_members()))
    assert back.keys() == {"w"} and numpy.array_equal(back["w"], W)


# ----- zip bombs ----------------------------------------------------------------------------
def write_bomb(path: Path, nbytes: int, referenced: bool = True, version: int = 2) -> Path:
    """A valid-looking member of ``nbytes`` zeros, deflated (about 1000:1)."""
    shape = (nbytes // 8,)
    buffer = pyio.BytesIO()
    numpy.lib.format.write_array_header_1_0(buffer, {"descr": "<f8", "fortran_order": False, "shape": shape})
    tree = {"w": {"__array__": "a0"}} if referenced else {"w": 1}
    meta = {"format": io.FORMAT, "format_version": version, "gpunet_version": "0", "tree": tree}
    if version == 2:
        meta["arrays"] = {"a0": {"shape": list(shape), "nbytes": nbytes}} if referenced else {}
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("__meta__.npy", meta_npy(meta))
        with archive.open("a0.npy", "w", force_zip64=True) as member:
            member.write(buffer.getvalue())
            chunk, left = bytes(2**22), nbytes
            while left:
                member.write(chunk[:min(left, len(chunk))])
                left -= min(left, len(chunk))
    return path


@pytest.mark.parametrize("referenced", [True, False])
@pytest.mark.parametrize("version", [1, 2])
def test_zip_bomb_is_refused_before_decompressing(tmp_path: Path, referenced: bool, version: int) -> None:
    path = write_bomb(tmp_path / "bomb.npz", 64 * 2**20, referenced, version)
    assert path.stat().st_size < 2**20
    refused(path, "(a0.npy)", "compression ratio limit of 100")


RSS_PROBE = """
import resource, sys, time
from gpunet import io
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    back = io.load(sys.argv[1])
    def size(v):
        return v.nbytes if hasattr(v, "nbytes") else sum(map(size, v.values())) if isinstance(v, dict) else 0
    kept = size(back)
    outcome = "loaded"
except io.CheckpointError as exc:
    kept, outcome = 0, "refused: " + str(exc)
grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) * 1024
print(grown, kept, outcome)
"""


def peak_growth(path: Path) -> tuple[int, int, str]:
    """(peak RSS growth in bytes during ``load``, bytes of the arrays returned, outcome), in a fresh process."""
    env = {**os.environ, "GPUNET_QUIET": "1", "GPUNET_BACKEND": "numpy"}
    done = subprocess.run([sys.executable, "-c", RSS_PROBE, str(path)], capture_output=True, text=True,
                          env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    grown, kept, outcome = done.stdout.strip().split(" ", 2)
    return int(grown), int(kept), outcome


@pytest.mark.skipif(sys.platform != "linux", reason="ru_maxrss in KiB is Linux's convention")
def test_peak_memory_of_load_stays_within_twice_the_arrays(tmp_path: Path) -> None:
    sizes = [16 * 2**20, 8 * 2**20, 4 * 2**20, 1000]
    state = {"model": {f"layer{i}.weight": numpy.ones(n // 4, numpy.float32) for i, n in enumerate(sizes)},
             "history": [{"epoch": k, "loss": 0.5} for k in range(100)]}
    io.save(state, tmp_path / "big.npz")
    io.save(state["model"], tmp_path / "big.safetensors")
    for name in ("big.npz", "big.safetensors"):
        grown, kept, outcome = peak_growth(tmp_path / name)
        assert outcome == "loaded" and kept == sum(sizes)
        assert grown <= 2 * kept, f"{name}: load grew RSS by {grown:,} bytes for {kept:,} bytes of arrays"
    bomb = write_bomb(tmp_path / "bomb.npz", 256 * 2**20)
    grown, kept, outcome = peak_growth(bomb)
    assert outcome.startswith("refused") and "compression ratio" in outcome
    assert grown < 16 * 2**20, f"refusing a zip bomb grew RSS by {grown:,} bytes"


def test_member_whose_header_describes_more_than_it_declares(tmp_path: Path) -> None:
    """A stored member declaring 64 bytes whose .npy header claims 1 GiB: refused, nothing allocated."""
    buffer = pyio.BytesIO()
    numpy.lib.format.write_array_header_1_0(buffer, {"descr": "<f8", "fortran_order": False, "shape": (2**27,)})
    members = [("__meta__.npy", meta_npy({"format": io.FORMAT, "format_version": 1, "gpunet_version": "0",
                                          "tree": {"w": {"__array__": "w"}}})),
               ("w.npy", buffer.getvalue() + bytes(64))]
    refused(write_zip(tmp_path / "liar.npz", members), "(w.npy)", "its .npy header describes")


def test_member_larger_than_the_metadata_budget(tmp_path: Path) -> None:
    big = numpy.zeros(1000, numpy.float64)
    members = [("__meta__.npy", meta_npy(meta_v2({"w": {"__array__": "w"}}, {"w": W}))), ("w.npy", npy(big))]
    refused(write_zip(tmp_path / "budget.npz", members), "(w.npy)", "the metadata")


def test_member_shape_other_than_the_metadata_says(tmp_path: Path) -> None:
    other = W.reshape(2, 3)
    members = [("__meta__.npy", meta_npy(meta_v2({"w": {"__array__": "w"}}, {"w": W}))), ("w.npy", npy(other))]
    refused(write_zip(tmp_path / "shape.npz", members), "(w.npy)", "shape (2, 3)", "the metadata says shape (6,)")


# ----- members ------------------------------------------------------------------------------
def test_duplicate_members_are_refused(tmp_path: Path) -> None:
    members = [*good_members(), ("w.npy", npy(W * 2))]
    refused(write_zip(tmp_path / "dup.npz", members), "(w.npy)", "appears twice")


def test_same_name_with_and_without_npy_suffix(tmp_path: Path) -> None:
    members = [*good_members(), ("w", b"raw bytes")]
    refused(write_zip(tmp_path / "twins.npz", members), "(w)", "not a .npy array")


def test_referenced_non_npy_member_holding_a_pickle(tmp_path: Path) -> None:
    members = [("__meta__.npy", meta_npy({"format": io.FORMAT, "format_version": 1, "gpunet_version": "0",
                                          "tree": {"w": {"__array__": "w"}}})),
               ("w", pickle.dumps({"x": 1}))]
    refused(write_zip(tmp_path / "raw.npz", members), "(w)", "not a .npy array")


def test_npy_member_that_is_a_pickle_inside(tmp_path: Path) -> None:
    evil = numpy.empty(1, dtype=object)
    evil[0] = {"x": 1}
    members = [("__meta__.npy", meta_npy({"format": io.FORMAT, "format_version": 1, "gpunet_version": "0",
                                          "tree": {"w": {"__array__": "w"}}})), ("w.npy", npy(evil))]
    refused(write_zip(tmp_path / "obj.npz", members), "(w.npy)", "pickled objects; refused")


def test_unreferenced_member_is_refused(tmp_path: Path) -> None:
    members = [*good_members(), ("extra.npy", npy(W))]
    refused(write_zip(tmp_path / "extra.npz", members), "(extra.npy)", "not referenced")


def test_member_referenced_twice_is_refused(tmp_path: Path) -> None:
    meta = {"format": io.FORMAT, "format_version": 1, "gpunet_version": "0",
            "tree": {"a": {"__array__": "w"}, "b": [{"__array__": "w"}]}}
    refused(write_zip(tmp_path / "twice.npz", [("__meta__.npy", meta_npy(meta)), ("w.npy", npy(W))]),
            "(tree.b[0])", "referenced twice")


def test_compressed_members_within_the_ratio_load(tmp_path: Path) -> None:
    """NumPy's savez_compressed files of real data (ratio far below the limit) are fine."""
    rng = numpy.random.default_rng(0)
    w = rng.standard_normal(10_000)
    members = [("__meta__.npy", meta_npy(meta_v2({"w": {"__array__": "w"}}, {"w": w}))), ("w.npy", npy(w))]
    back = io.load(write_zip(tmp_path / "deflated.npz", members, zipfile.ZIP_DEFLATED))
    assert numpy.array_equal(back["w"], w)


def test_other_compression_methods_and_encryption_are_refused(tmp_path: Path) -> None:
    path = write_zip(tmp_path / "bz.npz", good_members(), zipfile.ZIP_BZIP2)
    refused(path, "compression method 12")
    path = write_zip(tmp_path / "enc.npz", good_members())
    raw = bytearray(path.read_bytes())
    central = raw.rfind(b"PK\x01\x02")  # the last member's central directory entry: set "encrypted"
    raw[central + 8] |= 1
    path.write_bytes(bytes(raw))
    refused(path, "encrypted")


@pytest.mark.parametrize("header, fragment", [
    ("{'descr': '<f8', 'fortran_order': False, 'shape': (-1,)}", "has shape (-1,)"),
    ("{'descr': '<f8', 'fortran_order': 0, 'shape': (6,)}", "fortran_order 0"),
    ("{'descr': 'bogus', 'fortran_order': False, 'shape': (6,)}", "unknown dtype 'bogus'"),
    ("{'descr': '<f8', 'shape': (6,)}", "header is malformed"),
    ("__import__('os').system('true')", "header is not readable"),
    ("(" * 5000, "header is not readable"),
])
def test_malformed_npy_headers(tmp_path: Path, header: str, fragment: str) -> None:
    text = header.encode("latin1")
    raw = b"\x93NUMPY\x01\x00" + len(text).to_bytes(2, "little") + text + bytes(48)
    members = [("__meta__.npy", meta_npy({"format": io.FORMAT, "format_version": 1, "gpunet_version": "0",
                                          "tree": {"w": {"__array__": "w"}}})), ("w.npy", raw)]
    refused(write_zip(tmp_path / "h.npz", members), "(w.npy)", fragment)


def test_too_many_members(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(limits, "MAX_MEMBERS", 3)
    members = [*good_members(), *((f"x{i}.npy", npy(W)) for i in range(3))]
    refused(write_zip(tmp_path / "many.npz", members), "5 members, beyond the limit of 3")


# ----- metadata -----------------------------------------------------------------------------
def bad_meta_file(tmp_path: Path, meta: Any, *extra: tuple[str, bytes]) -> Path:
    raw = meta if isinstance(meta, bytes) else json.dumps(meta).encode()
    return write_zip(tmp_path / "meta.npz", [("__meta__.npy", npy(numpy.frombuffer(raw, numpy.uint8))), *extra])


@pytest.mark.parametrize("depth", [150, 950, 100_000])
def test_metadata_nested_too_deep(tmp_path: Path, depth: int) -> None:
    tree = "[" * depth + "]" * depth
    raw = ('{"format": "gpunet-checkpoint", "format_version": 1, "gpunet_version": "0", "tree": {"x": '
           + tree + "}}").encode()
    refused(bad_meta_file(tmp_path, raw), "(__meta__", "nests", "limit")


def test_nesting_at_the_limit_round_trips_and_beyond_is_refused_by_save(tmp_path: Path) -> None:
    deepest: Any = numpy.arange(3)
    for _ in range(limits.MAX_DEPTH - 1):
        deepest = [deepest]
    io.save({"x": deepest}, tmp_path / "deep.npz")
    back = io.load(tmp_path / "deep.npz")["x"]
    for _ in range(limits.MAX_DEPTH - 1):
        back = back[0]
    assert numpy.array_equal(back, numpy.arange(3))
    with pytest.raises(ValueError, match="nests deeper than 100 levels"):
        io.save({"x": [deepest]}, tmp_path / "deeper.npz")
    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(ValueError, match="nests deeper"):
        io.save({"loop": loop}, tmp_path / "loop.npz")
    assert not (tmp_path / "deeper.npz").exists() and not (tmp_path / "loop.npz").exists()


def test_metadata_beyond_the_size_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(limits, "MAX_META_BYTES", 1000)
    monkeypatch.setattr(limits, "MAX_NPY_HEADER", 200)
    meta = {"format": io.FORMAT, "format_version": 1, "gpunet_version": "0", "tree": {"s": "x" * 5000}}
    refused(bad_meta_file(tmp_path, meta), "(__meta__)", "beyond the metadata limit of 1,000")
    with pytest.raises(ValueError, match="beyond the limit of 1,000"):
        io.save({"s": "x" * 5000}, tmp_path / "big.npz")


@pytest.mark.parametrize("meta, fragments", [
    (b'{"format": "gpunet-checkpoint", "format": "x", "format_version": 1, "tree": {}}', ["duplicate key 'format'"]),
    ({"format": io.FORMAT, "format_version": 1, "gpunet_version": "0", "tree": {"a": 1, "b": {"a": 2}}}, None),
    (b'{"format": "gpunet-checkpoint", "format_version": 1, "tree": {"a": 1, "a": 2}}', ["duplicate key 'a'"]),
    ({"format": io.FORMAT, "format_version": True, "tree": {}}, ["(__meta__.format_version)"]),
    ({"format": io.FORMAT, "format_version": 1, "tree": {}, "extra": 1}, ["(__meta__.extra)", "unknown"]),
    ({"format": io.FORMAT, "format_version": 1, "gpunet_version": 5, "tree": {}}, ["(__meta__.gpunet_version)"]),
    ({"format": io.FORMAT, "format_version": 1, "tree": {"__array__": "w"}}, ["(__meta__.tree)"]),
    ({"format": io.FORMAT, "format_version": 1, "tree": [1]}, ["(__meta__.tree)"]),
    ({"format": io.FORMAT, "format_version": 1, "tree": {"w": {"__array__": 5}}}, ["(tree.w)", "malformed"]),
    ({"format": io.FORMAT, "format_version": 1, "tree": {"w": {"__array__": "w", "x": 1}}}, ["(tree.w)"]),
    ({"format": io.FORMAT, "format_version": 1, "tree": {"m": {"fc.w": {"__array__": "zz"}}}},
     ["(tree.m['fc.w'])", "array reference 'zz' has no member"]),
    ({"format": io.FORMAT, "format_version": 2, "tree": {}}, ["(__meta__.arrays)"]),
    ({"format": io.FORMAT, "format_version": 2, "arrays": {"w": {"shape": [-1], "nbytes": 0}}, "tree": {}},
     ["(__meta__.arrays['w'].shape)"]),
    ({"format": io.FORMAT, "format_version": 2, "arrays": {"w": {"shape": [6], "nbytes": 24}},
      "tree": {"v": {"__array__": "w"}, "u": {"__array__": "u"}}}, ["array reference 'u' has no member"]),
    ({"format": io.FORMAT, "format_version": 2, "arrays": {"w": {"shape": [6], "nbytes": 24}, "q": {"shape": [],
      "nbytes": 0}}, "tree": {"v": {"__array__": "w"}}}, ["(__meta__.arrays['q'])"]),
    (b"\xff\xfe not text", ["(__meta__)", "not UTF-8"]),
    (b"[1, 2]", ["(__meta__.format)", "not a gpunet checkpoint"]),
])
def test_metadata_schema(tmp_path: Path, meta: Any, fragments: list[str] | None) -> None:
    path = bad_meta_file(tmp_path, meta, ("w.npy", npy(W)))
    if fragments is None:  # a control: the same key at two levels is fine, the unreferenced member is not
        refused(path, "(w.npy)", "not referenced")
        return
    refused(path, *fragments)


@pytest.mark.parametrize("payload, fragment", [
    (npy(numpy.arange(4.0)), "expected UTF-8 bytes"),
    (b"not an npy at all", "not a .npy array"),
    (b"\x93NUMPY\x01\x00", "truncated inside its .npy header"),
])
def test_raw_or_odd_meta_member(tmp_path: Path, payload: bytes, fragment: str) -> None:
    refused(write_zip(tmp_path / "m.npz", [("__meta__.npy", payload)]), "(__meta__", fragment)


def test_errors_carry_the_path_and_field(tmp_path: Path) -> None:
    error = refused(write_zip(tmp_path / "dup.npz", [*good_members(), ("w.npy", npy(W))]), "appears twice")
    assert error.path == tmp_path / "dup.npz" and error.field == "w.npy"


# ----- save accepts exactly what load returns; load returns what was saved --------------------
@pytest.mark.parametrize("obj", [[1, 2], 5, numpy.arange(3), None, "text"])
def test_save_refuses_what_is_not_a_dict(tmp_path: Path, obj: Any) -> None:
    with pytest.raises(TypeError, match="expected a dict"):
        io.save(obj, tmp_path / "x.npz")
    assert list(tmp_path.iterdir()) == []


def test_numpy_scalars_that_json_cannot_hold_are_refused_at_save(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match=r"cannot store a NumPy date scalar in x"):
        io.save({"x": numpy.datetime64("2024-01-01")}, tmp_path / "d.npz")


def test_what_load_returns_saves_again_to_the_same(tmp_path: Path) -> None:
    obj = {"a": numpy.arange(3), "b": [1, (2, 3), {"c": None, "": numpy.float32(1.5)}], "weird/key%": 1,
           "__meta__": numpy.zeros(2), ".": {"..": numpy.ones(1)}, "é": numpy.zeros((0, 2))}
    io.save(obj, tmp_path / "one.npz")
    first = io.load(tmp_path / "one.npz")
    io.save(first, tmp_path / "two.npz")
    second = io.load(tmp_path / "two.npz")
    assert list(first) == list(obj) == list(second)
    assert "_gpunet_version" not in first
    assert first["b"] == second["b"] == [1, [2, 3], {"c": None, "": 1.5}]
    for key in ("a", "__meta__", "é"):
        assert numpy.array_equal(first[key], second[key]) and first[key].dtype == obj[key].dtype


def test_module_state_dict_round_trips_into_load_state_dict(tmp_path: Path) -> None:
    gpunet.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    for name in ("w.npz", "w.safetensors"):
        io.save(net.state_dict(), tmp_path / name)
        gpunet.manual_seed(1)
        other = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
        other.load_state_dict(gpunet.load(tmp_path / name))
        for key, value in net.state_dict().items():
            assert numpy.array_equal(other.state_dict()[key], value), (name, key)


def test_format_1_checkpoints_with_anonymous_members_still_load(tmp_path: Path) -> None:
    """As gpunet 0.1 wrote them: members a0, a1, ... and a _gpunet_version-free tree."""
    meta = {"format": io.FORMAT, "format_version": 1, "gpunet_version": "0.1.0",
            "tree": {"model": {"fc.weight": {"__array__": "a0"}}, "opt": [{"m": {"__array__": "a1"}}], "step": 3}}
    path = tmp_path / "old.npz"
    numpy.savez(path, __meta__=numpy.frombuffer(json.dumps(meta).encode(), numpy.uint8), a0=W, a1=W * 2)
    back = io.load(path)
    assert back["step"] == 3 and numpy.array_equal(back["model"]["fc.weight"], W)
    assert numpy.array_equal(back["opt"][0]["m"], W * 2)
    assert io.load_metadata(path)["format_version"] == 1


def test_load_metadata_reads_no_array_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    io.save({"w": W, "n": 1}, tmp_path / "m.npz")
    real, read = io.npz._read_member, []

    def headers_only(archive: Any, info: Any, member: str, **kw: Any) -> Any:
        read.append((member, kw.get("data", True)))
        return real(archive, info, member, **kw)

    monkeypatch.setattr(io.npz, "_read_member", headers_only)
    meta = io.load_metadata(tmp_path / "m.npz")
    assert read == [("__meta__", True), ("w.npy", False)]  # the array's header only
    assert meta["arrays"] == {"w": {"shape": [6], "nbytes": 24}} and meta["format_version"] == 2
    assert "tree" not in meta
