"""Python side of the hand-written GPU kernels: CuPy RawModule launchers over ``kernels/*.cu``
(:mod:`raw_ops`) and numba.cuda kernels (:mod:`numba_ops`). They register in
:mod:`gpunet.ops.catalog`; nothing in the op layer imports them."""
