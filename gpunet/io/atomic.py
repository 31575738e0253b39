"""Atomic writes (temp file, fsync, rename) and the removal of temp files dead writers left.

The temp file of ``dir/NAME`` is ``dir/.NAME.PID.TOKEN.tmp``: created with mode 0666 so the
umask applies (a checkpoint ends up ``0666 & ~umask``, like any file the user writes), and held
under an exclusive ``flock`` until it has been renamed. At the next save of the same path, a temp
file is removed only when its writer is gone: the PID in its name is not a running process *and*
nobody holds its lock. A live writer's temp file is never touched, whichever process it is.
"""

from __future__ import annotations

import glob
import os
import re
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

try:
    import fcntl
except ImportError:  # Windows: no flock; the PID check alone decides (and keeps unknown files)
    fcntl = None  # type: ignore[assignment]

#: Legacy temp files (``mkstemp`` names, no PID) are removed once untouched this long.
STALE_TEMP_SECONDS = 600.0
_OURS = re.compile(r"(?P<pid>\d+)\.[0-9a-f]{8}")
_LEGACY = re.compile(r"[A-Za-z0-9_]+")  # mkstemp names: no dots, so not another path's


def temp_name(path: Path) -> Path:
    return path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"


def write_atomically(path: Path, write: Callable[[IO[bytes]], Any]) -> None:
    """``write(handle)`` into a temporary file beside ``path``, fsync, rename over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_name(path)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)  # held until the rename is done: the file is live
        with os.fdopen(fd, "wb", closefd=False) as handle:
            write(handle)
            handle.flush()
            os.fsync(fd)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        os.close(fd)
    _fsync_dir(path.parent)


def _alive(pid: int) -> bool:
    if pid == os.getpid() or os.name == "nt":  # our own (another thread's), or no safe probe
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: someone else's live process
        return True
    return True


def _unlocked(tmp: Path) -> bool:
    """True when no process holds the temp file's lock (its writer is gone)."""
    if fcntl is None:
        return True
    try:
        fd = os.open(tmp, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    finally:
        os.close(fd)  # closing releases a lock we got
    return True


def remove_stale_temp_files(path: str | os.PathLike[str], older_than: float = STALE_TEMP_SECONDS) -> list[Path]:
    """Delete the temp files of ``path`` whose writers died mid-write; returns those removed.

    A temp file named with a PID goes when that process is gone and its lock is free; one from an
    older gpunet (no PID in the name) goes once untouched for ``older_than`` seconds and unlocked.
    """
    path = Path(path)
    prefix = f".{path.name}."
    removed = []
    for tmp in path.parent.glob(f"{glob.escape(prefix)}*.tmp"):
        middle = tmp.name[len(prefix):-len(".tmp")]
        ours = _OURS.fullmatch(middle)
        try:
            if ours:
                if _alive(int(ours["pid"])):
                    continue
            elif not _LEGACY.fullmatch(middle) or time.time() - tmp.stat().st_mtime <= older_than:
                continue  # another path's temp file, or a writer that may be busy
            if _unlocked(tmp):
                tmp.unlink()
                removed.append(tmp)
        except OSError:
            continue
    return removed


def _fsync_dir(folder: Path) -> None:
    """Make the rename durable (POSIX); a no-op where folders cannot be opened (Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
