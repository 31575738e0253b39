"""Options shared by several commands."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import click

from gpunet import backend, config, settings


class FiniteFloatRange(click.FloatRange):
    """A ``FloatRange`` that also refuses NaN and infinities (which pass every range check)."""

    name = "finite float range"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        result = super().convert(value, param, ctx)
        if not math.isfinite(result):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return result


def backend_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """Add ``--backend`` and ``--kernels`` to a command."""
    func = click.option("--kernels", type=click.Choice(config.KERNEL_CHOICES), default=None,
                        help="GPU implementation of conv/recurrent ops [default: $GPUNET_KERNELS or auto].")(func)
    return click.option("--backend", "backend_name", type=click.Choice(backend.BACKENDS), default=None,
                        help="Array backend [default: $GPUNET_BACKEND or auto].")(func)


def apply_backend(backend_name: str | None, kernels: str | None) -> None:
    """Switch to the chosen backend and kernel implementation (errors say why and how to fix).

    Options win over ``GPUNET_BACKEND`` / ``GPUNET_KERNELS``; an invalid variable is an error
    naming it even when an option overrides it, so a typo in the environment never goes unseen.
    """
    env_backend = backend.env_backend()
    env_kernels = settings.env_choice("GPUNET_KERNELS", config.KERNEL_CHOICES)
    backend.use(backend_name or env_backend)
    config.set_kernels(kernels or env_kernels)
