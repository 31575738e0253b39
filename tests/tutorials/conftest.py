"""Helpers for the tutorial ports: copy a gpunet model's weights into the same PyTorch model."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest


@pytest.fixture
def to_torch():
    """``to_torch(gpunet_model, torch_model)``: load our state_dict (weights and BatchNorm buffers)."""
    torch = pytest.importorskip("torch")

    def copy(ours: Any, theirs: Any) -> Any:
        state = {k: torch.tensor(np.asarray(v)) for k, v in ours.state_dict().items()}
        theirs.load_state_dict(state)
        return theirs

    return copy
