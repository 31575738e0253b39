"""The constants of the CUDA C kernels (``kernels/*.cu``) that the Python launchers rely on, in
one place.

:mod:`gpunet.cuda.raw_ops` sizes its grids from these values, and they must equal the
``constexpr`` / ``#define`` values compiled into the kernels: :data:`SOURCE_CONSTANTS` lists,
per source file, the names there and the values Python assumes, and :func:`mismatches` (run by
``tests/kernels/test_kernel_constants.py``) reads the sources and reports any disagreement.

The numba.cuda kernels have their own tile shapes on purpose (``numba_conv.Tiles``,
``numba_cells.THREADS``/``MAX_BLOCKS``); ``kernels/README.md`` lists the differences.
"""

from __future__ import annotations

import re

# conv2d.cu: one 256-thread block owns a TILE x TILE tile of C and steps K by TILE_K.
THREADS = 256            # block size of every raw kernel (conv2d.cu THREADS; rnn_cells.cu launches)
TILE = 64                # conv2d output tile, rows (BM) and columns (BN)
TILE_K = 16              # conv2d reduction step (BK)
MICRO_TILE = 4           # conv2d register micro-tile per thread, rows (TM) and columns (TN)
MAX_SPLITS = 32          # split-K: at most this many partial results per output (launcher policy)

# rnn_cells.cu
SEQ_MAX_H = 1024         # hidden size limit of the whole-sequence kernels (shared memory)

# CUDA / indexing limits the launchers respect (not constants of the sources).
MAX_GRID_Y = 65535
MAX_INT = 2**31 - 1      # kernels index tiles with 32-bit ints
CELL_BLOCKS = 65535      # cap for the grid-stride elementwise kernels
POOL_MAX_PLANE = 2**24   # pool.cu keeps argmax positions in the array's dtype (exact in float32)

#: ``{source file: {name in the source: value Python assumes}}``.
SOURCE_CONSTANTS: dict[str, dict[str, int]] = {
    "conv2d.cu": {"BM": TILE, "BN": TILE, "BK": TILE_K, "TM": MICRO_TILE, "TN": MICRO_TILE,
                  "THREADS": THREADS},
    "rnn_cells.cu": {"SEQ_MAX_H": SEQ_MAX_H},
    "pool.cu": {"THREADS": THREADS},
    "fused.cu": {"THREADS": THREADS},
}

_CONSTEXPR = re.compile(r"^\s*(?:static\s+)?constexpr\s+(?:unsigned\s+|long\s+)*(?:int|long|unsigned)?\s*"
                        r"(\w+)\s*=\s*([-+*/()\s\w]+?)\s*;", re.MULTILINE)
_DEFINE = re.compile(r"^\s*#\s*define\s+(\w+)\s+\(?\s*(-?\d+)\s*\)?\s*$", re.MULTILINE)
_COMMENT = re.compile(r"//[^\n]*|/\*.*?\*/", re.DOTALL)


def parse_constants(source: str) -> dict[str, int]:
    """``{name: value}`` of the integer ``constexpr`` and object-like ``#define`` constants of a
    CUDA C source (expressions over earlier constants, such as ``BM / TM``, are evaluated)."""
    text = _COMMENT.sub("", source)
    found: dict[str, int] = {}
    for name, value in _DEFINE.findall(text):
        found[name] = int(value)
    for name, expr in _CONSTEXPR.findall(text):
        names = re.findall(r"[A-Za-z_]\w*", expr)
        if all(n in found for n in names):
            found[name] = int(eval(expr.replace("/", "//"), {"__builtins__": {}}, dict(found)))  # C int division
    return found


def mismatches(file_name: str, source: str) -> list[str]:
    """Every way ``source`` (the text of ``file_name``) disagrees with :data:`SOURCE_CONSTANTS`."""
    found = parse_constants(source)
    problems = []
    for name, want in SOURCE_CONSTANTS[file_name].items():
        if name not in found:
            problems.append(f"{file_name}: constant {name} not found (Python assumes {want})")
        elif found[name] != want:
            problems.append(f"{file_name}: {name} = {found[name]} in the source, Python assumes {want}")
    return problems
