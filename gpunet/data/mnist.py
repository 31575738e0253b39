"""MNIST from IDX files the user already has (nothing is downloaded).

``data_dir`` holds ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
``t10k-images-idx3-ubyte`` and ``t10k-labels-idx1-ubyte``, each optionally gzipped (``.gz``)
or named with a dot before ``idx`` (``train-images.idx3-ubyte``). Images come back as float32
NCHW ``(N, 1, 28, 28)`` in [0, 1] and labels as int64; MNIST's own train/test split is kept.
"""

from __future__ import annotations

import gzip
import math
import zlib
from pathlib import Path
from typing import Any

import numpy

from gpunet.data.dataset import ArrayDataset, Split

IMAGES_MAGIC, LABELS_MAGIC = 2051, 2049  # 0x00000803 (ubyte, 3 dims), 0x00000801 (ubyte, 1 dim)
FILES = {"train": ("train-images", "train-labels"), "test": ("t10k-images", "t10k-labels")}


class IDXError(ValueError):
    """A file is not a valid MNIST IDX file (says which file and what is wrong)."""


def find_file(data_dir: Path, stem: str, kind: str) -> Path:
    """The first existing ``stem-{kind}-ubyte[.gz]`` / ``stem.{kind}-ubyte[.gz]`` in ``data_dir``."""
    names = [f"{stem}{sep}{kind}-ubyte{ext}" for sep in ("-", ".") for ext in ("", ".gz")]
    for name in names:
        if (data_dir / name).is_file():
            return data_dir / name
    raise FileNotFoundError(f"mnist: none of {names} found in {data_dir}")


#: Decompressed bytes allowed per compressed byte of a ``.gz`` (MNIST compresses about 6:1).
MAX_GZIP_RATIO = 100
#: Bytes of one IDX file (MNIST's largest is 47 MB).
MAX_IDX_BYTES = 2**32


def read_idx(path: str | Path, magic: int) -> numpy.ndarray:
    """An unsigned-byte IDX array, checking the magic number and that the size fits the header.

    Every problem (not gzip, truncated, sizes that do not match the header, unreadable) is an
    :class:`IDXError` naming the file; a ``.gz`` is decompressed in bounded chunks, never beyond
    the size its header announces.
    """
    path = Path(path)
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as stream:
                raw = _read_bounded(stream, path, path.stat().st_size * MAX_GZIP_RATIO + 2**16)
        else:
            raw = path.read_bytes()
    except IDXError:
        raise
    except (gzip.BadGzipFile, zlib.error) as exc:
        raise IDXError(f"mnist: {path} is not a valid gzip file ({exc})") from exc
    except EOFError as exc:
        raise IDXError(f"mnist: {path} is a truncated gzip file ({exc})") from exc
    except OSError as exc:
        raise IDXError(f"mnist: cannot read {path} ({type(exc).__name__}: {exc})") from exc
    if len(raw) < 4 or int.from_bytes(raw[:4], "big") != magic:
        got = int.from_bytes(raw[:4], "big") if len(raw) >= 4 else None
        raise IDXError(f"mnist: {path} has magic number {got}, expected {magic} "
                       f"({'images' if magic == IMAGES_MAGIC else 'labels'} IDX file)")
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise IDXError(f"mnist: {path} is truncated inside its {header}-byte header")
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    expected = header + math.prod(shape)  # Python integers: no overflow
    if len(raw) != expected:
        raise IDXError(f"mnist: {path} has {len(raw)} bytes, expected {expected} for shape {shape}")
    return numpy.frombuffer(raw, dtype=numpy.uint8, offset=header).reshape(shape)


def _read_bounded(stream: Any, path: Path, limit: int) -> bytes:
    """All of ``stream``, refusing (before reading on) more than its header announces or ``limit``."""
    head = stream.read(16)
    if len(head) >= 4:
        ndim = head[3]
        dims = stream.read(max(0, 4 + 4 * ndim - len(head)))
        head += dims
        if ndim in (1, 3) and len(head) >= 4 + 4 * ndim:
            announced = 4 + 4 * ndim + math.prod(int.from_bytes(head[4 + 4 * i: 8 + 4 * i], "big")
                                                 for i in range(ndim))
            limit = min(limit, announced)
    limit = min(limit, MAX_IDX_BYTES)
    chunks, total = [head], len(head)
    while True:
        if total > limit:
            raise IDXError(f"mnist: {path} decompresses to more than {limit:,} bytes, beyond what its header "
                           f"announces (or a ratio of {MAX_GZIP_RATIO}:1)")
        chunk = stream.read(min(2**20, limit + 1 - total))
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        total += len(chunk)


def read_split(data_dir: str | Path, split: str, dtype: str = "float32") -> ArrayDataset:
    """One MNIST split (``"train"`` or ``"test"``) as images ``(N, 1, H, W)`` and labels."""
    folder = Path(data_dir)
    images_stem, labels_stem = FILES[split]
    images = read_idx(find_file(folder, images_stem, "idx3"), IMAGES_MAGIC)
    labels = read_idx(find_file(folder, labels_stem, "idx1"), LABELS_MAGIC)
    if len(images) == 0:
        raise IDXError(f"mnist: the {split} split in {folder} has no images")
    if len(images) != len(labels):
        raise IDXError(f"mnist: {split} split has {len(images)} images but {len(labels)} labels")
    if labels.size and labels.max() > 9:
        raise IDXError(f"mnist: {split} labels must lie in 0..9, found {int(labels.max())}")
    x = (images.astype(dtype) / 255.0).astype(dtype)[:, None]
    return ArrayDataset(x, labels.astype(numpy.int64))


def load(seed: int = 0, data_dir: str | Path | None = None, dtype: str = "float32") -> Split:
    """MNIST's train and test splits from ``data_dir`` (``seed`` is unused: the split is fixed)."""
    if data_dir is None:
        raise FileNotFoundError("mnist: pass data_dir (--data-dir) pointing at a folder with the MNIST IDX "
                                "files (train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz], "
                                "t10k-images-idx3-ubyte[.gz], t10k-labels-idx1-ubyte[.gz])")
    if not Path(data_dir).is_dir():
        raise FileNotFoundError(f"mnist: data_dir {data_dir} is not a folder")
    train, test = read_split(data_dir, "train", dtype), read_split(data_dir, "test", dtype)
    info = {"name": "mnist", "num_classes": 10, "input_shape": tuple(train.arrays[0].shape[1:]),
            "classes": [str(k) for k in range(10)], "source": str(data_dir)}
    return Split(train, test, info)
