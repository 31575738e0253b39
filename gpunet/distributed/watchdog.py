"""The NCCL watchdog: the host never waits for an all-reduce; a thread checks it is not stuck.

:class:`~gpunet.distributed.reducers.NCCLReducer` only orders the compute stream after a bucket's
*done* event (device side) and hands the event to a :class:`Watchdog`. Its thread queries the
outstanding events every ``interval`` seconds (and asks NCCL for asynchronous errors); an event
not done within ``timeout`` seconds, or an NCCL error, calls ``on_failure(message)`` once: the
reducer then aborts its communicator (``ncclCommAbort`` ends the stuck kernels, so no stream
waits forever) and, in a job, ends every rank with that one line. The thread sleeps when nothing
is watched and ends after a few idle seconds.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

IDLE_EXIT_S = 5.0


class Watchdog:
    def __init__(self, timeout: float, on_failure: Callable[[str], None], interval: float | None = None,
                 check: Callable[[], None] | None = None, thread_setup: Callable[[], None] | None = None) -> None:
        if timeout <= 0:
            raise ValueError(f"Watchdog: expected timeout > 0 seconds, got {timeout}")
        self.timeout, self.on_failure, self.check, self.thread_setup = timeout, on_failure, check, thread_setup
        self.interval = interval if interval is not None else min(0.05, max(timeout / 20, 1e-3))
        self.error: str | None = None
        self.queries = 0  # event queries made so far (each ``interval`` per watched event)
        self._watched: list[tuple[Any, float, str]] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def watch(self, event: Any, what: str) -> None:
        """Fail unless ``event.done`` within ``timeout`` s; ``what`` names the work in the message."""
        with self._lock:
            self._watched.append((event, time.monotonic() + self.timeout, what))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="gpunet-nccl-watchdog", daemon=True)
                self._thread.start()
        self._wake.set()

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._watched)

    def _run(self) -> None:
        if self.thread_setup is not None:
            self.thread_setup()
        while self.error is None:
            with self._lock:
                watched = list(self._watched)
            if not watched:
                self._wake.clear()
                if not self._wake.wait(IDLE_EXIT_S):
                    with self._lock:
                        if not self._watched:
                            self._thread = None
                            return
                continue
            time.sleep(self.interval)
            self._scan(watched)

    def _scan(self, watched: list[tuple[Any, float, str]]) -> None:
        now, finished = time.monotonic(), []
        for item in watched:
            event, deadline, what = item
            self.queries += 1
            if event.done:
                finished.append(item)
            elif now > deadline:
                self._fail(f"{what} did not complete within {self.timeout:g} s; another rank has probably "
                           f"failed or stopped (GPUNET_DIST_TIMEOUT sets the limit)")
                return
        if self.check is not None:
            try:
                self.check()
            except Exception as exc:  # NCCL saw a peer fail (ncclRemoteError, ...)
                self._fail(f"{watched[0][2]} failed: {exc}")
                return
        with self._lock:
            self._watched = [w for w in self._watched if w not in finished]

    def _fail(self, message: str) -> None:
        self.error = message
        with self._lock:
            self._watched.clear()
            self._thread = None
        self.on_failure(message)
