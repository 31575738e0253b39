"""Python side of the hand-written GPU kernels (CuPy RawModule over ``kernels/*.cu`` and
numba.cuda), and the dispatch that picks one per ``gpunet.config.kernels()``."""
