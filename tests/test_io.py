"""Checkpoint files: round trip, atomic writes, host conversion, and refusal of bad or unsafe files."""

from __future__ import annotations

import io as pyio
import json
import os
import pickle
import stat
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

import numpy
import pytest

import gpunet
from gpunet import io
from gpunet.autograd import Tensor
from gpunet.io import CheckpointError


def sample() -> dict[str, Any]:
    rng = numpy.random.default_rng(1)
    return {
        "model": {"fc.weight": rng.standard_normal((3, 2)).astype(numpy.float32),
                  "fc.bias": numpy.zeros(3, numpy.float64)},
        "ints": numpy.arange(5, dtype=numpy.int64), "flags": numpy.array([True, False]),
        "scalar": numpy.array(2.5), "empty": numpy.zeros((0, 4), numpy.float32),
        "tensor": Tensor(numpy.ones((2, 2), numpy.float32)),
        "rng": gpunet.random.get_state(), "big": 2**100 + 1, "nested": [1, "two", None, [3.5, {"k": False}]],
        "npscalar": numpy.float32(0.1), "tuple": (1, 2),
    }


def same(a: Any, b: Any) -> bool:
    """Exact structural equality, arrays compared by dtype and values."""
    if isinstance(a, Tensor):
        a = a.data
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return isinstance(b, list) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, numpy.ndarray):
        return (isinstance(b, numpy.ndarray) and a.dtype == b.dtype and a.shape == b.shape
                and numpy.array_equal(a, b))
    if isinstance(a, numpy.generic):
        a = a.item()
    return type(a) is type(b) and a == b


def test_round_trip_is_exact(tmp_path: Path) -> None:
    path = tmp_path / "ck.npz"
    obj = sample()
    io.save(obj, path)
    back = io.load(path)
    assert same(obj, back)  # nothing added: the writer's version is metadata, read apart
    assert back["big"] == 2**100 + 1
    assert io.load_metadata(path)["gpunet_version"] == gpunet.__version__
    with zipfile.ZipFile(path) as archive:  # only .npy members, named by their keys
        names = archive.namelist()
    assert all(name.endswith(".npy") for name in names)
    assert {"__meta__.npy", "model/fc.weight.npy", "model/fc.bias.npy", "tensor.npy", "empty.npy"} <= set(names)


def test_rng_state_round_trips(tmp_path: Path) -> None:
    gpunet.manual_seed(7)
    gpunet.random.generator().random(3)
    io.save({"rng": gpunet.random.get_state()}, tmp_path / "r.npz")
    expected = gpunet.random.generator().random(4)
    gpunet.manual_seed(0)
    gpunet.random.set_state(io.load(tmp_path / "r.npz")["rng"])
    assert numpy.array_equal(gpunet.random.generator().random(4), expected)


@pytest.mark.parametrize("bad, message", [
    ({"x": numpy.array([{}], dtype=object)}, "object arrays"),
    ({1: 2}, "string keys"),
    ({"x": {1, 2}}, "cannot store a set"),
    ({"x": {"__array__": "a0"}}, "reserved"),
])
def test_save_refuses_what_it_cannot_store_safely(tmp_path: Path, bad: dict, message: str) -> None:
    with pytest.raises(TypeError, match=message):
        io.save(bad, tmp_path / "x.npz")
    assert list(tmp_path.iterdir()) == []


# ----- atomic writes ------------------------------------------------------------------------
@pytest.mark.parametrize("exc, raised", [(OSError(28, "No space left on device"), CheckpointError),
                                         (KeyboardInterrupt(), KeyboardInterrupt)])
def test_failure_mid_write_keeps_the_previous_checkpoint(tmp_path: Path, monkeypatch, exc, raised) -> None:
    path = tmp_path / "ck.npz"
    io.save({"w": numpy.arange(4.0)}, path)
    before = path.read_bytes()
    real_write = io.npz.write

    def half_then_fail(file: Any, *args: Any, **kwargs: Any) -> None:
        buffer = pyio.BytesIO()
        real_write(buffer, *args, **kwargs)
        file.write(buffer.getvalue()[: len(buffer.getvalue()) // 2])  # the first half reaches the disk
        raise exc

    monkeypatch.setattr(io.npz, "write", half_then_fail)
    with pytest.raises(raised, match="No space left|^$"):
        io.save({"w": numpy.arange(1000.0)}, path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["ck.npz"]
    monkeypatch.undo()
    assert numpy.array_equal(io.load(path)["w"], numpy.arange(4.0))


def test_failed_rename_leaves_no_temp_file(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "ck.npz"
    io.save({"v": 1}, path)
    before = path.read_bytes()

    def refuse(src: Any, dst: Any) -> None:
        raise PermissionError("read-only")

    monkeypatch.setattr(io.os, "replace", refuse)
    with pytest.raises(CheckpointError, match=r"save: cannot write .*PermissionError: read-only.*unchanged"):
        io.save({"v": 2}, path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["ck.npz"]


def test_save_creates_parent_folders(tmp_path: Path) -> None:
    path = io.save({"v": 1}, tmp_path / "a" / "b" / "ck.npz")
    assert io.load(path)["v"] == 1


# ----- device arrays ------------------------------------------------------------------------
class FakeCupyArray:
    """Stands in for ``cupy.ndarray``: the backend recognises CuPy arrays by their module."""

    __module__ = "cupy._core.core"

    def __init__(self, host: numpy.ndarray) -> None:
        self.host = host
        self.shape, self.dtype, self.ndim = host.shape, host.dtype, host.ndim
        self.copied_to_host = 0

    def get(self) -> numpy.ndarray:
        self.copied_to_host += 1
        return self.host.copy()


def test_device_arrays_are_saved_as_host_arrays(tmp_path: Path) -> None:
    device = FakeCupyArray(numpy.arange(6, dtype=numpy.float32).reshape(2, 3))
    io.save({"model": {"w": device}, "tensor": Tensor(FakeCupyArray(numpy.ones(2)))}, tmp_path / "g.npz")
    assert device.copied_to_host == 1
    back = io.load(tmp_path / "g.npz")
    assert type(back["model"]["w"]) is numpy.ndarray and back["model"]["w"].dtype == numpy.float32
    assert numpy.array_equal(back["model"]["w"], device.host)
    assert numpy.array_equal(back["tensor"], numpy.ones(2))


@pytest.mark.gpu
@pytest.mark.standin  # also runs on the CuPy stand-in (tests/test_on_standin.py)
def test_cupy_checkpoint_loads_on_numpy(tmp_path: Path) -> None:
    cupy = pytest.importorskip("cupy")
    io.save({"w": cupy.arange(5, dtype=cupy.float32)}, tmp_path / "c.npz")
    back = io.load(tmp_path / "c.npz")["w"]
    assert type(back) is numpy.ndarray and numpy.array_equal(back, numpy.arange(5, dtype=numpy.float32))


# ----- refusing bad files -------------------------------------------------------------------
def write_zip(path: Path, members: dict[str, bytes]) -> None:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)


def npy_bytes(array: numpy.ndarray, allow_pickle: bool = False) -> bytes:
    buffer = pyio.BytesIO()
    numpy.save(buffer, array, allow_pickle=allow_pickle)
    return buffer.getvalue()


def meta_bytes(meta: dict[str, Any]) -> bytes:
    return npy_bytes(numpy.frombuffer(json.dumps(meta).encode(), dtype=numpy.uint8))


def good_meta(**changes: Any) -> dict[str, Any]:
    """Format 1 metadata (no array table), as gpunet 0.1 wrote it."""
    meta = {"format": io.FORMAT, "format_version": 1, "gpunet_version": "0", "tree": {"w": 1}}
    meta.update(changes)
    return meta


class Payload:
    """Unpickling this creates a marker file: proof that code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (str(self.marker), "w"))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="no checkpoint file"):
        io.load(tmp_path / "none.npz")


@pytest.mark.parametrize("keep", [0, 1, 10, 0.25, 0.5, 0.9, -1])
def test_truncated_checkpoint(tmp_path: Path, keep: float) -> None:
    path = tmp_path / "ck.npz"
    io.save(sample(), path)
    raw = path.read_bytes()
    cut = keep if isinstance(keep, int) and keep >= 0 else int(len(raw) * keep) if keep > 0 else len(raw) - 1
    path.write_bytes(raw[:cut])
    with pytest.raises(CheckpointError, match="not a gpunet checkpoint|truncated"):
        io.load(path)


def test_every_flipped_byte_is_refused_or_harmless(tmp_path: Path) -> None:
    """Flip each byte of a small checkpoint: loading raises CheckpointError or gives the same data."""
    path = tmp_path / "ck.npz"
    obj = {"w": numpy.arange(6, dtype=numpy.float32).reshape(2, 3), "n": 3, "s": "x"}
    io.save(obj, path)
    raw = path.read_bytes()
    refused = 0
    for i in range(len(raw)):
        flipped = bytearray(raw)
        flipped[i] ^= 0xFF
        path.write_bytes(bytes(flipped))
        try:
            back = io.load(path)
        except CheckpointError:
            refused += 1
            continue
        assert same(obj, back), f"byte {i} flipped gave different data without an error"
    assert refused > len(raw) // 2


def test_not_a_zip(tmp_path: Path) -> None:
    path = tmp_path / "text.npz"
    path.write_text("hello, I am not a checkpoint")
    with pytest.raises(CheckpointError, match="expected a zip"):
        io.load(path)


def test_bare_npy_renamed(tmp_path: Path) -> None:
    path = tmp_path / "array.npz"
    path.write_bytes(npy_bytes(numpy.arange(3)))
    with pytest.raises(CheckpointError, match="single .npy"):
        io.load(path)


def test_pickle_renamed_to_npz_is_not_unpickled(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.npz"
    path.write_bytes(pickle.dumps({"model": Payload(marker)}))
    with pytest.raises(CheckpointError, match="pickle"):
        io.load(path)
    assert not marker.exists()
    pickle.loads(path.read_bytes())  # the payload is live: unpickling would have run it
    assert marker.exists()


def test_pickled_object_array_inside_npz_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.npz"
    evil = numpy.empty(1, dtype=object)
    evil[0] = Payload(marker)
    write_zip(path, {"__meta__.npy": meta_bytes(good_meta(tree={"w": {"__array__": "a0"}})),
                     "a0.npy": npy_bytes(evil, allow_pickle=True)})
    with pytest.raises(CheckpointError, match="pickled objects; refused"):
        io.load(path)
    assert not marker.exists()


def test_missing_meta(tmp_path: Path) -> None:
    path = tmp_path / "plain.npz"
    numpy.savez(path, w=numpy.arange(3))
    with pytest.raises(CheckpointError, match="no __meta__ entry"):
        io.load(path)


@pytest.mark.parametrize("meta, message", [
    (good_meta(format_version=99), r"\(__meta__.format_version\): checkpoint format version 99, "
                                   r"this gpunet reads versions 1, 2"),
    (good_meta(format="someone-else"), "expected format 'gpunet-checkpoint'"),
    ([1, 2], "not a gpunet checkpoint"),
    (good_meta(tree=[1]), "expected an object tree"),
    (good_meta(tree={"w": {"__array__": "a7"}}), "array reference 'a7' has no member"),
])
def test_bad_meta(tmp_path: Path, meta: Any, message: str) -> None:
    path = tmp_path / "ck.npz"
    write_zip(path, {"__meta__.npy": meta_bytes(meta) if isinstance(meta, dict) else
                     npy_bytes(numpy.frombuffer(json.dumps(meta).encode(), dtype=numpy.uint8))})
    with pytest.raises(CheckpointError, match=message):
        io.load(path)


def test_meta_that_is_not_json(tmp_path: Path) -> None:
    path = tmp_path / "ck.npz"
    write_zip(path, {"__meta__.npy": npy_bytes(numpy.frombuffer(b"{not json", dtype=numpy.uint8))})
    with pytest.raises(CheckpointError, match=r"\(__meta__\): is not valid JSON"):
        io.load(path)


def test_temp_files_left_by_a_killed_writer_are_removed_later(tmp_path: Path) -> None:
    path = tmp_path / "ck.npz"
    stale, fresh = tmp_path / ".ck.npz.abc123.tmp", tmp_path / ".ck.npz.def456.tmp"
    other = tmp_path / ".other.npz.abc123.tmp"
    for p in (stale, fresh, other):
        p.write_bytes(b"PK\x03\x04 half a checkpoint")
    old = time.time() - io.STALE_TEMP_SECONDS - 10
    for p in (stale, other):
        os.utime(p, (old, old))
    io.save({"v": 1}, path)
    assert not stale.exists()
    assert fresh.exists() and other.exists()  # a writer may still be busy; another file's temp is not ours


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
@pytest.mark.parametrize("name", ["ck.npz", "w.safetensors"])
def test_file_mode_follows_the_umask(tmp_path: Path, umask: int, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(b"old")
    os.chmod(path, 0o644)
    old = os.umask(umask)
    try:
        io.save({"w": numpy.arange(3.0)}, path)
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


HOLDER = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT, 0o666)
fcntl.flock(fd, fcntl.LOCK_EX)
print("locked", flush=True)
time.sleep(60)
"""


@pytest.mark.skipif(os.name == "nt", reason="POSIX processes and locks")
def test_temp_files_of_dead_writers_go_at_the_next_save_and_live_ones_stay(tmp_path: Path) -> None:
    path = tmp_path / "ck.npz"
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    gone = dead_pid()
    dead = tmp_path / f".ck.npz.{gone}.0123abcd.tmp"
    live_other = tmp_path / f".ck.npz.{sleeper.pid}.0123abcd.tmp"  # another process, alive
    ours = tmp_path / f".ck.npz.{os.getpid()}.0123abcd.tmp"  # this process: maybe another thread's
    other_path = tmp_path / f".ck.npz.x.{gone}.0123abcd.tmp"  # the temp file of ck.npz.x
    locked = tmp_path / f".ck.npz.{dead_pid()}.4567abcd.tmp"  # PID looks dead, but a live process holds it
    for p in (dead, live_other, ours, other_path):
        p.write_bytes(b"PK\x03\x04 half a checkpoint")
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(locked)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        io.save({"v": 1}, path)  # fresh files: no waiting for them to age
        assert not dead.exists()
        assert live_other.exists() and ours.exists() and other_path.exists() and locked.exists()
        sleeper.kill()
        sleeper.wait()
        holder.kill()
        holder.wait()
        io.save({"v": 2}, path)
        assert not live_other.exists() and not locked.exists()
        assert ours.exists() and other_path.exists()
    finally:
        for proc in (sleeper, holder):
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        if holder.stdout is not None:
            holder.stdout.close()
    assert io.load(path)["v"] == 2


def test_a_writer_holds_the_lock_on_its_temp_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """While ``save`` writes, its temp file is locked and named with its PID: no cleaner takes it."""
    seen = []
    real_write = io.npz.write

    def look(handle: Any, *args: Any) -> None:
        temps = list(tmp_path.glob(".ck.npz.*.tmp"))
        seen.append([(t.name, io.atomic._unlocked(t)) for t in temps])
        assert io.remove_stale_temp_files(tmp_path / "ck.npz") == []
        real_write(handle, *args)

    monkeypatch.setattr(io.npz, "write", look)
    io.save({"v": 1}, tmp_path / "ck.npz")
    [[(name, unlocked)]] = seen
    assert name.startswith(f".ck.npz.{os.getpid()}.") and (unlocked is False or os.name == "nt")
    assert [p.name for p in tmp_path.iterdir()] == ["ck.npz"]


WRITER = """
import sys, numpy
from gpunet import io
version = 0
while True:
    io.save({"version": version, "w": numpy.full(1_000_000, version, dtype=numpy.float64)}, sys.argv[1])
    print(version, flush=True)
    version += 1
"""


@pytest.mark.slow
def test_sigkill_during_writes_leaves_a_complete_checkpoint(tmp_path: Path) -> None:
    """A process saving 8 MB checkpoints in a loop is killed at random moments, often mid-write."""
    path = tmp_path / "ck.npz"
    rng = numpy.random.default_rng(0)
    env = {**os.environ, "GPUNET_QUIET": "1"}
    last, left_behind = -1, 0
    for _ in range(4):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True,
                                env=env)
        assert proc.stdout is not None
        proc.stdout.readline()  # one save completed
        time.sleep(float(rng.uniform(0.0, 0.3)))
        proc.kill()
        proc.wait(timeout=30)
        proc.stdout.close()
        state = io.load(path)
        assert state["version"] >= 0 and (state["w"] == state["version"]).all()
        last = state["version"]
        left_behind += len(list(tmp_path.glob(".ck.npz.*.tmp")))
    assert last >= 0
    # the writer spends nearly all its time writing, so kills land mid-write and leave temp files,
    # which the next save removes: their writers are dead
    assert left_behind, "no kill landed mid-write"
    io.save({"version": -1}, path)
    assert [p.name for p in tmp_path.iterdir()] == ["ck.npz"]
