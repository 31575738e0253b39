"""gpunet: train neural networks on an NVIDIA GPU through CuPy, or on a CPU through NumPy,
from one model codebase. ``gpunet.use("auto" | "numpy" | "cupy")`` picks where arrays live."""

from gpunet import config, functional, nn, optim
from gpunet.autograd import Function, OpError, Tensor, is_grad_enabled, no_grad, tensor
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
from gpunet.version import __version__

__all__ = [
    "BackendError", "CheckpointError", "DeviceMismatchError", "Function", "OpError", "Tensor", "config",
    "current_backend", "default_dtype", "functional", "get_array_module", "gpu_status", "is_grad_enabled",
    "load", "manual_seed", "nn", "no_grad", "optim", "save", "set_default_dtype", "tensor", "to_numpy", "use", "using",
    "__version__",
]
