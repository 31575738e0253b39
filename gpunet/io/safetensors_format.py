"""safetensors files (https://github.com/huggingface/safetensors), read and written by gpunet itself.

Layout: an 8-byte little-endian header length N, N bytes of JSON ``{name: {"dtype", "shape",
"data_offsets": [begin, end]}, "__metadata__": {str: str}}`` (padded with spaces), then the
tensors' little-endian C-order bytes, which the offsets must tile exactly. The format is a page
long and has no code in it, so gpunet needs no package to use it; the tests check the files
against the ``safetensors`` package both ways.

gpunet adds ``gpunet_crc32`` to ``__metadata__``: a CRC-32 of the tensor entries and the data,
checked when present, so a flipped bit in a file gpunet wrote is refused (files from elsewhere
carry no checksum and load unchecked, as with any safetensors reader). ``BF16`` tensors, which
NumPy cannot hold, come back as float32 (exactly); the 8-bit and smaller float types are refused.
"""

from __future__ import annotations

import difflib
import json
import math
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

import numpy

from gpunet.io import limits
from gpunet.io.tree import SchemaError, as_host_array, parse_json

_TO_NUMPY = {"BOOL": "|b1", "U8": "|u1", "I8": "|i1", "U16": "<u2", "I16": "<i2", "F16": "<f2",
             "U32": "<u4", "I32": "<i4", "F32": "<f4", "U64": "<u8", "I64": "<i8", "F64": "<f8", "C64": "<c8"}
_FROM_NUMPY = {numpy.dtype(v).newbyteorder("=") if numpy.dtype(v).byteorder != "|" else numpy.dtype(v): k
               for k, v in _TO_NUMPY.items()}
_UNSUPPORTED = ("F8_E4M3", "F8_E5M2", "F8_E8M0", "F6_E2M3", "F6_E3M2", "F4")
METADATA = "__metadata__"
CHECKSUM = "gpunet_crc32"


class SafetensorsError(Exception):
    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}" if field else problem)
        self.field, self.problem = field, problem


def _entries_bytes(entries: dict[str, Any]) -> bytes:
    return json.dumps(entries, sort_keys=True, separators=(",", ":")).encode("utf-8")


# ----- writing ----------------------------------------------------------------------------
def prepare(obj: Any) -> dict[str, numpy.ndarray]:
    """The arrays to write: a flat mapping of names to arrays/tensors, little-endian, C order."""
    if not isinstance(obj, Mapping):
        raise TypeError(f"save: a .safetensors file holds a mapping of names to arrays (a state_dict), "
                        f"got a {type(obj).__name__}")
    out = {}
    for name, value in obj.items():
        if not isinstance(name, str):
            raise TypeError(f"save: expected string keys, got {name!r} ({type(name).__name__})")
        if name == METADATA:
            raise TypeError(f"save: the key {METADATA!r} is reserved by the safetensors format")
        array = as_host_array(value)
        if array is None:
            raise TypeError(f"save: {name!r} is a {type(value).__name__}; a .safetensors file holds only arrays "
                            f"(save optimizer or training state, which hold numbers and nesting, to a .npz)")
        native = array.dtype.newbyteorder("=") if array.dtype.byteorder not in "|=" else array.dtype
        if native not in _FROM_NUMPY:
            raise TypeError(f"save: {name!r} has dtype {array.dtype}, which safetensors cannot hold "
                            f"(it holds {', '.join(sorted(_TO_NUMPY))}); save it to a .npz instead")
        out[name] = numpy.asarray(array, dtype=numpy.dtype(_TO_NUMPY[_FROM_NUMPY[native]]), order="C")
    return out


def write(handle: IO[bytes], arrays: dict[str, numpy.ndarray], version: str) -> None:
    entries, offset = {}, 0
    for name, array in arrays.items():
        entries[name] = {"dtype": _FROM_NUMPY[array.dtype.newbyteorder("=") if array.dtype.byteorder != "|"
                                              else array.dtype],
                         "shape": list(array.shape), "data_offsets": [offset, offset + array.nbytes]}
        offset += array.nbytes
    crc = zlib.crc32(_entries_bytes(entries))
    for array in arrays.values():
        crc = zlib.crc32(_raw(array), crc)
    header = json.dumps({METADATA: {"format": "pt", "gpunet_version": version, CHECKSUM: f"{crc:08x}"},
                         **entries}, separators=(",", ":")).encode("utf-8")
    # Data starts 8-byte aligned, as the reference writer pads it. ``ljust`` fills with a C-level
    # space: a CI run once saw ``b" " * n`` give NUL bytes (the cached one-byte object corrupted,
    # likely by out-of-bounds native code elsewhere in that test process).
    header = header.ljust(len(header) + (-(8 + len(header)) % 8))
    if len(header) > limits.MAX_SAFETENSORS_HEADER:
        raise ValueError(f"save: the safetensors header would take {len(header):,} bytes, beyond the limit "
                         f"of {limits.MAX_SAFETENSORS_HEADER:,}")
    handle.write(len(header).to_bytes(8, "little"))
    handle.write(header)
    for array in arrays.values():
        handle.write(_raw(array))


def _raw(array: numpy.ndarray) -> memoryview:
    return memoryview(array.reshape(-1).view(numpy.uint8))


# ----- reading ----------------------------------------------------------------------------
def looks_like(head: bytes) -> bool:
    """Whether a file starting with ``head`` (>= 9 bytes) is plausibly safetensors."""
    return len(head) >= 9 and head[8:9] == b"{" and 2 <= int.from_bytes(head[:8], "little") <= \
        limits.MAX_SAFETENSORS_HEADER


def read(path: Path, arrays_too: bool = True) -> tuple[dict[str, Any], dict[str, numpy.ndarray] | None]:
    """``(header info, arrays in data order)``; raises :class:`SafetensorsError` naming the field."""
    size = path.stat().st_size
    with open(path, "rb") as handle:
        head = handle.read(8)
        if len(head) < 8:
            raise SafetensorsError("", "truncated inside the 8-byte header length")
        n = int.from_bytes(head, "little")
        if n > limits.MAX_SAFETENSORS_HEADER:
            raise SafetensorsError("header", f"declares {n:,} bytes, beyond the limit of "
                                             f"{limits.MAX_SAFETENSORS_HEADER:,}")
        if 8 + n > size:
            raise SafetensorsError("header", f"declares {n:,} bytes, the file has only {size - 8:,} after the length "
                                             f"(truncated?)")
        try:
            header = parse_json(handle.read(n), "header", 3)
        except SchemaError as exc:
            raise SafetensorsError(exc.field, exc.problem) from exc
        if not isinstance(header, dict):
            raise SafetensorsError("header", f"expected a JSON object, got a {type(header).__name__}")
        metadata = header.pop(METADATA, None)
        if metadata is not None and (not isinstance(metadata, dict) or not all(
                isinstance(v, str) for v in metadata.values())):
            raise SafetensorsError(METADATA, "expected a JSON object of strings")
        layout = [(name, *_check_entry(name, entry)) for name, entry in header.items()]
        layout.sort(key=lambda item: item[3])
        data_size, position = size - 8 - n, 0
        for name, _, _, begin, end in layout:
            if begin != position:
                raise SafetensorsError(f"{name!r}.data_offsets", f"starts at {begin:,}, expected {position:,} (the "
                                                                 f"tensors must tile the data, no gaps or overlaps)")
            position = end
        if position != data_size:
            raise SafetensorsError("data", f"the tensors take {position:,} bytes, the file holds {data_size:,} "
                                           f"after the header (truncated or padded)")
        info = {"format": "safetensors", "metadata": dict(metadata or {}),
                "tensors": {name: {"dtype": code, "shape": list(shape)} for name, code, shape, _, _ in layout}}
        if not arrays_too:
            return info, None
        crc = zlib.crc32(_entries_bytes({k: header[k] for k in sorted(header)}))
        arrays = {}
        for name, code, shape, begin, end in layout:
            flat = numpy.empty(end - begin, dtype=numpy.uint8)
            view, done = memoryview(flat), 0
            while done < len(flat):
                got = handle.readinto(view[done:done + limits.CHUNK_BYTES])
                if not got:
                    raise SafetensorsError(f"{name!r}", "truncated inside its data")
                done += got
            crc = zlib.crc32(view, crc)
            arrays[name] = _to_array(flat, code, shape)
    expected = (metadata or {}).get(CHECKSUM)
    if expected is None and _written_by_gpunet(metadata or {}):
        raise SafetensorsError(f"{METADATA}.{CHECKSUM}", "missing from metadata that gpunet wrote (keys "
                                                        f"{sorted(metadata or {})!r:.80}): the file was altered")
    if expected is not None and expected != f"{crc:08x}":
        raise SafetensorsError(f"{METADATA}.{CHECKSUM}", f"checksum mismatch (file says {expected:.16}, data gives "
                                                        f"{crc:08x}): the file was altered")
    return info, arrays


def _check_entry(name: str, entry: Any) -> tuple[str, tuple[int, ...], int, int]:
    if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
        raise SafetensorsError(f"{name!r}", "expected {'dtype', 'shape', 'data_offsets'}")
    code, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
    if code in _UNSUPPORTED or code == "BF16":
        itemsize = {"BF16": 2}.get(code)
        if itemsize is None:
            raise SafetensorsError(f"{name!r}.dtype", f"{code} has no NumPy equivalent; convert the tensor to F16, "
                                                      f"BF16 or F32 before loading it with gpunet")
    elif code in _TO_NUMPY:
        itemsize = numpy.dtype(_TO_NUMPY[code]).itemsize
    else:
        raise SafetensorsError(f"{name!r}.dtype", f"unknown dtype {code!r:.40}")
    if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape):
        raise SafetensorsError(f"{name!r}.shape", f"expected a list of sizes >= 0, got {shape!r:.80}")
    if (not isinstance(offsets, list) or len(offsets) != 2 or not all(type(o) is int and o >= 0 for o in offsets)
            or offsets[0] > offsets[1]):
        raise SafetensorsError(f"{name!r}.data_offsets", f"expected [begin, end] with 0 <= begin <= end, got "
                                                         f"{offsets!r:.80}")
    if offsets[1] - offsets[0] != math.prod(shape) * itemsize:
        raise SafetensorsError(f"{name!r}.data_offsets", f"span {offsets[1] - offsets[0]:,} bytes, shape {shape} "
                                                         f"of {code} needs {math.prod(shape) * itemsize:,}")
    return code, tuple(shape), offsets[0], offsets[1]


def _written_by_gpunet(metadata: dict[str, Any]) -> bool:
    """Whether a metadata key is (or is a few bytes from) one gpunet writes: a damaged checksum key
    must not turn a gpunet file into an unchecked foreign one."""
    return any(difflib.SequenceMatcher(None, key, mark).ratio() >= 0.6
               for key in metadata for mark in (CHECKSUM, "gpunet_version"))


def _to_array(flat: numpy.ndarray, code: str, shape: tuple[int, ...]) -> numpy.ndarray:
    if code == "BF16":  # the upper half of a float32: exact
        halves = flat.view("<u2").astype(numpy.uint32)
        return (halves << 16).view(numpy.float32).reshape(shape)
    dtype = numpy.dtype(_TO_NUMPY[code])
    if not flat.size:
        return numpy.empty(shape, dtype=dtype)
    return flat.view(dtype).reshape(shape)
