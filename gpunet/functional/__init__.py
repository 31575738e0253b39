"""Differentiable ops on Tensors (the functional API, like ``torch.nn.functional``)."""

from gpunet.functional.activation import (
    get_activation,
    identity,
    log_softmax,
    relu,
    sigmoid,
    softmax,
    step,
    tanh,
)
from gpunet.functional.conv import conv2d, conv2d_relu_pool2d
from gpunet.functional.linear import linear, linear_relu
from gpunet.functional.loss import (
    binary_cross_entropy_with_logits,
    cross_entropy,
    mse_loss,
    perceptron_loss,
)
from gpunet.functional.math import (
    MinMax,
    abs,
    add,
    all,
    any,
    argmax,
    argmin,
    bitwise_and,
    bitwise_not,
    bitwise_or,
    bitwise_xor,
    cast,
    cat,
    clamp,
    clone,
    concat,
    div,
    eq,
    exp,
    flatten,
    ge,
    getitem,
    gt,
    le,
    log,
    lt,
    matmul,
    max,
    mean,
    min,
    mul,
    ne,
    neg,
    one_hot,
    pad,
    permute,
    pow,
    reshape,
    sqrt,
    squeeze,
    stack,
    std,
    sub,
    sum,
    transpose,
    unsqueeze,
    var,
    view,
    where,
)
from gpunet.functional.pool import avg_pool2d, max_pool2d, relu_avg_pool2d, relu_max_pool2d
from gpunet.functional.recurrent import gru, lstm, rnn

__all__ = [
    "abs", "add", "binary_cross_entropy_with_logits", "cast", "concat", "cross_entropy", "div",
    "exp", "flatten", "get_activation", "getitem", "identity", "linear", "log", "log_softmax",
    "matmul", "max", "mean", "mse_loss", "mul", "neg", "perceptron_loss", "pow", "relu",
    "reshape", "sigmoid", "softmax", "sqrt", "step", "sub", "sum", "tanh", "transpose", "where",
]
__all__ += ["MinMax", "all", "any", "argmax", "argmin", "bitwise_and", "bitwise_not", "bitwise_or", "bitwise_xor",
            "cat", "clamp", "clone", "eq", "ge", "gt", "le", "lt", "min", "ne", "one_hot", "pad", "permute",
            "squeeze", "stack", "std", "unsqueeze", "var", "view"]
__all__ += ["avg_pool2d", "conv2d", "conv2d_relu_pool2d", "linear_relu", "max_pool2d", "relu_avg_pool2d",
            "relu_max_pool2d"]
__all__ += ["gru", "lstm", "rnn"]

from gpunet.functional.activation import gelu, leaky_relu  # noqa: E402
from gpunet.functional.adaptive import adaptive_avg_pool2d  # noqa: E402
from gpunet.functional.loss import binary_cross_entropy, l1_loss, nll_loss  # noqa: E402
from gpunet.functional.norm import batch_norm, layer_norm  # noqa: E402
from gpunet.functional.regularization import dropout  # noqa: E402
from gpunet.functional.sparse import embedding  # noqa: E402

__all__ += ["adaptive_avg_pool2d", "batch_norm", "binary_cross_entropy", "dropout", "embedding", "gelu",
            "l1_loss", "layer_norm", "leaky_relu", "nll_loss"]

from gpunet.functional import operators as _operators  # noqa: E402

_operators.install()
