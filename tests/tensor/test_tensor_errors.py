"""Bad inputs to the new ops: an OpError naming the op, what was expected and what came (one line)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import gpunet
from gpunet import OpError
from gpunet import functional as F


def t(*shape: int, dtype: str = "float32") -> gpunet.Tensor:
    return gpunet.Tensor(np.ones(shape, dtype), requires_grad=dtype.startswith("float"))


# (call, op, what was expected, what came)
CASES: dict[str, tuple[Callable[[], Any], str, str, str]] = {
    "unsqueeze": (lambda: t(2, 3).unsqueeze(3), "unsqueeze", "dim in [-3, 3)", "got 3"),
    "squeeze": (lambda: t(2, 1).squeeze(2), "squeeze", "dim in [-2, 2)", "got 2"),
    "permute-short": (lambda: t(2, 3, 4).permute(1, 0), "permute", "permutation of 3 axes", "got (1, 0)"),
    "permute-repeat": (lambda: t(2, 3, 4).permute(0, 0, 1), "permute", "permutation of 3 axes", "got (0, 0, 1)"),
    "transpose-swap": (lambda: t(2, 3, 4).transpose(0, 3), "transpose", "permutation of 3 axes", "got (0, 3)"),
    "view": (lambda: t(2, 3).view(4, 2), "reshape", "into (4, 2)", "(2, 3) (6 elements)"),
    "flatten-order": (lambda: t(2, 3, 4).flatten(2, 1), "flatten", "start_dim <= end_dim", "start_dim=2"),
    "flatten-dim": (lambda: t(2, 3).flatten(0, 5), "flatten", "dim in [-2, 2)", "got 5"),
    "max-dim": (lambda: t(2, 3).max(2), "max", "dim in [-2, 2)", "got 2"),
    "max-tuple": (lambda: t(2, 3).max((0, 1)), "max", "an int dim", "got (0, 1)"),
    "max-both": (lambda: F.max(t(2, 3), 0, axis=1), "max", "dim= or its alias axis=", "got both"),
    "max-empty-dim": (lambda: t(0, 3).max(0), "max", "non-empty dim 0", "(0, 3)"),
    "min-empty": (lambda: t(0, 3).min(), "min", "non-empty", "(0, 3)"),
    "argmax-dim": (lambda: t(2, 3).argmax(dim=-3), "argmax", "dim in [-2, 2)", "got -3"),
    "argmin-empty": (lambda: t(0).argmin(), "argmin", "non-empty", "(0,)"),
    "sum-both": (lambda: t(2, 3).sum(dim=0, axis=1), "sum", "dim= or its alias axis=", "got both"),
    "var-int": (lambda: t(3, dtype="int64").var(), "var", "floating tensor", "int64"),
    "std-both": (lambda: t(3).std(unbiased=True, correction=0), "std", "one of unbiased=, correction=",
                 "unbiased and correction"),
    "clamp-none": (lambda: t(3).clamp(), "clamp", "at least one of min or max", "neither"),
    "clamp-tensor": (lambda: t(3).clamp(t(3)), "clamp", "Python number for min", "Tensor"),
    "and-float": (lambda: t(3) & t(3), "bitwise_and", "bool or integer", "float32"),
    "invert-float": (lambda: ~t(3), "bitwise_not", "bool or integer", "float32"),
    "lt-shapes": (lambda: t(2, 3) < t(4), "lt", "broadcast together", "(2, 3), (4,)"),
    "cat-shapes": (lambda: F.cat([t(2, 3), t(2, 4)]), "cat", "same shape except in dim 0", "(2, 3), (2, 4)"),
    "cat-ndim": (lambda: F.cat([t(2, 3), t(3)]), "cat", "same shape except in dim 0", "(2, 3), (3,)"),
    "cat-dim": (lambda: F.cat([t(2, 3), t(2, 3)], dim=2), "cat", "dim in [-2, 2)", "dim=2"),
    "cat-empty": (lambda: F.cat([]), "cat", "at least one tensor", "empty list"),
    "cat-tensor": (lambda: F.cat(t(2, 3)), "cat", "list or tuple of tensors", "Tensor"),
    "stack-shapes": (lambda: F.stack([t(2, 3), t(3, 2)]), "stack", "equal shape", "(2, 3), (3, 2)"),
    "stack-dim": (lambda: F.stack([t(2), t(2)], dim=3), "stack", "dim in [-2, 1]", "dim=3"),
    "where-cond": (lambda: F.where(t(3), t(3), t(3)), "where", "bool condition", "float32"),
    "where-shapes": (lambda: F.where(np.array([True, False]), t(3), t(3)), "where", "broadcast together",
                     "(2,), (3,), (3,)"),
    "where-scalars": (lambda: F.where(np.array([True]), 1.0, 2.0), "where", "Tensor input or condition", "float"),
    "pad-odd": (lambda: F.pad(t(2, 3), (1,)), "pad", "even number of int widths", "(1,)"),
    "pad-long": (lambda: F.pad(t(3), (1, 1, 1, 1)), "pad", "at most 2 per dim (2 for shape (3,))", "(1, 1, 1, 1)"),
    "pad-mode": (lambda: F.pad(t(2, 3), (1, 1), mode="reflect"), "pad", "mode 'constant'", "'reflect'"),
    "pad-crop": (lambda: F.pad(t(2, 3), (-2, -1)), "pad", "leave every dimension non-empty", "(-2, -1)"),
    "one_hot-float": (lambda: F.one_hot(t(3)), "one_hot", "integer class labels", "float32"),
    "one_hot-range": (lambda: F.one_hot(gpunet.tensor([0, 3]), 3), "one_hot", "labels in [0, 3)", "[0, 3]"),
    "one_hot-negative": (lambda: F.one_hot(gpunet.tensor([-1, 1])), "one_hot", "labels in [0, 2)", "[-1, 1]"),
    "one_hot-classes": (lambda: F.one_hot(gpunet.tensor([0]), 0), "one_hot", "num_classes >= 1", "got 0"),
    "softmax-dim": (lambda: F.softmax(t(2, 3), dim=2), "softmax", "int dim in [-2, 2)", "got 2"),
    "log_softmax-both": (lambda: F.log_softmax(t(2, 3), dim=0, axis=1), "log_softmax", "dim= or its alias",
                         "got both"),
    "size": (lambda: t(2).size(1), "size", "dim in [-1, 1)", "got 1"),
    "int-many": (lambda: int(t(2)), "int", "one-element tensor", "(2,)"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_op_errors_name_the_op_expected_and_got(name: str) -> None:
    call, op, expected, got = CASES[name]
    with pytest.raises(OpError) as info:
        call()
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{op}: "), message
    assert expected in message and got in message, message
