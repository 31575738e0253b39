"""Stand-in ``cupyx.scipy``: only the ``special`` subpackage (imported by its own name)."""

from __future__ import annotations

from cupy._module import install as _install

_install(globals(), "cupyx.scipy", {})
