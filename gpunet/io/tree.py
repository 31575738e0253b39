"""Objects <-> (JSON tree, arrays): the one schema a checkpoint's structure follows.

A savable object is a dict with string keys whose values are dicts, lists/tuples, arrays
(NumPy, CuPy or gpunet tensors), numbers, strings, booleans or None, nested at most
``limits.MAX_DEPTH`` levels. Each array becomes ``{"__array__": NAME}`` in the tree, NAME being
the array's path of keys (``model/fc.weight``, ``optimizer/state/0/m``) with every character that
is not plain ASCII (and ``/``, ``%``) percent-escaped, so members are named by their keys.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from collections.abc import Mapping
from typing import Any

import numpy

from gpunet import backend
from gpunet.io import limits

REF = "__array__"
META_NAME = "__meta__"
_MAX_NAME = 1000  # bytes of a member name; longer key paths get an anonymous name


class SchemaError(ValueError):
    """A loaded structure breaks the schema: ``field`` names where, ``problem`` says what."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}" if field else problem)
        self.field, self.problem = field, problem


def field_name(parts: tuple[Any, ...]) -> str:
    """``("model", "fc.weight")`` -> ``model['fc.weight']``; ``("optimizer", "state", 0)`` ->
    ``optimizer.state[0]``."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", part):
            out += f".{part}" if out else part
        else:
            out += f"[{part!r}]"
    return out or "(top level)"


def _component(key: str) -> str:
    if key == "":
        return "%"  # quote never writes a lone '%': names stay distinct
    if key in (".", ".."):
        return key.replace(".", "%2E")  # nor '%2E' ('.' is safe)
    return urllib.parse.quote(key, safe="+@=,()[]")


def member_name(parts: tuple[Any, ...], index: int) -> str:
    """The archive name of the array at ``parts`` (distinct for distinct paths)."""
    name = "/".join(_component(str(p)) for p in parts)
    if name == META_NAME:
        name = "%5F_meta__"
    if len(name) > _MAX_NAME:
        name = f"%%{index}"  # quote never writes '%%'
    return name


def flatten(obj: Any, arrays: dict[str, numpy.ndarray], parts: tuple[Any, ...] = (), depth: int = 1) -> Any:
    """The JSON tree of ``obj``; its arrays (host copies) go into ``arrays`` by member name."""
    if isinstance(obj, Mapping):
        _check_depth(parts, depth)
        for key in obj:
            if not isinstance(key, str):
                raise TypeError(f"save: expected string keys, got {key!r} ({type(key).__name__}) "
                                f"in {field_name(parts)}")
        if set(obj) == {REF}:
            raise TypeError(f"save: a dict with the single key {REF!r} is reserved for array references "
                            f"({field_name(parts)})")
        return {k: flatten(v, arrays, (*parts, k), depth + 1) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        _check_depth(parts, depth)
        return [flatten(v, arrays, (*parts, i), depth + 1) for i, v in enumerate(obj)]
    host = as_host_array(obj)
    if host is not None:
        if host.dtype.hasobject:
            raise TypeError(f"save: object arrays cannot be saved safely ({field_name(parts)})")
        name = member_name(parts, len(arrays))
        arrays[name] = host
        return {REF: name}
    if isinstance(obj, numpy.generic):
        obj = obj.item()
        if not (obj is None or isinstance(obj, (bool, int, float, str))):
            raise TypeError(f"save: cannot store a NumPy {type(obj).__name__} scalar in {field_name(parts)}; "
                            f"store it as a 0-d array (numpy.asarray(value))")
        return obj
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"save: cannot store a {type(obj).__name__} in {field_name(parts)}; expected dicts, lists, "
                    f"arrays, tensors, numbers, strings or None")


def as_host_array(obj: Any) -> numpy.ndarray | None:
    """A NumPy array for an array or tensor (device arrays are copied to the host), else None."""
    if hasattr(obj, "_is_gpunet_tensor"):
        obj = obj.data
    if isinstance(obj, numpy.ndarray) or backend.is_cupy_array(obj):
        return backend.to_numpy(obj)
    return None


def _check_depth(parts: tuple[Any, ...], depth: int) -> None:
    if depth > limits.MAX_DEPTH:
        raise ValueError(f"save: the object nests deeper than {limits.MAX_DEPTH} levels "
                         f"(at {field_name(parts[:8])}...); checkpoints are limited to that depth")


def collect_refs(tree: Any) -> list[tuple[str, tuple[Any, ...]]]:
    """Check a loaded tree against the schema; the array references it holds, in order.

    Raises :class:`SchemaError` naming the field: non-string references, a member referenced
    twice, nesting beyond ``limits.MAX_DEPTH``, values JSON cannot hold.
    """
    refs: list[tuple[str, tuple[Any, ...]]] = []
    seen: set[str] = set()
    stack: list[tuple[Any, tuple[Any, ...], int]] = [(tree, (), 1)]
    while stack:
        node, parts, depth = stack.pop()
        if isinstance(node, dict):
            if REF in node:
                if len(node) != 1 or not isinstance(node[REF], str):
                    raise SchemaError(field_name(parts), f"malformed array reference {node!r:.80}")
                if node[REF] in seen:
                    raise SchemaError(field_name(parts), f"array member {node[REF]!r} is referenced twice")
                seen.add(node[REF])
                refs.append((node[REF], parts))
                continue
            if depth > limits.MAX_DEPTH:
                raise SchemaError(field_name(parts[:8]), f"nests deeper than {limits.MAX_DEPTH} levels")
            stack.extend((v, (*parts, k), depth + 1) for k, v in reversed(list(node.items())))
        elif isinstance(node, list):
            if depth > limits.MAX_DEPTH:
                raise SchemaError(field_name(parts[:8]), f"nests deeper than {limits.MAX_DEPTH} levels")
            stack.extend((v, (*parts, i), depth + 1) for i, v in reversed(list(enumerate(node))))
        elif not (node is None or isinstance(node, (bool, int, float, str))):
            raise SchemaError(field_name(parts), f"unexpected value of type {type(node).__name__}")
    return refs


def unflatten(tree: Any, arrays: dict[str, numpy.ndarray]) -> Any:
    """Rebuild the object (``tree`` already checked by :func:`collect_refs`)."""
    if isinstance(tree, dict):
        if REF in tree:
            return arrays[tree[REF]]
        return {k: unflatten(v, arrays) for k, v in tree.items()}
    if isinstance(tree, list):
        return [unflatten(v, arrays) for v in tree]
    return tree


# ----- JSON, strictly ---------------------------------------------------------------------
def depth_of(obj: Any) -> int:
    """Deepest nesting of dicts/lists in parsed JSON, computed without recursion."""
    deepest, stack = 0, [(obj, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, (dict, list)):
            deepest = max(deepest, depth)
            stack.extend((v, depth + 1) for v in (node.values() if isinstance(node, dict) else node))
    return deepest


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise SchemaError("", f"duplicate key {key!r:.80} in one JSON object")
        out[key] = value
    return out


def parse_json(raw: bytes, what: str, max_depth: int) -> Any:
    """Strict JSON: UTF-8, at most ``max_depth`` deep, no duplicate keys (SchemaError otherwise)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SchemaError(what, f"is not UTF-8 text ({exc})") from exc
    try:
        value = json.loads(text, object_pairs_hook=_no_duplicates)
    except SchemaError as exc:
        raise SchemaError(what, exc.problem) from exc
    except RecursionError as exc:  # the decoder nests on the C stack, guarded by the recursion limit
        raise SchemaError(what, f"nests deeper than the limit of {max_depth} levels") from exc
    except ValueError as exc:
        raise SchemaError(what, f"is not valid JSON ({exc})") from exc
    depth = depth_of(value)
    if depth > max_depth:
        raise SchemaError(what, f"nests {depth} levels deep, beyond the limit of {max_depth}")
    return value
