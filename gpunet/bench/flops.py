"""Analytic FLOP counts per benchmark step.

Convention (the usual one for training throughput): a multiply-add of a GEMM or convolution
counts 2 FLOPs; a training step is the forward pass, the backward pass (weight gradients for
every layer; input gradients for every layer except the first, whose input is data; no
gradient for a recurrent layer's initial state) and the SGD update (2 FLOPs per parameter).
Activations, pooling, biases and the loss are not counted (under 1 % of these workloads).
These counts equal what ``torch.utils.flop_counter`` measures for PyTorch's versions, plus
the update. The cell-step kernels have no GEMM; their count is the elementwise arithmetic of
the reference formulas (a transcendental counts 1, see ``CELL_OPS``). Those kernels are
memory-bound, so their GFLOP/s is low by nature.
"""

from __future__ import annotations

from collections.abc import Sequence

GATES = {"rnn": 1, "lstm": 4, "gru": 3}

# elementwise operations per (batch, hidden) element: (forward, backward) of one cell step
CELL_OPS = {"rnn": (6, 5), "lstm": (32, 31), "gru": (23, 19)}


def dense(batch: int, n_in: int, n_out: int, input_grad: bool = True) -> int:
    """Forward + backward of one Linear layer on ``batch`` rows."""
    macs = batch * n_in * n_out
    return 2 * macs * (3 if input_grad else 2)


def conv2d_macs(batch: int, c_in: int, c_out: int, kernel: tuple[int, int], out_hw: tuple[int, int]) -> int:
    """Multiply-adds of one convolution forward pass."""
    return batch * c_out * out_hw[0] * out_hw[1] * c_in * kernel[0] * kernel[1]


def conv2d(batch: int, c_in: int, c_out: int, kernel: tuple[int, int], out_hw: tuple[int, int],
           input_grad: bool = True) -> int:
    """Forward + backward (weight, and input when ``input_grad``) of one convolution."""
    return 2 * conv2d_macs(batch, c_in, c_out, kernel, out_hw) * (3 if input_grad else 2)


def recurrent(mode: str, steps: int, batch: int, n_in: int, hidden: int, input_grad: bool = True) -> int:
    """Forward + backward of one recurrent layer over ``steps`` timesteps (GEMMs only).

    Per step: ``h @ W_hh.T`` forward, its weight gradient, and the gradient to the previous
    state for every step but the first (the initial state is data, zeros here).
    """
    gates = GATES[mode] * hidden
    projection = 2 * steps * batch * n_in * gates
    per_step = 2 * batch * hidden * gates
    return projection * (3 if input_grad else 2) + per_step * (3 * steps - 1)


def sgd(parameters: int) -> int:
    """Plain SGD update ``p -= lr * g``."""
    return 2 * parameters


def mlp_step(batch: int, sizes: Sequence[int]) -> int:
    """Training step of an MLP with layer widths ``sizes`` (input first)."""
    total = sum(dense(batch, a, b, input_grad=k > 0) for k, (a, b) in enumerate(zip(sizes, sizes[1:])))
    params = sum(a * b + b for a, b in zip(sizes, sizes[1:]))
    return total + sgd(params)


def lenet_step(batch: int, channels: int, size: int, classes: int) -> int:
    """Training step of LeNet-5 (unpadded 5x5 convolutions, 2x2 pooling) on ``size`` x ``size`` input."""
    side1 = size - 4
    side2 = side1 // 2 - 4
    flat = 16 * (side2 // 2) ** 2
    total = (conv2d(batch, channels, 6, (5, 5), (side1, side1), input_grad=False)
             + conv2d(batch, 6, 16, (5, 5), (side2, side2))
             + dense(batch, flat, 120) + dense(batch, 120, 84) + dense(batch, 84, classes))
    params = (6 * channels * 25 + 6 + 16 * 6 * 25 + 16 + flat * 120 + 120 + 120 * 84 + 84
              + 84 * classes + classes)
    return total + sgd(params)


def recurrent_step(mode: str, layers: int, steps: int, batch: int, n_in: int, hidden: int, classes: int) -> int:
    """Training step of a stacked recurrent net with a linear head on the last state."""
    gates = GATES[mode] * hidden
    total, params = dense(batch, hidden, classes), hidden * classes + classes
    for layer in range(layers):
        size = n_in if layer == 0 else hidden
        total += recurrent(mode, steps, batch, size, hidden, input_grad=layer > 0)
        params += gates * (size + hidden + 2)
    return total + sgd(params)


def cell_step(mode: str, batch: int, hidden: int) -> int:
    """One cell step forward + backward (elementwise work only)."""
    forward, backward = CELL_OPS[mode]
    return (forward + backward) * batch * hidden
