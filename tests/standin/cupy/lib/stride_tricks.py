"""Stand-in ``cupy.lib.stride_tricks`` (``as_strided`` makes a view: no device work)."""

import numpy as _np

from cupy._module import install as _install

_install(globals(), "cupy.lib.stride_tricks", {}, _np.lib.stride_tricks)
