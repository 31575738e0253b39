"""Options shared by several commands."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from gpunet import backend, config


def backend_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """Add ``--backend`` and ``--kernels`` to a command."""
    func = click.option("--kernels", type=click.Choice(config.KERNEL_CHOICES), default="auto",
                        show_default=True, help="GPU implementation of conv/recurrent ops.")(func)
    return click.option("--backend", "backend_name", type=click.Choice(backend.BACKENDS), default=None,
                        help="Array backend [default: $GPUNET_BACKEND or auto].")(func)


def apply_backend(backend_name: str | None, kernels: str) -> None:
    """Switch to the chosen backend and kernel implementation (errors say why and how to fix)."""
    import os

    backend.use(backend_name or os.environ.get("GPUNET_BACKEND", "auto"))
    config.set_kernels(kernels)
