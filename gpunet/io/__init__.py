"""Checkpoints that cannot run code on load, are read within fixed bounds, and are written atomically.

Two formats, chosen by the file name on :func:`save` and by the content on :func:`load`:

- ``*.safetensors``: a flat mapping of names to arrays (a ``state_dict``), in the format PyTorch
  and Hugging Face exchange weights in (see :mod:`gpunet.io.safetensors_format`);
- anything else: gpunet's ``.npz`` (see :mod:`gpunet.io.npz`) for any nesting of dicts, lists,
  arrays and JSON values: training checkpoints with optimizer state, RNG state and history.

``load`` returns exactly what ``save`` was given (tuples as lists, tensors and device arrays as
NumPy arrays, NumPy scalars as Python numbers) and ``save`` accepts anything ``load`` returns.
Writing goes to a temporary file beside the target, is fsynced, then renamed over it, so a crash
mid-write leaves the previous checkpoint intact. The bounds are in :mod:`gpunet.io.limits`.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gpunet.io import limits, npz, safetensors_format
from gpunet.io.atomic import STALE_TEMP_SECONDS, remove_stale_temp_files, write_atomically
from gpunet.io.npz import FORMAT, FORMAT_VERSION, READ_VERSIONS
from gpunet.io.tree import flatten
from gpunet.version import __version__

__all__ = ["FORMAT", "FORMAT_VERSION", "READ_VERSIONS", "STALE_TEMP_SECONDS", "CheckpointError", "limits", "load",
           "load_metadata", "remove_stale_temp_files", "save"]

_ZIP_MAGIC = b"PK\x03\x04"


class CheckpointError(RuntimeError):
    """A checkpoint is missing, truncated, corrupted, unsafe or incompatible.

    ``path`` is the file and ``field`` the part at fault (a member, a metadata or training-state
    field), or ``None`` when the file as a whole is.
    """

    def __init__(self, message: str, path: str | os.PathLike[str] | None = None, field: str | None = None) -> None:
        super().__init__(message)
        self.path, self.field = path, field


def _is_safetensors_name(path: Path) -> bool:
    return path.suffix.lower() == ".safetensors"


def save(obj: Mapping[str, Any], path: str | os.PathLike[str]) -> Path:
    """Write ``obj`` to ``path`` atomically; returns the path.

    ``obj`` is a dict with string keys: for a ``.safetensors`` path, of arrays/tensors only;
    otherwise of dicts, lists, arrays, tensors, numbers, strings and None, nested at most
    ``limits.MAX_DEPTH`` deep. Raises TypeError/ValueError for what cannot be stored (nothing is
    written then) and CheckpointError when the file cannot be written (the previous checkpoint,
    if any, is then left as it was).
    """
    path = Path(path)
    if _is_safetensors_name(path):
        arrays = safetensors_format.prepare(obj)

        def write(handle: Any) -> None:
            safetensors_format.write(handle, arrays, __version__)
    else:
        if not isinstance(obj, Mapping):
            raise TypeError(f"save: expected a dict (of arrays, numbers, lists, ...) at the top level, got a "
                            f"{type(obj).__name__}; wrap it: save({{'value': obj}}, path)")
        found: dict[str, Any] = {}
        tree = flatten(obj, found)
        meta = npz.meta_bytes(tree, found, __version__)

        def write(handle: Any) -> None:
            npz.write(handle, meta, found)
    try:
        write_atomically(path, write)
    except OSError as exc:
        raise CheckpointError(f"save: cannot write {path} ({type(exc).__name__}: {exc}); "
                              f"the previous checkpoint there, if any, is unchanged", path) from exc
    remove_stale_temp_files(path)
    return path


def load(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a checkpoint (gpunet ``.npz`` or any safetensors file); never unpickles anything.

    Raises :class:`CheckpointError` naming the file and the field for anything unexpected.
    """
    _, obj = _read(Path(path), arrays_too=True)
    return obj


def load_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A checkpoint's metadata, reading no array data (the file is checked as :func:`load` does).

    For gpunet's format: ``format``, ``format_version``, ``gpunet_version`` (of the writer) and
    ``arrays`` (each member's ``shape`` and ``nbytes``, format 2). For safetensors: ``format``
    (``"safetensors"``), ``metadata`` (its ``__metadata__`` strings) and ``tensors`` (``dtype``, ``shape``).
    """
    meta, _ = _read(Path(path), arrays_too=False)
    return meta


def _read(path: Path, arrays_too: bool) -> tuple[dict[str, Any], Any]:
    if not path.is_file():
        raise CheckpointError(f"load: no checkpoint file at {path}", path)
    try:
        with open(path, "rb") as handle:
            head = handle.read(9)
    except OSError as exc:
        raise CheckpointError(f"load: cannot read {path} ({type(exc).__name__}: {exc})", path) from exc
    if head[:4] == _ZIP_MAGIC:
        return _read_npz(path, arrays_too)
    if safetensors_format.looks_like(head):
        return _read_safetensors(path, arrays_too)
    magic = head[:4]
    what = "a pickle" if magic[:1] == b"\x80" else "a single .npy array" if magic == b"\x93NUM" else "unknown"
    raise CheckpointError(f"load: {path} is not a gpunet checkpoint (expected a zip/.npz archive, got {what} "
                          f"data starting with {magic!r}; nor is it a safetensors file)", path)


def _read_npz(path: Path, arrays_too: bool) -> tuple[dict[str, Any], Any]:
    try:
        meta, obj = npz.read(path, arrays_too)
    except npz.NpzError as exc:
        where = f" ({exc.field})" if exc.field else ""
        plain = exc.problem.startswith("not a gpunet") or exc.field == "__meta__.format_version"
        state = "" if plain else " is corrupted or unsafe"
        raise CheckpointError(f"load: {path}{state}{where}: {exc.problem}", path, exc.field or None) from exc
    except MemoryError as exc:
        raise CheckpointError(f"load: {path}: not enough memory for the arrays it holds", path) from exc
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError, KeyError, TypeError,
            NotImplementedError, RuntimeError, OverflowError) as exc:
        raise CheckpointError(f"load: {path} is truncated or corrupted ({type(exc).__name__}: {exc})",
                              path) from exc
    if not arrays_too:
        return {k: v for k, v in meta.items() if k != "tree"}, None
    return meta, obj


def _read_safetensors(path: Path, arrays_too: bool) -> tuple[dict[str, Any], Any]:
    try:
        info, arrays = safetensors_format.read(path, arrays_too)
    except safetensors_format.SafetensorsError as exc:
        where = f" ({exc.field})" if exc.field else ""
        raise CheckpointError(f"load: {path} is a corrupted or unsafe safetensors file{where}: {exc.problem}", path,
                              exc.field or None) from exc
    except MemoryError as exc:
        raise CheckpointError(f"load: {path}: not enough memory for the arrays it holds", path) from exc
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"load: {path} is truncated or corrupted ({type(exc).__name__}: {exc})",
                              path) from exc
    return info, arrays
