"""Stand-in ``cupy.lib``."""

from cupy._module import install as _install

_install(globals(), "cupy.lib", {})
