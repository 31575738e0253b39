"""gpunet: train neural networks on an NVIDIA GPU through CuPy, or on a CPU through NumPy,
from one model codebase. ``gpunet.use("auto" | "numpy" | "cupy")`` picks where arrays live.

After a plain ``import gpunet`` every subpackage is an attribute: the core (``autograd``,
``backend``, ``config``, ``dtypes``, ``functional``, ``io``, ``nn``, ``optim``, ``random``,
``testing``) is imported eagerly; the rest (``_LAZY_SUBMODULES``: ``data``, ``models``,
``bench``, ...) on first attribute access (PEP 562), so that ``import gpunet`` stays fast.
"""

try:
    from gpunet import _startup  # noqa: F401  (first: a Ctrl-C while the `gpunet` command starts is one line)
except KeyboardInterrupt:  # the Ctrl-C came while Python looked _startup up: in the command, one line too
    from gpunet import _startup

    _startup.interrupted_while_starting()

# isort: split
from gpunet import autograd, backend, config, creation, dtypes, functional, io, nn, optim, random, testing
from gpunet import torch_functions as _torch_functions
from gpunet.autograd import (
    Function,
    OpError,
    Tensor,
    enable_grad,
    inference_mode,
    is_grad_enabled,
    no_grad,
    set_grad_enabled,
    tensor,
)
from gpunet.backend import (
    BackendError,
    DeviceMismatchError,
    get_array_module,
    gpu_status,
    to_numpy,
    use,
)
from gpunet.backend import current as current_backend
from gpunet.creation import (
    arange,
    empty,
    empty_like,
    eye,
    from_numpy,
    full,
    full_like,
    is_tensor,
    linspace,
    ones,
    ones_like,
    rand,
    rand_like,
    randint,
    randint_like,
    randn,
    randn_like,
    randperm,
    zeros,
    zeros_like,
)
from gpunet.dtypes import (
    default_dtype,
    double,
    float16,
    float32,
    float64,
    half,
    int8,
    int16,
    int32,
    int64,
    long,
    set_default_dtype,
    short,
    uint8,
)
from gpunet.dtypes import default_dtype as get_default_dtype
from gpunet.functional import cat, stack, where
from gpunet.functional import cat as concat
from gpunet.io import CheckpointError, load, save
from gpunet.random import manual_seed
from gpunet.settings import get_num_threads, set_num_threads, using
from gpunet.version import __version__

globals().update({_name: getattr(_torch_functions, _name) for _name in _torch_functions.__all__})

# Imported on first access as ``gpunet.<name>``. A name whose module is not in this build (e.g.
# ``training`` or ``ops`` before those packages land) gives AttributeError; dir() leaves it out.
_LAZY_SUBMODULES = ("bench", "cuda", "data", "diagnostics", "models", "plotting", "summary",
                    "training", "visualize")


def _lazy_is_present(name: str) -> bool:
    """Whether ``gpunet.<name>`` exists in this package's own folder. Only ``__path__`` is
    searched: an editable install's finder would otherwise find a module of another checkout."""
    from importlib.machinery import PathFinder

    return name in globals() or PathFinder.find_spec(f"{__name__}.{name}", __path__) is not None


def __getattr__(name: str):
    if name in _LAZY_SUBMODULES:
        import importlib

        if not _lazy_is_present(name):
            raise AttributeError(f"module {__name__!r} has no attribute {name!r} "
                                 f"({__name__}.{name} is not part of this installation)")
        try:
            module = importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{name}":  # the module exists but one of its imports is missing
                raise
            raise AttributeError(f"module {__name__!r} has no attribute {name!r} "
                                 f"({__name__}.{name} could not be imported)") from None
        globals()[name] = module
        return module
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | {n for n in _LAZY_SUBMODULES if _lazy_is_present(n)})


__all__ = [
    "BackendError", "CheckpointError", "DeviceMismatchError", "Function", "OpError", "Tensor", "autograd",
    "backend", "config", "current_backend", "default_dtype", "dtypes", "functional", "get_array_module",
    "gpu_status", "io", "is_grad_enabled", "load", "manual_seed", "nn", "no_grad", "optim", "random", "save",
    "set_default_dtype",
    "set_num_threads", "get_num_threads", "tensor", "testing", "to_numpy", "use", "using", "enable_grad", "__version__",
]
__all__ += list(_torch_functions.__all__)
__all__ += [
    "arange", "cat", "concat", "creation", "empty", "empty_like", "eye", "from_numpy", "full", "full_like",
    "get_default_dtype", "inference_mode", "is_tensor", "linspace", "ones", "ones_like", "rand", "rand_like",
    "randint", "randint_like", "randn", "randn_like", "randperm", "set_grad_enabled", "stack", "where", "zeros",
    "zeros_like",
]
__all__ += ["bool", "double", "float", "float16", "float32", "float64", "half", "int", "int8", "int16", "int32",
            "int64", "long", "short", "uint8"]

# PyTorch's dtype names that are also builtins; last, so that nothing above sees them.
from gpunet.dtypes import bool_ as bool  # noqa: E402
from gpunet.dtypes import float_ as float  # noqa: E402
from gpunet.dtypes import int_ as int  # noqa: E402
