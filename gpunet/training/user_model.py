"""A user's own model and data as a recipe: ``gpunet train FILE.py:FUNC --data FILE.npz``.

``FUNC()`` (imported from FILE.py by its path) returns a :class:`~gpunet.nn.Module`; the ``.npz``
holds ``x`` and ``y`` and optionally ``x_test`` and ``y_test`` (else a seeded 20% test split).
Integer ``y`` means classification (cross-entropy, accuracy), floating ``y`` regression (MSE).
:func:`prepare_user_run` gives the same (recipe, split, model) triple as the built-in recipes, and
``runs.recipe_trainer`` hands it to the one :class:`~gpunet.training.Trainer` (checkpoints, resume). Every problem is a
:class:`UsageError` raised before any training.
"""

from __future__ import annotations

import hashlib
import importlib.util
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy

from gpunet.data import ArrayDataset, Split, train_test_split
from gpunet.nn.module import Module
from gpunet.training.errors import UsageError
from gpunet.training.recipes import Recipe

TEST_FRACTION = 0.2
KEYS = ("x", "y", "x_test", "y_test")


def is_model_file(model: str) -> bool:
    """Whether MODEL names a file (``FILE.py:FUNC``) rather than a built-in recipe."""
    return ":" in model or model.endswith(".py")


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def parse_model(model: str) -> tuple[Path, str]:
    """``FILE.py:FUNC`` -> (the file, the function name), refusing a missing file or function name."""
    file, colon, func = model.rpartition(":")
    if not colon:
        raise UsageError(f"expected FILE.py:FUNC (the function that returns the model), got {model!r}",
                         param_hint="MODEL")
    if not func.isidentifier():
        raise UsageError(f"expected a function name after ':' in {model!r}, got {func!r}", param_hint="MODEL")
    path = Path(file)
    if path.suffix != ".py":
        raise UsageError(f"expected a Python file (.py) before ':{func}', got {file!r}", param_hint="MODEL")
    if not path.is_file():
        raise UsageError(f"model file {file!r} does not exist", param_hint="MODEL")
    return path, func


def load_function(path: Path, func: str) -> Callable[[], Any]:
    """FUNC from FILE.py, imported by its path (only the module itself joins ``sys.modules``)."""
    digest = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:12]
    name = f"gpunet_user_model_{path.stem if path.stem.isidentifier() else 'file'}_{digest}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise UsageError(f"cannot import {str(path)!r} as a Python module", param_hint="MODEL")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and pickling look their module up there
    try:
        spec.loader.exec_module(module)
    except BaseException as exc:  # noqa: BLE001 - any failure of user code is reported on one line
        del sys.modules[name]
        if isinstance(exc, KeyboardInterrupt):
            raise
        raise UsageError(f"importing {str(path)!r} raised {_one_line(exc)}", param_hint="MODEL") from exc
    if not hasattr(module, func):
        found = sorted(n for n, v in vars(module).items() if callable(v) and not n.startswith("_")
                       and getattr(v, "__module__", None) == name)
        raise UsageError(f"{path.name} defines no {func!r}; its functions: {found}", param_hint="MODEL")
    fn = getattr(module, func)
    if not callable(fn):
        raise UsageError(f"{path.name}:{func} is not a function (got {type(fn).__name__})", param_hint="MODEL")
    return fn


def build_model(fn: Callable[[], Any], label: str) -> Module:
    """``fn()``, refusing an exception or anything but a gpunet Module on one line."""
    try:
        model = fn()
    except Exception as exc:  # noqa: BLE001 - user code
        raise UsageError(f"{label}() raised {_one_line(exc)}", param_hint="MODEL") from exc
    if not isinstance(model, Module):
        raise UsageError(f"{label}() returned {type(model).__name__}, expected a gpunet Module (gpunet.nn.Module)",
                         param_hint="MODEL")
    return model


def _bad(message: str) -> UsageError:
    return UsageError(message, param_hint="--data")


def load_arrays(path: str) -> dict[str, numpy.ndarray]:
    """The checked arrays of ``path``: ``x`` as float32 (or int64 token ids), ``y`` as int64 labels or
    float32 targets, ``x_test``/``y_test`` alike when present."""
    if not Path(path).is_file():
        raise _bad(f"data file {path!r} does not exist")
    if not zipfile.is_zipfile(path):
        raise _bad(f"{path!r} is not an .npz archive (numpy.savez); expected arrays x, y and optionally "
                   "x_test, y_test")
    try:
        with numpy.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as exc:
        raise _bad(f"cannot read {path!r} as an .npz without pickles: {_one_line(exc)}") from exc
    missing = [k for k in ("x", "y") if k not in arrays]
    if "x_test" in arrays or "y_test" in arrays:
        missing += [k for k in ("x_test", "y_test") if k not in arrays]
    unknown = sorted(set(arrays) - set(KEYS))
    if missing or unknown:
        problem = f"lacks {missing}" if missing else f"has unexpected arrays {unknown}"
        raise _bad(f"{path!r} {problem}; expected x, y and optionally x_test, y_test (got {sorted(arrays)})")
    for key, value in arrays.items():
        arrays[key] = _checked(key, value, path)
    for x_key, y_key in (("x", "y"), ("x_test", "y_test")):
        if x_key in arrays and len(arrays[x_key]) != len(arrays[y_key]):
            raise _bad(f"{path!r}: {x_key} has {len(arrays[x_key])} samples but {y_key} has {len(arrays[y_key])}")
    if "x_test" in arrays:
        for x_key, y_key in (("x", "x_test"), ("y", "y_test")):
            a, b = arrays[x_key], arrays[y_key]
            if a.shape[1:] != b.shape[1:] or a.dtype.kind != b.dtype.kind:
                raise _bad(f"{path!r}: {y_key} has samples of shape {b.shape[1:]} ({b.dtype}); expected "
                           f"{a.shape[1:]} ({a.dtype}) as in {x_key}")
    if arrays["y"].dtype.kind == "i":
        for key in ("y", "y_test"):
            if key in arrays and arrays[key].ndim != 1:
                raise _bad(f"{path!r}: integer {key} (class labels) must be 1-D, got shape {arrays[key].shape}; "
                           "use floating y for regression targets")
    return arrays


def _checked(key: str, value: numpy.ndarray, path: str) -> numpy.ndarray:
    kind = value.dtype.kind
    if value.ndim == 0 or len(value) == 0:
        raise _bad(f"{path!r}: {key} is empty (shape {value.shape}); expected at least one sample")
    if key.startswith("x"):
        if kind not in "fiu":
            raise _bad(f"{path!r}: {key} has dtype {value.dtype}; expected floating inputs (or integer token ids)")
    elif kind not in "fiu":
        raise _bad(f"{path!r}: {key} has dtype {value.dtype}; expected integer class labels or floating targets")
    if kind == "f":
        if not numpy.isfinite(value).all():
            bad = int((~numpy.isfinite(value)).sum())
            raise _bad(f"{path!r}: {key} holds {bad} NaN/inf value(s)")
        return value.astype(numpy.float32)
    return value.astype(numpy.int64)


def split_arrays(arrays: dict[str, numpy.ndarray], seed: int, path: str) -> tuple[ArrayDataset, ArrayDataset]:
    """The given train/test arrays, or a seeded split with TEST_FRACTION of the samples held out
    (stratified by class for labels)."""
    if "x_test" in arrays:
        return ArrayDataset(arrays["x"], arrays["y"]), ArrayDataset(arrays["x_test"], arrays["y_test"])
    x, y = arrays["x"], arrays["y"]
    stratify = y if y.dtype.kind == "i" else None
    train, test = train_test_split((x, y), TEST_FRACTION, seed, stratify=stratify)
    if len(train) == 0 or len(test) == 0:
        raise _bad(f"{path!r}: {len(x)} sample(s) are too few for a {TEST_FRACTION:.0%} test split; "
                   "give x_test and y_test")
    return train, test


def _probe(net: Module, x: numpy.ndarray, label: str) -> numpy.ndarray:
    """The model's output on two samples of ``x`` (eval mode, no graph, RNG untouched)."""
    from gpunet import backend
    from gpunet import random as gpunet_random
    from gpunet.autograd import no_grad, tensor

    state = gpunet_random.get_state()
    net.eval()
    try:
        with no_grad():
            out = net(tensor(x[:2]))
    except Exception as exc:  # noqa: BLE001 - user code
        raise UsageError(f"{label}'s model does not fit x (samples of shape {x.shape[1:]}, {x.dtype}): "
                         f"{_one_line(exc)}", param_hint="--data") from exc
    finally:
        net.train()
        gpunet_random.set_state(state)
    data = getattr(out, "data", None)
    if data is None or not hasattr(data, "shape"):
        raise UsageError(f"{label}'s model returned {type(out).__name__}, expected a Tensor", param_hint="MODEL")
    return backend.to_numpy(data)


def _targets(arrays: dict[str, numpy.ndarray], out: numpy.ndarray, label: str, path: str) -> dict[str, Any]:
    """Check ``y`` against the model's output; the facts of the task (and ``y`` as the loss wants it)."""
    y = arrays["y"]
    if y.dtype.kind == "i":
        if out.ndim != 2 or out.shape[1] < 2:
            raise _bad(f"{label}'s model outputs shape {out.shape[1:]} per sample; integer y (class labels) needs "
                       "one logit per class (shape (classes,), classes >= 2); use floating y for regression")
        classes = int(out.shape[1])
        for key in ("y", "y_test"):
            if key in arrays and (arrays[key].min() < 0 or arrays[key].max() >= classes):
                raise _bad(f"{path!r}: {key} holds labels {int(arrays[key].min())}..{int(arrays[key].max())}; "
                           f"{label}'s model has {classes} outputs, so labels must be in 0..{classes - 1}")
        return {"task": "classification", "num_classes": classes}
    want = out.shape[1:]
    if y.ndim == 1 and want == (1,):  # one output per sample: targets (N,) as (N, 1)
        for key in ("y", "y_test"):
            if key in arrays:
                arrays[key] = arrays[key][:, None]
    if arrays["y"].shape[1:] != want:
        raise _bad(f"{path!r}: floating y (regression targets) has shape {arrays['y'].shape[1:]} per sample but "
                   f"{label}'s model outputs {want}; they must match (integer y means class labels)")
    return {"task": "regression", "output_shape": [int(n) for n in want]}


def prepare_user_run(model: str, data: str, seed: int) -> tuple[Recipe, Split, Module]:
    """The recipe, split and freshly (seeded) built model of ``gpunet train FILE.py:FUNC --data FILE.npz``."""
    from gpunet.random import manual_seed

    path, func = parse_model(model)
    label = f"{path.name}:{func}"
    fn = load_function(path, func)
    arrays = load_arrays(data)
    manual_seed(seed)
    net = build_model(fn, label)
    task = _targets(arrays, _probe(net, arrays["x"], label), label, data)
    train, test = split_arrays(arrays, seed, data)
    info = {"name": Path(data).name, "input_shape": tuple(arrays["x"].shape[1:]), **task}
    config = {"task": task["task"], "input_shape": [int(n) for n in info["input_shape"]],
              "parameters": {name: [int(n) for n in p.shape] for name, p in net.named_parameters()}}
    recipe = Recipe(label, info["name"], lambda _info: build_model(fn, label),
                    loss="cross_entropy" if task["task"] == "classification" else "mse", optimizer="adam", lr=1e-3,
                    epochs=10, batch_size=32, describe=f"{label}() from {path}",
                    model_config=lambda _info: config)
    return recipe, Split(train, test, info), net
