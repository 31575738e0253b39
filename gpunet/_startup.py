"""A Ctrl-C while the ``gpunet`` command is still starting (importing NumPy, numba, gpunet) ends it
with one line and exit code 130 instead of a traceback from the middle of an import.

``gpunet/__init__.py`` imports this module first. It acts only in the process of the ``gpunet``
command (the console script, or ``python -m gpunet.cli``), never in a program that imports the
library. :func:`release`, called as the command starts running, hands SIGINT back to Python, so a
later Ctrl-C raises ``KeyboardInterrupt`` as usual (and training saves its checkpoint).

What no gpunet code can reach: a Ctrl-C after Python set its own SIGINT handler but before
``gpunet/__init__.py`` starts, i.e. while ``site`` runs the ``.pth`` files of the environment
(an editable install's finder, other packages' hooks such as numba-cuda's, which import
importlib.resources, pathlib, re, typing: tens of ms) or while the import system finds gpunet.
Python then prints its own traceback (``Fatal Python error: init_import_site`` during site).
"""

# Only modules every interpreter has loaded before this one runs: no `from __future__` (it imports
# __future__.py), `_signal` rather than signal.py, no typing. Each file read from disk before the
# handler is set would widen the window in which a Ctrl-C is still Python's traceback.
import _signal as signal  # the builtin module signal.py wraps: the same handlers, nothing to read
import os
import sys

MESSAGE = b"gpunet: aborted (Ctrl-C while starting; nothing was run)\n"
_CLI_MODULES = ("gpunet.cli", "gpunet.cli.__main__")
_state = {"guarded": False}


def is_cli_process() -> bool:
    """Whether this process is the ``gpunet`` command (not a program importing the library)."""
    if not sys.argv:
        return False
    if sys.argv[0] == "-m":  # `python -m X` sets argv[0] only once X is found, after its packages import
        argv = list(getattr(sys, "orig_argv", []))
        return "-m" in argv[:-1] and argv[argv.index("-m") + 1] in _CLI_MODULES
    return os.path.basename(sys.argv[0]).lower() in ("gpunet", "gpunet.exe", "gpunet-script.py")


def _abort(signum: int, frame: object) -> None:
    os.write(2, MESSAGE)  # not sys.stderr: the signal may arrive in the middle of a write to it
    os._exit(130)


def guard() -> None:
    """In the ``gpunet`` command, make SIGINT end the process at once with :data:`MESSAGE`."""
    if not is_cli_process():
        return
    try:
        if signal.getsignal(signal.SIGINT) is signal.default_int_handler:  # not when the parent ignores it
            signal.signal(signal.SIGINT, _abort)
            _state["guarded"] = True
    except ValueError:  # not the main thread: Python raises KeyboardInterrupt only there anyway
        pass


def release() -> None:
    """Give SIGINT back to Python's ``KeyboardInterrupt`` (only if :func:`guard` took it)."""
    if _state["guarded"] and signal.getsignal(signal.SIGINT) is _abort:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    _state["guarded"] = False


def interrupted_while_starting() -> None:
    """A ``KeyboardInterrupt`` raised before :func:`guard` took SIGINT: in the command, end as the guard
    would (one line, exit 130); in a program importing gpunet, raise it on."""
    if not is_cli_process():
        raise KeyboardInterrupt
    _abort(signal.SIGINT, None)


try:
    guard()
except KeyboardInterrupt:  # a Ctrl-C that came while this module loaded, raised by Python's next check
    interrupted_while_starting()
