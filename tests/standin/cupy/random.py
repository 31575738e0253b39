"""Stand-in ``cupy.random``: NumPy's generators (not CuPy's streams: values differ from a GPU)."""

import numpy as _np

from cupy._module import install as _install

_install(globals(), "cupy.random", {}, _np.random)
