"""A vectorisable ``exp`` for the numba CPU kernels (:mod:`gpunet.ops.cells_cpu`).

Without Intel SVML numba lowers ``math.exp`` to a scalar ``libm`` call (about 3 ns per element
here), which also stops LLVM from vectorising the loop around it; NumPy's ``exp`` (about 2 ns)
costs an extra pass and call. :func:`exp` is ``math.exp`` for float64 (the tests' exact path) and,
for float32, Cephes' ``expf`` written branch-free in plain float/int operations that LLVM
vectorises: ``x = n*ln2 + r``, ``exp(r)`` by a degree-7 polynomial on ``|r| <= ln2/2``, ``2**n``
built from its exponent bits. Error below 1e-7 relative (1 ulp); ``exp(nan) = nan``,
``exp(inf) = inf``, ``exp(-inf) = 0``; ``inf`` from x > 88.376 (a little early: float32's
largest value is e**88.72) and 0 below the smallest normal float32 (x < -87.34) instead of a
subnormal. Sigmoid and tanh built on it saturate to the same values either way.
"""

from __future__ import annotations

import math

import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic, overload


@intrinsic
def _f32_from_bits(typingctx, bits):  # pragma: no cover - compiled
    """The float32 whose IEEE bits are the int32 ``bits``."""
    if bits != types.int32:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.FloatType())

    return types.float32(types.int32), codegen


_LO, _HI = np.float32(-87.33654), np.float32(88.37626)  # 2**-126 and 2**127.5
_LOG2E, _MAGIC = np.float32(1.4426950408889634), np.float32(12582912.0)  # 1.5 * 2**23: round to int
_C1, _C2 = np.float32(0.693359375), np.float32(-2.12194440e-4)  # ln 2 = C1 + C2, C1 exact in 9 bits
_P = tuple(np.float32(v) for v in (1.9875691500e-4, 1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2,
                                    1.6666665459e-1, 5.0000001201e-1))
_P0, _P1, _P2, _P3, _P4, _P5 = _P
_ONE, _ZERO, _INF = np.float32(1.0), np.float32(0.0), np.float32(np.inf)
_BIAS = np.int32(127)


def exp(x: float) -> float:
    """``e**x`` (the Python stand-in; compiled code uses the overload below)."""
    return math.exp(x)


@overload(exp)
def _exp_overload(x):  # pragma: no cover - compiled
    if x != types.float32:
        return lambda x: math.exp(x)

    def expf(x):
        xc = x if x < _HI else _HI
        xc = xc if xc > _LO else _LO
        n = (xc * _LOG2E + _MAGIC) - _MAGIC  # round(xc / ln 2), no libm call
        r = xc - n * _C1 - n * _C2
        p = ((((_P0 * r + _P1) * r + _P2) * r + _P3) * r + _P4) * r + _P5
        y = (p * r * r + r + _ONE) * _f32_from_bits(np.int32((np.int32(n) + _BIAS) << 23))
        y = _INF if x > _HI else y
        y = _ZERO if x < _LO else y
        return x if x != x else y

    return expf
