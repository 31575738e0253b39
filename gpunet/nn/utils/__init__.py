"""``gpunet.nn.utils``: gradient clipping and the padded/packed sequence helpers (PyTorch's names)."""

from gpunet.nn.utils import clip_grad, rnn
from gpunet.nn.utils.clip_grad import clip_grad_norm_, clip_grad_value_

__all__ = ["clip_grad", "clip_grad_norm_", "clip_grad_value_", "rnn"]
