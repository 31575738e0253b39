"""The interrupt every rank agreed on (no imports, so the collectives can recognise it)."""

from __future__ import annotations


class AgreedInterrupt(KeyboardInterrupt):
    """Every rank was interrupted after the same step (``all_ranks``: a collective save is safe)."""

    all_ranks = True


def is_agreed(exc: BaseException) -> bool:
    """Whether ``exc`` is, or was raised from, an :class:`AgreedInterrupt`."""
    while exc is not None:
        if isinstance(exc, AgreedInterrupt):
            return True
        exc = exc.__cause__
    return False
