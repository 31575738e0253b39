"""Seeded randomness. Weights are drawn on the host with NumPy's PCG64 and then moved to the
active backend, so a seed gives the same initial model on the CPU and on the GPU."""

from __future__ import annotations

from typing import Any

import numpy

_generator = [numpy.random.default_rng(0)]


def manual_seed(seed: int) -> None:
    """Reseed the generator used for initialisation, dropout and shuffling defaults."""
    _generator[0] = numpy.random.default_rng(seed)


def generator() -> numpy.random.Generator:
    """The library's global NumPy generator."""
    return _generator[0]


def get_state() -> dict[str, Any]:
    """The generator state as plain JSON-able data (for checkpoints)."""
    return _generator[0].bit_generator.state


def set_state(state: dict[str, Any]) -> None:
    """Restore a state from :func:`get_state`."""
    bit_generator = numpy.random.PCG64()
    bit_generator.state = state
    _generator[0] = numpy.random.Generator(bit_generator)
