"""Turn library errors into one clear line on stderr instead of a traceback."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Any, TypeVar

import click

from gpunet.autograd import OpError
from gpunet.backend import BackendError, DeviceMismatchError
from gpunet.io import CheckpointError

_F = TypeVar("_F", bound=Callable[..., Any])

KNOWN_ERRORS = (BackendError, DeviceMismatchError, CheckpointError, OpError, KeyError, ValueError,
                FileNotFoundError, ImportError, RuntimeError)


class Interrupted(Exception):
    """Ctrl-C (or SIGTERM) during a command, with what was kept (``"checkpoint saved to ..."``).

    Not a ``KeyboardInterrupt``, so click passes it through unchanged to :func:`run_cleanly`."""


def run_cleanly(command: click.Command, args: list[str] | None = None) -> int:
    """Run ``command``; known errors print ``gpunet: error: ...`` and return 1.

    Set ``GPUNET_DEBUG=1`` to see the full traceback instead.
    """
    from gpunet import _startup

    _startup.release()  # from here a Ctrl-C is a KeyboardInterrupt (saved runs, "gpunet: interrupted")
    try:
        command.main(args=args, prog_name="gpunet", standalone_mode=False)
    except Interrupted as exc:
        click.echo(f"gpunet: interrupted: {exc}", err=True)
        return 130
    except click.exceptions.Abort:
        click.echo("gpunet: aborted", err=True)
        return 130
    except click.ClickException as exc:  # usage errors (exit 2) and click's own failures, on one line
        click.echo(f"gpunet: error: {_click_message(exc)}", err=True)
        return exc.exit_code
    except KeyboardInterrupt:
        click.echo("gpunet: interrupted", err=True)
        return 130
    except KNOWN_ERRORS as exc:
        if os.environ.get("GPUNET_DEBUG"):
            raise
        click.echo(f"gpunet: error: {_message(exc)}", err=True)
        return 1
    return 0


def _click_message(exc: click.ClickException) -> str:
    """click's message on one line, prefixed by the subcommand (``train: ...``) for usage errors."""
    text = " ".join(exc.format_message().split())
    ctx = getattr(exc, "ctx", None)
    if isinstance(exc, click.UsageError) and ctx is not None and ctx.parent is not None:
        text = f"{ctx.info_name}: {text}"
    hint = f" (see 'gpunet {ctx.info_name} --help')" if isinstance(exc, click.UsageError) and ctx is not None and \
        ctx.parent is not None else " (see 'gpunet --help')" if isinstance(exc, click.UsageError) else ""
    return text + hint


def _message(exc: Any) -> str:
    text = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
    return str(text)


def library_usage_errors(func: _F) -> _F:
    """Show the library's :class:`~gpunet.training.UsageError` as click's usage error.

    With a ``param_hint`` it becomes ``Invalid value for --option: ...`` (exit 2), without one a
    plain usage error; applied under ``@click.command`` so the message carries the command's usage.
    """
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except ValueError as exc:
            from gpunet.training.errors import UsageError  # lazily: `gpunet info` needs no training code

            if not isinstance(exc, UsageError):
                raise
            if exc.param_hint is None:
                raise click.UsageError(str(exc)) from exc
            raise click.BadParameter(str(exc), param_hint=exc.param_hint) from exc
    return wrapper  # type: ignore[return-value]
