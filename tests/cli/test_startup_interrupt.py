"""Ctrl-C while ``gpunet train`` is still starting (imports, then setup) is one line and exit 130.

Real processes, real SIGINT. ``python -X importtime`` reports on stderr each module as its import
finishes, which gives a sync point that does not depend on how busy the machine is: the signal is
sent a few delays after ``gpunet._startup`` (the first line of gpunet) has run, and again after the
command itself has started importing the training code.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from gpunet import _startup


def _interrupt_after(module: str, delay: float) -> tuple[int, list[str]]:
    """Start ``gpunet train mlp``, send SIGINT ``delay`` seconds after ``module`` is imported."""
    env = {**os.environ, "GPUNET_QUIET": "1", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-X", "importtime", "-m", "gpunet.cli", "train", "mlp", "--epochs", "50",
                             "--backend", "numpy"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env)
    seen = []
    try:
        for line in proc.stderr:
            seen.append(line)
            if line.startswith("import time:") and line.split("|")[-1].strip() == module:
                break
        else:
            pytest.fail(f"{module} was never imported: {''.join(seen)[-2000:]}")
        time.sleep(delay)
        proc.send_signal(signal.SIGINT)
        _, rest = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    lines = [line for line in ("".join(seen) + rest).splitlines() if line.strip() and
             not line.startswith("import time:")]
    return proc.returncode, lines


@pytest.mark.parametrize("delay", [0.0, 0.02, 0.1, 0.3])
def test_ctrl_c_while_importing_is_one_line(delay: float) -> None:
    code, lines = _interrupt_after("gpunet._startup", delay)
    assert code == 130, lines
    assert not any("Traceback" in line or "KeyboardInterrupt" in line for line in lines), lines
    assert lines == [_startup.MESSAGE.decode().strip()] or lines == ["gpunet: aborted"], lines


@pytest.mark.parametrize("delay", [0.0, 0.05, 0.2])
def test_ctrl_c_while_the_command_sets_up_is_one_line(delay: float) -> None:
    """After the command took over (it imports the training code lazily): click's abort while it sets up,
    or, once the first epoch runs, the interrupted-run line; either way one ``gpunet:`` line, last."""
    code, lines = _interrupt_after("gpunet.training", delay)
    assert code == 130, lines
    assert not any("Traceback" in line or "KeyboardInterrupt" in line for line in lines), lines
    said = [line for line in lines if line.startswith("gpunet: ")]
    assert said == lines[-1:] and ("aborted" in said[0] or "interrupted" in said[0]), lines


def test_a_program_importing_gpunet_keeps_keyboard_interrupt() -> None:
    """The guard is for the command only: a script that imports gpunet gets Python's usual handler."""
    done = subprocess.run([sys.executable, "-c", "import signal, gpunet, gpunet._startup as s; "
                           "print(signal.getsignal(signal.SIGINT) is signal.default_int_handler, "
                           "s.is_cli_process())"], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "GPUNET_QUIET": "1"})
    assert done.stdout.split() == ["True", "False"], done.stderr


def test_the_guard_is_set_before_any_module_is_read_from_disk() -> None:
    """``gpunet._startup`` (the first line of gpunet) imports nothing the interpreter has not loaded
    already (``-X importtime`` lists a module's own imports just before it, indented deeper), so
    the guard is set as soon as that one small file has run."""
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "gpunet.cli", "--version"], capture_output=True,
                          text=True, timeout=120, env={**os.environ, "GPUNET_QUIET": "1"})
    assert done.returncode == 0, done.stderr
    names = [line.split("|")[-1] for line in done.stderr.splitlines() if line.startswith("import time:")]
    at = next(i for i, name in enumerate(names) if name.strip() == "gpunet._startup")
    depth = len(names[at]) - len(names[at].lstrip())
    assert len(names[at - 1]) - len(names[at - 1].lstrip()) <= depth, names[at - 3:at + 1]


@pytest.mark.parametrize("delay", [0.01, 0.03, 0.05, 0.08, 0.12])
def test_ctrl_c_at_the_very_start_has_no_traceback_from_gpunet(delay: float) -> None:
    """SIGINT by wall-clock time after the process starts. Before gpunet's first line runs the process is
    still Python's (its init, site.py and other packages' .pth files, finding gpunet): a traceback
    there is possible and no gpunet code can prevent it; from gpunet._startup on, there is none."""
    env = {**os.environ, "GPUNET_QUIET": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "gpunet.cli", "train", "mlp", "--epochs", "50", "--backend",
                             "numpy"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    time.sleep(delay)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    gpunet_dir = os.path.dirname(_startup.__file__)
    if "Traceback" in err:
        assert gpunet_dir not in err, err  # only frames of Python's startup, none of gpunet
    else:
        assert proc.returncode in (130, -signal.SIGINT), err  # one gpunet line, or killed before Python's handler
        assert len(err.strip().splitlines()) <= 1, err
