"""The optimizer base class: parameter groups, per-parameter state, ``state_dict``, validation.

As in PyTorch, an optimizer holds ``param_groups`` (a list of dicts: ``"params"`` plus that
group's options, defaults filled in) and per-parameter ``state``. Here ``state`` is a list
aligned with :attr:`Optimizer.params` (the parameters of all groups, in order), so it never
hashes a Tensor. ``state_dict()`` follows PyTorch's structure:

``{"state": {"0": {...}, "2": {...}}, "param_groups": [{"lr": ..., "params": [0, 1, 2]}]}``

with the parameter index as a *string* key because checkpoints hold string keys
(``load_state_dict`` also takes PyTorch's integer keys and torch tensors). Buffers keep
PyTorch's names (``momentum_buffer``, ``exp_avg``, ``exp_avg_sq``, ``step``...).

Updates run on the raw arrays, in place, on the parameter's device. Nothing in ``step``
reads a device value back to the host: hyper-parameters are Python numbers, the step count
is a Python int.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy

from gpunet import backend
from gpunet.autograd import Tensor, enable_grad

# ----- validation helpers (messages name the class and the argument) -------------------------


def check_number(where: str, name: str, value: Any, low: float | None = None, high: float | None = None,
                 low_open: bool = False, high_open: bool = False) -> float:
    """``value`` as a Python float, if it is a finite real number in the range; ValueError/TypeError otherwise."""
    if isinstance(value, (bool, numpy.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{where}: {name} must be a real number, got {value!r} ({type(value).__name__})")
    number = float(value)
    lo = "" if low is None else (f"> {low:g}" if low_open else f">= {low:g}")
    hi = "" if high is None else (f"< {high:g}" if high_open else f"<= {high:g}")
    span = " and ".join(part for part in (lo, hi) if part)
    wanted = f"a finite number{' ' + span if span else ''}"
    if not math.isfinite(number):
        raise ValueError(f"{where}: {name} must be {wanted}, got {value!r}")
    if low is not None and (number <= low if low_open else number < low):
        raise ValueError(f"{where}: {name} must be {wanted}, got {value!r}")
    if high is not None and (number >= high if high_open else number > high):
        raise ValueError(f"{where}: {name} must be {wanted}, got {value!r}")
    return number


def check_int(where: str, name: str, value: Any, low: int | None = None) -> int:
    """``value`` as a Python int (an integer, not a bool or a float) that is at least ``low``."""
    if isinstance(value, (bool, numpy.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{where}: {name} must be an integer{'' if low is None else f' >= {low}'}, "
                        f"got {value!r} ({type(value).__name__})")
    if low is not None and value < low:
        raise ValueError(f"{where}: {name} must be an integer >= {low}, got {value!r}")
    return int(value)


def check_bool(where: str, name: str, value: Any) -> bool:
    if not isinstance(value, (bool, numpy.bool_)):
        raise TypeError(f"{where}: {name} must be True or False, got {value!r} ({type(value).__name__})")
    return bool(value)


def check_betas(where: str, value: Any) -> tuple[float, float]:
    if isinstance(value, (str, bytes)) or not isinstance(value, (tuple, list)) or len(value) != 2:
        raise TypeError(f"{where}: betas must be a pair (beta1, beta2), got {value!r}")
    return (check_number(where, "betas[0]", value[0], 0.0, 1.0, high_open=True),
            check_number(where, "betas[1]", value[1], 0.0, 1.0, high_open=True))


def _as_array(value: Any) -> Any:
    """A NumPy/CuPy array for an array, a gpunet Tensor or a torch tensor (host copy); else None."""
    if isinstance(value, Tensor):
        return value.data
    if isinstance(value, numpy.ndarray) or backend.is_cupy_array(value):
        return value
    if hasattr(value, "detach") and hasattr(value, "cpu"):  # a torch tensor
        return value.detach().cpu().numpy()
    if isinstance(value, numpy.generic):
        return numpy.asarray(value)
    return None


def _like(array: Any, p: Tensor) -> Any:
    """A copy of ``array`` on ``p``'s device with ``p``'s dtype."""
    if backend.is_cupy_array(p.data):
        import cupy

        return cupy.array(array, dtype=p.dtype, copy=True)
    return numpy.array(backend.to_numpy(array), dtype=p.dtype, copy=True)


# ----- the base class ---------------------------------------------------------------------------


class Optimizer:
    """Base class: ``param_groups`` with per-group options and per-parameter ``state``.

    Subclasses set ``defaults`` through ``super().__init__(params, defaults)``, implement
    :meth:`check_group` (validating one group's options) and :meth:`update` (one parameter),
    and list their state buffers in ``buffers``.
    """

    #: names of the per-parameter state entries (arrays shaped like the parameter, or ``step``)
    buffers: tuple[str, ...] = ()

    def __init__(self, params: Iterable[Any], defaults: dict[str, Any]) -> None:
        name = type(self).__name__
        if isinstance(params, Tensor):
            raise TypeError(f"{name}: params must be an iterable of Parameters or of dicts (parameter groups), "
                            f"got a single Tensor; pass [tensor]")
        if isinstance(params, (set, frozenset, Mapping)):
            raise TypeError(f"{name}: params must be an ordered iterable (a list), got a {type(params).__name__}")
        self.defaults = dict(defaults)
        self.check_group(self.defaults, name)  # the constructor's arguments, named after the class
        self.param_groups: list[dict[str, Any]] = []
        self.state: list[dict[str, Any]] = []
        groups = list(params)
        if not groups:
            raise ValueError(f"{name}: got an empty parameter list")
        if not isinstance(groups[0], Mapping):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    # ----- groups -------------------------------------------------------------------------------
    @property
    def params(self) -> list[Tensor]:
        """The parameters of every group, in order (the index ``state`` and ``state_dict`` use)."""
        return [p for group in self.param_groups for p in group["params"]]

    def add_param_group(self, param_group: Mapping[str, Any]) -> None:
        """Add a group (``{"params": [...], **options}``); missing options take the defaults."""
        name = type(self).__name__
        where = f"{name}: param_groups[{len(self.param_groups)}]"
        if not isinstance(param_group, Mapping):
            raise TypeError(f"{where} must be a dict with 'params', got {type(param_group).__name__}")
        if "params" not in param_group:
            raise ValueError(f"{where} has no 'params'")
        params = param_group["params"]
        if isinstance(params, Tensor):
            params = [params]
        elif isinstance(params, (set, frozenset)):
            raise TypeError(f"{where}: params must be an ordered iterable (a list), got a set")
        params = list(params)
        for i, p in enumerate(params):
            if not isinstance(p, Tensor):
                raise TypeError(f"{where}: params[{i}] must be a Parameter (a Tensor), got {type(p).__name__}")
        if not params:
            raise ValueError(f"{where}: got an empty parameter list")
        ids = [id(p) for p in params]
        if len(set(ids)) != len(ids):
            raise ValueError(f"{where}: a parameter appears twice in the group")
        if set(ids) & {id(p) for p in self.params}:
            raise ValueError(f"{where}: some parameters appear in more than one parameter group")
        group = {**self.defaults, **{k: v for k, v in param_group.items() if k != "params"}}
        self.check_group(group, where)
        self.param_groups.append({"params": params, **group})
        self.state.extend({} for _ in params)

    def check_group(self, group: dict[str, Any], where: str) -> None:
        """Validate (and normalise, in place) one group's options; ``where`` names the group."""

    @property
    def lr(self) -> float:
        """The first group's learning rate; setting it sets every group's."""
        return self.param_groups[0]["lr"]

    @lr.setter
    def lr(self, value: float) -> None:
        value = check_number(type(self).__name__, "lr", value, 0.0)
        for group in self.param_groups:
            group["lr"] = value

    # ----- the step -----------------------------------------------------------------------------
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Drop every gradient (``set_to_none``) or zero it in place."""
        for p in self.params:
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                p.grad[...] = 0

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Update every parameter that has a gradient; returns ``closure()`` if given."""
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        index = 0
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    self.update(p, p.grad, self.state[index], group)
                index += 1
        return loss

    def update(self, p: Tensor, grad: Any, state: dict[str, Any], group: dict[str, Any]) -> None:
        """Update ``p.data`` in place from ``grad`` and its ``state`` with ``group``'s options."""
        raise NotImplementedError

    # ----- state --------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """PyTorch's layout: ``state`` by parameter index, ``param_groups`` with ``params`` as indices.

        The arrays are the live buffers on their device (as in PyTorch: save or copy them).
        """
        groups, start = [], 0
        for group in self.param_groups:
            packed = {k: (list(v) if isinstance(v, tuple) else v) for k, v in group.items() if k != "params"}
            packed["params"] = list(range(start, start + len(group["params"])))
            start += len(group["params"])
            groups.append(packed)
        state = {str(i): dict(s) for i, s in enumerate(self.state) if s}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Restore options and buffers saved by :meth:`state_dict` (of this class, same parameter layout).

        Buffers are copied onto each parameter's device with its dtype. Also accepts PyTorch's own
        optimizer state dicts (integer keys, torch tensors) and gpunet's earlier format.
        """
        name = type(self).__name__
        where = f"{name}.load_state_dict"
        if not isinstance(state_dict, Mapping):
            raise TypeError(f"{where}: expected a dict with 'state' and 'param_groups', "
                            f"got {type(state_dict).__name__}")
        if "hyper" in state_dict and "param_groups" not in state_dict:
            state_dict = self._from_legacy(state_dict, where)
        if "state" not in state_dict or "param_groups" not in state_dict:
            raise ValueError(f"{where}: expected a dict with 'state' and 'param_groups', got keys "
                             f"{sorted(map(str, state_dict))}")
        saved_groups, saved_state = state_dict["param_groups"], state_dict["state"]
        if not isinstance(saved_groups, (list, tuple)) or not isinstance(saved_state, Mapping):
            raise TypeError(f"{where}: expected 'param_groups' a list and 'state' a dict, got "
                            f"{type(saved_groups).__name__} and {type(saved_state).__name__}")
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(f"{where}: the state has {len(saved_groups)} parameter groups, "
                             f"this optimizer {len(self.param_groups)}")
        params = self.params
        groups = []
        for g, (saved, group) in enumerate(zip(saved_groups, self.param_groups)):
            here = f"{where}: param_groups[{g}]"
            if not isinstance(saved, Mapping):
                raise TypeError(f"{here} must be a dict, got {type(saved).__name__}")
            indices = saved.get("params")
            if not isinstance(indices, (list, tuple)) or len(indices) != len(group["params"]):
                got = len(indices) if isinstance(indices, (list, tuple)) else repr(indices)
                raise ValueError(f"{here} holds {got} parameters, this optimizer's {len(group['params'])}")
            missing = [k for k in self.defaults if k not in saved]
            if missing:
                raise ValueError(f"{here} lacks {missing}: is it the state of another optimizer than {name}?")
            options = {k: (tuple(v) if k == "betas" and isinstance(v, list) else v)
                       for k, v in saved.items() if k != "params"}
            self.check_group(options, here)
            groups.append({"params": group["params"], **options})
        state: list[dict[str, Any]] = [{} for _ in params]
        for key, buffers in saved_state.items():
            index = _index(key, len(params), where)
            state[index] = self._load_buffers(buffers, params[index], f"{where}: state[{index}]")
        self.param_groups, self.state = groups, state

    def _load_buffers(self, buffers: Any, p: Tensor, where: str) -> dict[str, Any]:
        if not isinstance(buffers, Mapping):
            raise TypeError(f"{where} must be a dict of buffers, got {type(buffers).__name__}")
        out: dict[str, Any] = {}
        for key, value in buffers.items():
            if key not in self.buffers:
                raise ValueError(f"{where}: unknown buffer {key!r}; {type(self).__name__} keeps {list(self.buffers)}")
            if value is None:
                continue
            if key == "step":
                array = _as_array(value)
                number = value if array is None else (array.item() if array.size == 1 else value)
                if isinstance(number, float) and number.is_integer():
                    number = int(number)
                out[key] = check_int(where, "step", number, 0)
                continue
            array = _as_array(value)
            if array is None:
                raise TypeError(f"{where}: buffer {key!r} must be an array, got {type(value).__name__}")
            if array.dtype.kind not in "fiu":
                raise TypeError(f"{where}: buffer {key!r} must hold real numbers, got dtype {array.dtype}")
            if tuple(array.shape) != tuple(p.shape):
                raise ValueError(f"{where}: buffer {key!r} has shape {tuple(array.shape)}, "
                                 f"the parameter {tuple(p.shape)}")
            out[key] = _like(array, p)
        return out

    def _from_legacy(self, state: Mapping[str, Any], where: str) -> dict[str, Any]:
        """gpunet 0.1's ``{"type", "hyper", "steps", "state": [...]}`` in today's layout."""
        name = type(self).__name__
        if state.get("type") != name:
            raise ValueError(f"{where}: the state is of a {state.get('type')!r} optimizer, not of a {name}")
        hyper = dict(state["hyper"])
        if "beta1" in hyper:
            hyper["betas"] = (hyper.pop("beta1"), hyper.pop("beta2"))
        rename = {"velocity": "momentum_buffer", "m": "exp_avg", "v": "exp_avg_sq"}
        buffers = state.get("state")
        if not isinstance(buffers, (list, tuple)):
            raise TypeError(f"{where}: expected 'state' a list, got {type(buffers).__name__}")
        steps = state.get("steps", 0)
        converted = {}
        for i, entry in enumerate(buffers):
            if entry:
                item = {rename.get(k, k): v for k, v in dict(entry).items()}
                if "step" in self.buffers:
                    item["step"] = steps
                converted[str(i)] = item
        start, groups = 0, []
        for group in self.param_groups:
            options = {k: v for k, v in group.items() if k != "params"}
            groups.append({**options, **hyper, "params": list(range(start, start + len(group["params"])))})
            start += len(group["params"])
        return {"state": converted, "param_groups": groups}

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines.extend(f"    {k}: {v}" for k, v in sorted(group.items()) if k != "params")
        return "\n".join(lines) + "\n)"


def _index(key: Any, count: int, where: str) -> int:
    if isinstance(key, str) and key.isdigit():
        key = int(key)
    if isinstance(key, bool) or not isinstance(key, numbers.Integral) or not 0 <= key < count:
        raise ValueError(f"{where}: state key {key!r} is not a parameter index in [0, {count})")
    return int(key)
