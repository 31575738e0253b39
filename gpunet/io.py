"""Checkpoints that cannot run code on load, written atomically.

Format: one ``.npz`` (a zip of ``.npy`` members, loaded with ``allow_pickle=False``) holding every
array, plus a member ``__meta__`` with UTF-8 JSON: the object's structure with arrays replaced by
references, the format version and the library version. Writing goes to a temporary file in the
same folder, is fsynced, then renamed over the target, so a crash mid-write leaves the previous
checkpoint intact. Arrays come back as NumPy arrays whatever backend wrote them.
"""

from __future__ import annotations

import glob
import json
import os
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

import numpy

from gpunet import backend
from gpunet.version import __version__

FORMAT = "gpunet-checkpoint"
FORMAT_VERSION = 1
_META = "__meta__"
_REF = "__array__"
_ZIP_MAGIC = b"PK\x03\x04"
STALE_TEMP_SECONDS = 600.0


class CheckpointError(RuntimeError):
    """A checkpoint is missing, truncated, corrupted, unsafe or incompatible."""


def _flatten(obj: Any, arrays: dict[str, numpy.ndarray]) -> Any:
    if isinstance(obj, dict):
        for key in obj:
            if not isinstance(key, str):
                raise TypeError(f"save: expected string keys, got {key!r} ({type(key).__name__})")
        if set(obj) == {_REF}:
            raise TypeError(f"save: a dict with the single key {_REF!r} is reserved for array references")
        return {k: _flatten(v, arrays) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_flatten(v, arrays) for v in obj]
    if hasattr(obj, "_is_gpunet_tensor"):
        obj = obj.data
    if isinstance(obj, numpy.ndarray) or backend.is_cupy_array(obj):
        host = backend.to_numpy(obj)
        if host.dtype.hasobject:
            raise TypeError("save: object arrays cannot be saved safely")
        key = f"a{len(arrays)}"
        arrays[key] = host
        return {_REF: key}
    if isinstance(obj, numpy.generic):
        return obj.item()
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"save: cannot store a {type(obj).__name__}; expected dicts, lists, arrays, "
                    f"tensors, numbers, strings or None")


def _unflatten(obj: Any, arrays: dict[str, numpy.ndarray]) -> Any:
    if isinstance(obj, dict):
        if set(obj) == {_REF}:
            return arrays[obj[_REF]]
        return {k: _unflatten(v, arrays) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_unflatten(v, arrays) for v in obj]
    return obj


def save(obj: dict[str, Any], path: str | os.PathLike[str]) -> Path:
    """Write ``obj`` (nested dicts/lists of arrays and JSON values) to ``path`` atomically.

    Raises TypeError for values it cannot store safely and CheckpointError when the file cannot be
    written (the previous checkpoint, if any, is then left as it was).
    """

    path = Path(path)
    arrays: dict[str, numpy.ndarray] = {}
    tree = _flatten(obj, arrays)
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "gpunet_version": __version__, "tree": tree}
    payload = numpy.frombuffer(json.dumps(meta).encode("utf-8"), dtype=numpy.uint8)
    try:
        _write_atomically(path, lambda handle: numpy.savez(handle, **{_META: payload}, **arrays))
    except OSError as exc:
        raise CheckpointError(f"save: cannot write {path} ({type(exc).__name__}: {exc}); "
                              f"the previous checkpoint there, if any, is unchanged") from exc
    remove_stale_temp_files(path)
    return path


def _write_atomically(path: Path, write: Any) -> None:
    """``write(handle)`` into a temporary file beside ``path``, fsync, rename over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def remove_stale_temp_files(path: str | os.PathLike[str], older_than: float = STALE_TEMP_SECONDS) -> list[Path]:
    """Delete temporary files of ``path`` that a writer killed mid-write left behind.

    Only files untouched for ``older_than`` seconds go, so a writer still at work keeps its own.
    """
    path = Path(path)
    removed = []
    for tmp in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        try:
            if time.time() - tmp.stat().st_mtime > older_than:
                tmp.unlink()
                removed.append(tmp)
        except OSError:
            continue
    return removed


def _fsync_dir(folder: Path) -> None:
    """Make the rename durable (POSIX); a no-op where folders cannot be opened (Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _read(path: Path) -> tuple[Any, dict[str, numpy.ndarray]]:
    """The parsed meta and every array member; raises CheckpointError on anything unexpected."""
    with open(path, "rb") as handle:
        magic = handle.read(4)
    if magic != _ZIP_MAGIC:
        what = "a pickle" if magic[:1] == b"\x80" else "a single .npy array" if magic == b"\x93NUM" else "unknown"
        raise CheckpointError(f"load: {path} is not a gpunet checkpoint (expected a zip/.npz archive, "
                              f"got {what} data starting with {magic!r})")
    try:
        with numpy.load(path, allow_pickle=False) as archive:
            if _META not in archive.files:
                raise CheckpointError(f"load: {path} is not a gpunet checkpoint (no {_META} entry)")
            meta = json.loads(archive[_META].tobytes().decode("utf-8"))
            arrays = {name: archive[name] for name in archive.files if name != _META}
    except CheckpointError:
        raise
    except ValueError as exc:
        if "pickle" in str(exc).lower():
            raise CheckpointError(f"load: {path} contains pickled objects; refused (they could run code)") from exc
        raise CheckpointError(f"load: {path} is corrupted ({exc})") from exc
    except (zipfile.BadZipFile, OSError, EOFError, KeyError, UnicodeDecodeError, TypeError,
            NotImplementedError, RuntimeError, OverflowError, MemoryError) as exc:
        raise CheckpointError(f"load: {path} is truncated or corrupted ({type(exc).__name__}: {exc})") from exc
    return meta, arrays


def load(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save`; never unpickles anything."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"load: no checkpoint file at {path}")
    meta, arrays = _read(path)
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"load: {path} is not a gpunet checkpoint (expected format {FORMAT!r} in "
                              f"{_META}, got {meta.get('format') if isinstance(meta, dict) else meta!r})")
    if meta.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"load: {path} has checkpoint format version {meta.get('format_version')!r}, "
                              f"this gpunet reads version {FORMAT_VERSION}")
    if not isinstance(meta.get("tree"), dict):
        raise CheckpointError(f"load: {path} is corrupted (expected an object tree in {_META})")
    try:
        result = _unflatten(meta["tree"], arrays)
    except (KeyError, TypeError) as exc:
        raise CheckpointError(f"load: {path} is corrupted (array reference {exc} has no member)") from exc
    result.setdefault("_gpunet_version", meta.get("gpunet_version"))
    return result
