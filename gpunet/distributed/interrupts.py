"""Ctrl-C in a data-parallel job: every rank stops after the same step, and the checkpoint holds.

``mpiexec`` forwards Ctrl-C to every rank, each at its own moment, perhaps in the middle of a
collective. Inside :func:`agreed_interrupts` the first SIGINT/SIGTERM only sets a flag;
:meth:`Agreement.poll` (one tiny all-reduce, called after each step) turns a flag set on any rank
into :class:`AgreedInterrupt` on all of them after the same step, so they can save a consistent
checkpoint together and exit cleanly. A second Ctrl-C on a rank interrupts it at once.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from typing import Any

from gpunet.distributed import comm
from gpunet.distributed.agreed import AgreedInterrupt, is_agreed  # noqa: F401 (re-exported)


class Agreement:
    def __init__(self) -> None:
        self.requested = 0

    def poll(self) -> None:
        """A collective: raise :class:`AgreedInterrupt` on every rank if any rank was interrupted."""
        if comm.allreduce_sum([self.requested], "interrupt agreement")[0] > 0:
            raise AgreedInterrupt

    def polling(self, progress: Callable[[dict[str, Any]], None] | None) -> Callable[[dict[str, Any]], None]:
        """``progress`` followed by :meth:`poll` (the Trainer calls it after every step)."""
        def call(info: dict[str, Any]) -> None:
            if progress is not None:
                progress(info)
            self.poll()

        return call


@contextlib.contextmanager
def agreed_interrupts() -> Iterator[Agreement]:
    """SIGINT/SIGTERM request a stop at the next :meth:`Agreement.poll` instead of raising."""
    agreement = Agreement()
    if threading.current_thread() is not threading.main_thread():
        yield agreement
        return

    def handler(signum: int, frame: Any) -> None:
        if agreement.requested:
            raise KeyboardInterrupt  # the second Ctrl-C: now
        agreement.requested = 1

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield agreement
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


