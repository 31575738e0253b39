"""``gpunet info``: what this machine offers gpunet."""

from __future__ import annotations

import json
from typing import Any

import click

from gpunet import diagnostics


def collect() -> dict[str, Any]:
    """Versions, the backend choice and why, GPU details, usable kernel implementations, BLAS, cores."""
    facts = diagnostics.facts()
    facts["kernels"] = _kernel_facts(facts["gpu_usable"])
    return facts


def _kernel_facts(gpu: bool) -> dict[str, str]:
    """Per implementation: "usable (N ops)" once its probe compiled and launched a kernel, else
    "not usable: <reason>" (a GPU is needed for any of them)."""
    facts = {"cupy": "usable" if gpu else "needs a CUDA device"}
    for impl in ("raw", "numba"):
        if not gpu:
            facts[impl] = "needs a CUDA device"
            continue
        from gpunet.ops import registry

        reasons = registry.usable(impl)
        ok = [op for op, why in reasons.items() if why is None]
        facts[impl] = f"usable ({len(ok)} ops)" if ok else f"not usable: {next(iter(reasons.values()), '?')}"
    return facts


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def info(as_json: bool) -> None:
    """Version, chosen backend and why, CUDA/device details, usable kernels, numba, BLAS, cores.

    \b
    Examples:
      gpunet info
      GPUNET_BACKEND=numpy gpunet info --json
    """
    facts = collect()
    if as_json:
        click.echo(json.dumps(facts, indent=2, default=str))
        return
    for key, value in facts.items():
        if isinstance(value, dict):
            click.echo(f"{key}:")
            for k, v in value.items():
                click.echo(f"  {k:<20} {v}")
        else:
            click.echo(f"{key:<22} {value}")
