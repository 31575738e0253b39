"""A layer table for a model: output shapes, parameter counts, layers and depth."""

from __future__ import annotations

from typing import Any

from gpunet.autograd import Tensor, no_grad
from gpunet.nn.module import Module, register_module_forward_hook


def layer_table(model: Module, *inputs: Tensor) -> list[dict[str, Any]]:
    """Run ``model`` once on ``inputs``; one row per module call: name, type, output shape, own params."""
    names = {id(m): name for name, m in model.named_modules()}
    rows: list[dict[str, Any]] = []

    def record(mod: Module, _inputs: tuple[Any, ...], out: Any) -> None:
        if mod is model:
            return
        first = out[0] if isinstance(out, tuple) else out
        shape = tuple(first.shape) if isinstance(first, Tensor) else None
        own = sum(p.numel() for p in mod.parameters(recurse=False))
        rows.append({"name": names.get(id(mod), "?"), "type": type(mod).__name__, "output": shape,
                     "params": own, "layer": mod.layer_count})

    # A whole-process observer: also records modules the forward calls that are not children.
    with register_module_forward_hook(record), no_grad():
        model.eval()
        model(*inputs)
        model.train()
    return rows


def format_table(model: Module, rows: list[dict[str, Any]]) -> str:
    lines = [f"{'layer':<24}{'type':<18}{'output shape':<22}{'params':>10}", "-" * 74]
    for row in rows:
        lines.append(f"{row['name']:<24}{row['type']:<18}{str(row['output']):<22}{row['params']:>10,}")
    lines.append("-" * 74)
    lines.append(f"total parameters: {model.num_parameters():,}")
    lines.append(f"layers (input layer not counted): {model.num_layers}  -> "
                 f"{'deep' if model.is_deep else 'not deep'} (deep = hidden + output layers >= 2)")
    return "\n".join(lines)
