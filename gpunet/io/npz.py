"""gpunet's own format: an ``.npz`` (zip of ``.npy`` members) plus JSON metadata, read with bounds.

Members are stored uncompressed and named by their keys (``model/fc.weight.npy``); the member
``__meta__.npy`` (UTF-8 JSON as uint8) holds the object's tree with arrays replaced by
``{"__array__": NAME}``, and (format 2) each array's shape and byte count. Format 1 files (members
``a0, a1, ...``, no byte counts) still load.

Reading never trusts a size: before any array byte is read, every member must be a distinct
``.npy`` member the tree references exactly once, the declared uncompressed sizes must fit the
compressed file (``limits.MAX_RATIO``) and the metadata's byte counts, and each member's ``.npy``
header must describe exactly its declared size; then each array is read in chunks into one
allocation of the size its header gives. Nothing is unpickled: object dtypes are refused.
"""

from __future__ import annotations

import ast
import json
import math
import zipfile
from pathlib import Path
from typing import IO, Any

import numpy
from numpy.lib import format as npy_format

from gpunet.io import limits
from gpunet.io.tree import META_NAME, REF, SchemaError, collect_refs, field_name, parse_json, unflatten

FORMAT = "gpunet-checkpoint"
FORMAT_VERSION = 2
READ_VERSIONS = (1, 2)
_SUFFIX = ".npy"


class NpzError(Exception):
    """A violation: ``field`` (a member or metadata field) and what is wrong with it."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}" if field else problem)
        self.field, self.problem = field, problem


# ----- writing ----------------------------------------------------------------------------
def meta_bytes(tree: dict[str, Any], arrays: dict[str, numpy.ndarray], version: str) -> bytes:
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "gpunet_version": version,
            "arrays": {name: {"shape": list(a.shape), "nbytes": int(a.nbytes)} for name, a in arrays.items()},
            "tree": tree}
    raw = json.dumps(meta).encode("utf-8")
    if len(raw) > limits.MAX_META_BYTES:
        raise ValueError(f"save: the object's structure takes {len(raw):,} bytes of metadata, beyond the "
                         f"limit of {limits.MAX_META_BYTES:,}; store large data as arrays")
    return raw


def write(handle: IO[bytes], meta: bytes, arrays: dict[str, numpy.ndarray]) -> None:
    with zipfile.ZipFile(handle, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        _write_member(archive, META_NAME, numpy.frombuffer(meta, dtype=numpy.uint8))
        for name, array in arrays.items():
            _write_member(archive, name, array)


def _write_member(archive: zipfile.ZipFile, name: str, array: numpy.ndarray) -> None:
    with archive.open(name + _SUFFIX, "w", force_zip64=True) as member:
        npy_format.write_array(member, array, allow_pickle=False)


# ----- reading ----------------------------------------------------------------------------
def read(path: Path, arrays_too: bool = True) -> tuple[dict[str, Any], Any]:
    """``(meta, object)``: the checked metadata and the rebuilt object (``None`` unless
    ``arrays_too``). Raises :class:`NpzError` or :class:`zipfile.BadZipFile` (and OSError)."""
    size = path.stat().st_size
    with zipfile.ZipFile(path) as archive:
        members = _check_directory(archive.infolist(), size)
        meta_info = members.pop(META_NAME + _SUFFIX, None)
        if meta_info is None:
            raise NpzError("", f"not a gpunet checkpoint (no {META_NAME} entry)")
        if meta_info.file_size > limits.MAX_META_BYTES + limits.MAX_NPY_HEADER:
            raise NpzError(META_NAME, f"declares {meta_info.file_size:,} bytes, beyond the metadata limit of "
                                      f"{limits.MAX_META_BYTES:,}")
        raw = _read_member(archive, meta_info, META_NAME, expect_bytes=True).tobytes()
        meta = _check_meta(raw)
        refs = collect_refs_or_fail(meta["tree"])
        wanted = {name + _SUFFIX: (name, parts) for name, parts in refs}
        for member, (name, parts) in wanted.items():
            if member not in members:
                raise NpzError(f"tree.{field_name(parts)}", f"array reference {name!r} has no member")
        unknown = sorted(set(members) - set(wanted))
        if unknown:
            raise NpzError(unknown[0], "member is not referenced by the metadata (unknown members are refused)")
        table = meta.get("arrays")
        if table is not None:
            _check_budget(table, refs, members)
        arrays = {}
        for member, (name, _) in wanted.items():
            spec = table[name] if table is not None else None
            arrays[name] = _read_member(archive, members[member], member, spec=spec, data=arrays_too)
    return meta, unflatten(meta["tree"], arrays) if arrays_too else None


def collect_refs_or_fail(tree: Any) -> list[tuple[str, tuple[Any, ...]]]:
    try:
        return collect_refs(tree)
    except SchemaError as exc:
        raise NpzError(f"tree.{exc.field}" if exc.field else "tree", exc.problem) from exc


def _check_directory(infos: list[zipfile.ZipInfo], size: int) -> dict[str, zipfile.ZipInfo]:
    if len(infos) > limits.MAX_MEMBERS:
        raise NpzError("", f"has {len(infos):,} members, beyond the limit of {limits.MAX_MEMBERS:,}")
    members: dict[str, zipfile.ZipInfo] = {}
    for info in infos:
        name = info.filename
        if name in members:
            raise NpzError(name, "member appears twice (duplicate members are refused)")
        if not name.endswith(_SUFFIX):
            raise NpzError(name, "member is not a .npy array (only .npy members are allowed)")
        if info.flag_bits & 0x1:
            raise NpzError(name, "member is encrypted")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise NpzError(name, f"member uses compression method {info.compress_type} "
                                 f"(only stored or deflated members are read)")
        if info.file_size > limits.MAX_RATIO * info.compress_size + limits.RATIO_ALLOWANCE:
            raise NpzError(name, f"member declares {info.file_size:,} bytes uncompressed from "
                                 f"{info.compress_size:,} compressed, beyond the compression ratio limit of "
                                 f"{limits.MAX_RATIO} (a zip bomb?)")
        members[name] = info
    total = sum(info.file_size for info in infos)
    if total > limits.MAX_RATIO * size + limits.RATIO_ALLOWANCE:
        raise NpzError("", f"declares {total:,} bytes uncompressed in a file of {size:,} bytes, beyond the "
                           f"compression ratio limit of {limits.MAX_RATIO} (a zip bomb?)")
    return members


def _check_meta(raw: bytes) -> dict[str, Any]:
    try:
        meta = parse_json(raw, META_NAME, limits.MAX_DEPTH + 2)
    except SchemaError as exc:
        raise NpzError(exc.field, exc.problem) from exc
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        got = meta.get("format") if isinstance(meta, dict) else f"a JSON {type(meta).__name__}"
        raise NpzError(f"{META_NAME}.format", f"not a gpunet checkpoint (expected format {FORMAT!r}, got {got!r:.80})")
    version = meta.get("format_version")
    if type(version) is not int or version not in READ_VERSIONS:
        raise NpzError(f"{META_NAME}.format_version",
                       f"checkpoint format version {version!r:.40}, this gpunet reads versions "
                       f"{', '.join(map(str, READ_VERSIONS))}")
    if not isinstance(meta.get("gpunet_version"), (str, type(None))):
        raise NpzError(f"{META_NAME}.gpunet_version", f"expected a string, got {meta['gpunet_version']!r:.80}")
    if not isinstance(meta.get("tree"), dict) or REF in meta["tree"]:
        raise NpzError(f"{META_NAME}.tree", "expected an object tree (a JSON object that is not an array reference)")
    known = {"format", "format_version", "gpunet_version", "tree"} | ({"arrays"} if version >= 2 else set())
    extra = sorted(set(meta) - known)
    if extra:
        raise NpzError(f"{META_NAME}.{extra[0]}", "unknown metadata field")
    if version >= 2:
        table = meta.get("arrays")
        if not isinstance(table, dict):
            raise NpzError(f"{META_NAME}.arrays", "expected a JSON object of array shapes and sizes")
        for name, spec in table.items():
            where = f"{META_NAME}.arrays[{name!r:.80}]"
            if not isinstance(spec, dict) or set(spec) != {"shape", "nbytes"}:
                raise NpzError(where, "expected {'shape': [...], 'nbytes': N}")
            if not isinstance(spec["shape"], list) or not all(_count(d) for d in spec["shape"]):
                raise NpzError(f"{where}.shape", f"expected a list of sizes >= 0, got {spec['shape']!r:.80}")
            if not _count(spec["nbytes"]):
                raise NpzError(f"{where}.nbytes", f"expected a byte count >= 0, got {spec['nbytes']!r:.80}")
    return meta


def _count(value: Any) -> bool:
    return type(value) is int and value >= 0


def _check_budget(table: dict[str, Any], refs: list[tuple[str, tuple[Any, ...]]],
                  members: dict[str, zipfile.ZipInfo]) -> None:
    """Declared member sizes against the metadata's byte counts, before any member is read."""
    names = [name for name, _ in refs]
    if set(table) != set(names):
        odd = sorted(set(table) ^ set(names))[0]
        raise NpzError(f"{META_NAME}.arrays[{odd!r:.80}]", "does not match the arrays the tree references")
    for name in names:
        info, nbytes = members[name + _SUFFIX], table[name]["nbytes"]
        if not nbytes <= info.file_size <= nbytes + limits.MAX_NPY_HEADER:
            raise NpzError(name + _SUFFIX, f"member declares {info.file_size:,} bytes, the metadata "
                                           f"{nbytes:,} bytes of data")
    budget = sum(table[name]["nbytes"] for name in names) + len(names) * limits.MAX_NPY_HEADER
    declared = sum(members[name + _SUFFIX].file_size for name in names)
    if declared > budget:
        raise NpzError("", f"members declare {declared:,} bytes, beyond the {budget:,} the metadata allows")


def _exact(stream: IO[bytes], n: int, member: str, what: str) -> bytes:
    data = stream.read(n)
    if len(data) != n:
        raise NpzError(member, f"member is truncated inside its {what}")
    return data


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, member: str, spec: dict[str, Any] | None = None,
                 expect_bytes: bool = False, data: bool = True) -> Any:
    """One ``.npy`` member: header checked against the declared size, data read in chunks
    (with ``data=False``, only the header is read and ``None`` returned)."""
    with archive.open(info) as stream:
        magic = _exact(stream, 8, member, ".npy header")
        if magic[:6] != npy_format.MAGIC_PREFIX:
            raise NpzError(member, "member is not a .npy array (bad magic)")
        major = magic[6]
        if major not in (1, 2, 3):
            raise NpzError(member, f"member has .npy format version {major}.{magic[7]}")
        width = 2 if major == 1 else 4
        header_len = int.from_bytes(_exact(stream, width, member, ".npy header"), "little")
        if header_len > limits.MAX_NPY_HEADER:
            raise NpzError(member, f"member's .npy header takes {header_len:,} bytes, beyond the limit of "
                                   f"{limits.MAX_NPY_HEADER:,}")
        text = _exact(stream, header_len, member, ".npy header").decode("utf-8" if major == 3 else "latin1")
        dtype, shape, fortran = _parse_header(text, member)
        nbytes = math.prod(shape) * dtype.itemsize
        header_total = 8 + width + header_len
        if expect_bytes and (dtype != numpy.uint8 or len(shape) != 1):
            raise NpzError(member, f"expected UTF-8 bytes (a 1-d uint8 array), got {dtype} of shape {shape}")
        if spec is not None and (list(shape) != spec["shape"] or nbytes != spec["nbytes"]):
            raise NpzError(member, f"member holds shape {shape} ({nbytes:,} bytes), the metadata says "
                                   f"shape {tuple(spec['shape'])} ({spec['nbytes']:,} bytes)")
        if info.file_size != header_total + nbytes:
            raise NpzError(member, f"member declares {info.file_size:,} bytes, its .npy header describes "
                                   f"{header_total + nbytes:,} ({dtype} of shape {shape})")
        if not data:
            return None
        flat = numpy.empty(nbytes, dtype=numpy.uint8)
        done = 0
        while done < nbytes:
            chunk = stream.read(min(limits.CHUNK_BYTES, nbytes - done))
            if not chunk:
                raise NpzError(member, f"member is truncated after {done:,} of {nbytes:,} data bytes")
            flat[done:done + len(chunk)] = numpy.frombuffer(chunk, dtype=numpy.uint8)
            done += len(chunk)
        if stream.read(1):  # also where zipfile checks the CRC
            raise NpzError(member, "member holds more bytes than its header describes")
    order = "F" if fortran else "C"
    if nbytes == 0:
        return numpy.empty(shape, dtype=dtype, order=order)
    return flat.view(dtype).reshape(shape, order=order)


def _parse_header(text: str, member: str) -> tuple[numpy.dtype, tuple[int, ...], bool]:
    try:
        header = ast.literal_eval(text)
    except (SyntaxError, ValueError, TypeError, MemoryError, RecursionError) as exc:
        raise NpzError(member, f"member's .npy header is not readable ({type(exc).__name__})") from exc
    if not isinstance(header, dict) or set(header) != {"descr", "shape", "fortran_order"}:
        raise NpzError(member, f"member's .npy header is malformed: {text.strip()!r:.120}")
    shape, fortran = header["shape"], header["fortran_order"]
    if not isinstance(shape, tuple) or not all(_count(d) for d in shape) or len(shape) > 64:
        raise NpzError(member, f"member's .npy header has shape {shape!r:.80}")
    if not isinstance(fortran, bool):
        raise NpzError(member, f"member's .npy header has fortran_order {fortran!r:.40}")
    try:
        dtype = npy_format.descr_to_dtype(header["descr"])
    except (TypeError, ValueError, KeyError, IndexError) as exc:
        raise NpzError(member, f"member's .npy header has an unknown dtype {header['descr']!r:.80}") from exc
    if dtype.hasobject:
        raise NpzError(member, "member contains pickled objects; refused (they could run code)")
    return dtype, shape, fortran
