"""Options shared by several commands."""

from __future__ import annotations

import importlib.util
import math
import os
from collections.abc import Callable
from pathlib import Path
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


def apply_backend(backend_name: str | None, kernels: str | None, quiet: bool = False) -> None:
    """Switch to the chosen backend and kernel implementation (errors say why and how to fix).

    Options win over ``GPUNET_BACKEND`` / ``GPUNET_KERNELS``; an invalid variable is an error
    naming it even when an option overrides it, so a typo in the environment never goes unseen.
    """
    env_backend = backend.env_backend()
    env_kernels = settings.env_choice("GPUNET_KERNELS", config.KERNEL_CHOICES)
    backend.use(backend_name or env_backend, quiet=quiet)
    config.set_kernels(kernels or env_kernels)


STDOUT = "-"


def check_output(path: str | None, option: str, *, allow_stdout: bool = False, makes_folders: bool = False) -> None:
    """Refuse, before any work is done, an output ``path`` that cannot be written.

    The parent folder must exist and be writable and the path must not be a folder; ``-``
    (standard output) is accepted where ``allow_stdout``. Where ``makes_folders`` (the writer
    creates missing folders) the nearest existing ancestor must be a writable folder instead.
    """
    if path is None or (allow_stdout and path == STDOUT):
        return
    target = Path(path)
    parent = target.parent
    if target.is_dir():
        raise click.BadParameter(f"{path!r} is a folder; expected a file path", param_hint=option)
    if makes_folders:
        while not parent.exists() and parent != parent.parent:
            parent = parent.parent
        if parent.exists() and not parent.is_dir():
            raise click.BadParameter(f"{str(parent)!r} in {path!r} is a file, not a folder", param_hint=option)
    if not parent.is_dir():
        raise click.BadParameter(f"folder {str(parent)!r} of {path!r} does not exist", param_hint=option)
    if not os.access(parent, os.W_OK | os.X_OK) or (target.exists() and not os.access(target, os.W_OK)):
        raise click.BadParameter(f"{path!r} is not writable", param_hint=option)


def check_module(module: str, option: str, extra: str) -> None:
    """Refuse ``option`` up front when the optional package ``module`` it needs is missing."""
    if importlib.util.find_spec(module) is None:
        raise click.BadParameter(f"needs the {module} package: pip install 'gpunet[{extra}]'", param_hint=option)


def write_text(path: str, text: str) -> None:
    """Write ``text`` to ``path``, or to standard output when ``path`` is ``-``."""
    if path == STDOUT:
        click.echo(text)
    else:
        Path(path).write_text(text)
