"""The API manifest of the strict CuPy stand-in, generated from the installed (real) CuPy.

``python tests/standin/manifest.py`` rewrites ``cupy_manifest.json`` from the CuPy installed in
the running interpreter (it only imports CuPy; no GPU is needed). The stand-in exposes exactly
the names listed there; ``tests/test_standin_manifest.py`` regenerates it and shows drift as a
diff. Run it with the real CuPy first on ``sys.path`` (never with the stand-in's folder).
``cupy.cuda.nccl`` is recorded only where NCCL loads (no GPU needed: ``pip install --target DIR
nvidia-nccl-cu12``, then ``PYTHONPATH=DIR``); where it does not, that module holds only
``available = False`` and the committed entries for it are kept as they are.
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PATH = HERE / "cupy_manifest.json"

#: The modules whose names the stand-in mirrors (those gpunet uses, plus their neighbours).
MODULES = ("cupy", "cupy.cuda", "cupy.cuda.runtime", "cupy.cuda.nccl", "cupy.lib", "cupy.lib.stride_tricks",
           "cupy.random", "cupy.linalg", "cupyx", "cupyx.scipy", "cupyx.scipy.special")
NCCL = "cupy.cuda.nccl"
#: Classes whose attribute names are recorded (``dir()``, dunders included).
CLASSES = ("cupy.ndarray", "cupy.ufunc", "cupy.RawModule", "cupy.RawKernel", "cupy.cuda.Device",
           "cupy.cuda.Stream", "cupy.cuda.MemoryPointer", "cupy.cuda.nccl.NcclCommunicator")


def _kind(obj: Any, name: str) -> str:
    import numpy

    if obj is numpy.__dict__.get(name, object()) and not isinstance(obj, (int, float, bool)):
        return "numpy"          # the very NumPy object (dtypes, finfo, newaxis, ...)
    if type(obj).__name__ in ("ufunc",):
        return "ufunc"
    if isinstance(obj, type):
        return "class"
    if type(obj).__name__ in ("module", "_LazyModule"):
        return "module"
    if callable(obj):
        return "function"
    if isinstance(obj, (int, float, bool, str, type(None))):
        return "constant"
    return "other"


def _attr(path: str) -> Any:
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)


def generate() -> dict[str, Any]:
    """The manifest of the CuPy importable in this interpreter."""
    cupy = importlib.import_module("cupy")
    if getattr(cupy, "_is_standin", False):
        raise RuntimeError("manifest.generate(): 'cupy' is the stand-in; run with the real CuPy")
    modules: dict[str, dict[str, str]] = {}
    constants: dict[str, dict[str, Any]] = {}
    for name in MODULES:  # import every listed module first: a parent then lists its lazy children
        importlib.import_module(name)
    for name in MODULES:
        mod = importlib.import_module(name)
        names = {}
        values = constants.setdefault(name, {})
        for attr in dir(mod):
            if attr.startswith("_") and attr != "__version__":
                continue
            try:
                obj = getattr(mod, attr)
            except Exception:  # a lazy attribute that needs a GPU: still a real name
                names[attr] = "other"
                continue
            names[attr] = _kind(obj, attr)
            if names[attr] == "constant":
                values[attr] = obj
        modules[name] = dict(sorted(names.items()))
    nccl_seen = importlib.import_module(NCCL).available
    classes = {name: sorted(dir(_attr(name))) for name in CLASSES if nccl_seen or not name.startswith(NCCL)}
    if not nccl_seen and PATH.exists():
        committed = load()  # this CuPy cannot load NCCL: its names cannot be seen here
        modules[NCCL] = committed["modules"].get(NCCL, modules[NCCL])
        constants[NCCL] = committed["constants"].get(NCCL, constants[NCCL])
        classes.update({k: v for k, v in committed["classes"].items() if k.startswith(NCCL)})
    return {"cupy_version": cupy.__version__, "modules": modules, "classes": classes,
            "constants": {k: v for k, v in constants.items() if v}}


def dumps(manifest: dict[str, Any]) -> str:
    return json.dumps(manifest, indent=1, sort_keys=True) + "\n"


def load() -> dict[str, Any]:
    return json.loads(PATH.read_text(encoding="utf-8"))


if __name__ == "__main__":
    # the script's own folder (sys.path[0]) holds the stand-in: drop it to see the real CuPy
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
    PATH.write_text(dumps(generate()), encoding="utf-8")
    print(f"wrote {PATH}")
