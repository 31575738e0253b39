"""Kernel tests: on a machine without a GPU, numba.cuda runs on its simulator.

numba.cuda picks the simulator or the real target once, when it is first imported, from
``NUMBA_ENABLE_CUDASIM``. Set it here (never by importing gpunet) only when no GPU is usable and
numba.cuda is not imported yet; test_numba_sim.py falls back to a subprocess otherwise.
"""

from __future__ import annotations

import os
import sys

from gpunet.backend import gpu_status


def _use_cudasim_without_gpu() -> None:
    if "numba.cuda" in sys.modules or gpu_status()[0]:
        return
    os.environ["NUMBA_ENABLE_CUDASIM"] = "1"
    if "numba" in sys.modules:  # numba's config already read the environment: re-read it
        from numba.core import config

        config.reload_config()


_use_cudasim_without_gpu()
