"""Module faces of the stand-in: exactly the names of the manifest, resolved lazily.

``install(globals(), "cupy.linalg", impl, numpy.linalg)`` gives a stand-in module a
``__getattr__``: a name not in the real CuPy is an AttributeError; a real one resolves to the
stand-in's own implementation (``impl``), the very NumPy object where CuPy re-exports NumPy's
(dtypes, ``newaxis``, ...), the real constant, a NumPy-backed ufunc or function (strict operands,
counted), a stand-in submodule, or else raises NotImplementedError naming it.
"""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType
from typing import Any

import numpy as _np

from cupy._standin import MANIFEST, generic_function, no_such_name, not_implemented, ufunc


def resolve(qualname: str, attr: str, impl: dict[str, Any], numpy_module: ModuleType | None) -> Any:
    kinds = MANIFEST["modules"][qualname]
    kind = kinds[attr]
    if attr in impl:
        return impl[attr]
    if kind == "numpy":
        return getattr(_np, attr)
    if kind == "constant":
        return MANIFEST["constants"][qualname][attr]
    if kind == "module":
        sub = f"{qualname}.{attr}"
        if importlib.util.find_spec(sub) is not None:
            return importlib.import_module(sub)
        raise not_implemented(sub)
    found = getattr(numpy_module, attr, None) if numpy_module is not None else None
    if kind == "ufunc" and isinstance(found, _np.ufunc):
        return ufunc(found, attr)
    if kind == "function" and callable(found) and not isinstance(found, type):
        return generic_function(f"{qualname}.{attr}", found)
    raise not_implemented(f"{qualname}.{attr}")


def install(namespace: dict[str, Any], qualname: str, impl: dict[str, Any],
            numpy_module: ModuleType | None = None) -> None:
    """Give the module whose globals are ``namespace`` the manifest's names of ``qualname``."""
    kinds = MANIFEST["modules"][qualname]
    unknown = sorted(set(impl) - set(kinds))
    if unknown:
        raise AssertionError(f"stand-in {qualname} implements names CuPy lacks: {unknown}")

    namespace.pop("annotations", None) if "annotations" not in kinds else None
    extra = sorted(n for n in namespace if not n.startswith("_") and n not in kinds)
    if extra:
        raise AssertionError(f"stand-in {qualname} has public names CuPy lacks: {extra}")

    def __getattr__(attr: str) -> Any:  # noqa: N807
        if attr not in kinds:
            raise no_such_name(f"{qualname}.{attr}")
        value = resolve(qualname, attr, impl, numpy_module)
        namespace[attr] = value
        return value

    def __dir__() -> list[str]:  # noqa: N807
        return sorted(kinds)

    namespace["__getattr__"] = __getattr__
    namespace["__dir__"] = __dir__
    namespace["__version__" if qualname == "cupy" else "_standin_qualname"] = (
        MANIFEST["cupy_version"] if qualname == "cupy" else qualname)
