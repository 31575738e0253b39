"""gpunet: train neural networks on an NVIDIA GPU through CuPy, or on a CPU through NumPy,
from one model codebase. ``gpunet.use("auto" | "numpy" | "cupy")`` picks where arrays live."""

from gpunet import config, functional, nn, optim
from gpunet.autograd import Function, OpError, Tensor, is_grad_enabled, no_grad
from gpunet.backend import (
    BackendError,
    DeviceMismatchError,
    get_array_module,
    gpu_status,
    to_numpy,
    use,
)
from gpunet.backend import current as current_backend
from gpunet.dtypes import default_dtype, set_default_dtype
from gpunet.io import CheckpointError, load, save
from gpunet.random import manual_seed
from gpunet.settings import using

__version__ = "0.1.0"


def tensor(data, dtype=None, requires_grad: bool = False) -> Tensor:
    """A Tensor on the active backend; floats default to ``default_dtype()`` (float32)."""
    import numpy

    from gpunet import backend

    host = backend.to_numpy(data.data if isinstance(data, Tensor) else data)
    if dtype is None and host.dtype.kind == "f":
        dtype = default_dtype()
    if dtype is not None:
        host = host.astype(dtype)
    return Tensor(backend.xp().asarray(numpy.ascontiguousarray(host)), requires_grad=requires_grad)


__all__ = [
    "BackendError", "CheckpointError", "DeviceMismatchError", "Function", "OpError", "Tensor", "config",
    "current_backend", "default_dtype", "functional", "get_array_module", "gpu_status", "is_grad_enabled",
    "load", "manual_seed", "nn", "no_grad", "optim", "save", "set_default_dtype", "tensor", "to_numpy", "use", "using",
    "__version__",
]
