"""Stand-in ``cupy.linalg`` over ``numpy.linalg``."""

import numpy as _np

from cupy._module import install as _install

_install(globals(), "cupy.linalg", {}, _np.linalg)
