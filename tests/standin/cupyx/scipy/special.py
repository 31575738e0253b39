"""Stand-in ``cupyx.scipy.special``: the manifest's ufuncs (``erf`` ...) as device ufuncs over
SciPy's (SciPy is in the test extra); a name SciPy lacks raises the stand-in's not-implemented."""

from __future__ import annotations

from cupy._module import install as _install

try:
    from scipy import special as _special
except ImportError:  # pragma: no cover - without SciPy every name is "not implemented"
    _special = None

_install(globals(), "cupyx.scipy.special", {}, _special)
