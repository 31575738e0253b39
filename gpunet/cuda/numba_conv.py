"""numba.cuda kernels for NCHW conv2d: three implicit GEMMs on one shared-memory tiled template.

Every pass is ``C[M, N] = sum_k A[m, k] * B[k, n]`` where A and B are never materialised: the
per-op *index maps* (device functions below) gather an operand element straight from the NCHW
tensors, returning zero outside the padded image, a GEMM edge, or (backward-input) a tap that
does not land on an output pixel.

=================  =================  ===========  ==================  =========================
pass               M (rows)           N (cols)     K (reduction)       A / B gathered from
=================  =================  ===========  ==================  =========================
forward            N*Ho*Wo pixels     C_out        C_in*kh*kw          x windows / w
backward-input     N*H*W  pixels      C_in         C_out*kh*kw         gy (gather form) / w
backward-weight    C_out              C_in*kh*kw   N*Ho*Wo             gy / x windows
=================  =================  ===========  ==================  =========================

Geometry travels as one int64 tuple ``g`` (indices below), passed by value to the kernel.
Tile sizes are compile-time constants (closure values of the kernel factory).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import cache
from typing import Any, NamedTuple

import numpy as np
from numba import cuda, types

Pair = tuple[int, int]

# Fields of the geometry tuple ``g``.
GM, GN, GK, BATCH, CIN, H, W, COUT, KH, KW, HO, WO, S0, S1, P0, P1, D0, D1 = range(18)
GEOM_LEN = 18


class Tiles(NamedTuple):
    """Block tile ``bm x bn`` over a ``bk`` slice of K; each thread owns a ``tm x tn`` micro-tile.

    ``pad`` widens each shared-memory row so both load orders are bank-conflict free
    (``bm + pad`` is 4 mod 32 for the default 64-wide tile with ``bk = 8``).
    """

    bm: int = 64
    bn: int = 64
    bk: int = 8
    tm: int = 4
    tn: int = 4
    pad: int = 4

    @property
    def block(self) -> Pair:
        """Threads per block as ``(x, y)``: x walks M, y walks N."""
        return self.bm // self.tm, self.bn // self.tn

    def check(self) -> None:
        threads = self.block[0] * self.block[1]
        if self.bm % self.tm or self.bn % self.tn:
            raise ValueError(f"{self}: micro-tile must divide the block tile")
        if (self.bm * self.bk) % threads or (self.bn * self.bk) % threads:
            raise ValueError(f"{self}: each thread must load a whole number of tile elements")


DEFAULT_TILES = Tiles()
INDEX_LIMIT = 2**31  # GEMM sizes and padded image sides stay below this (see ``udivmod``)


@cuda.jit(device=True, inline=True)
def udivmod(a, b):
    """``divmod`` for ``0 <= a, b < 2**32`` through a 32-bit unsigned divide: a 64-bit divide
    is a long software sequence on the GPU. :func:`launch` guarantees the range."""
    q = np.int64(np.uint32(a) // np.uint32(b))
    return q, a - q * b


# ---------------------------------------------------------------- index maps (per pass, dtype)
def _index_maps(op: str, zero: Any) -> tuple[Callable, Callable, Callable]:
    """``(load_a(a, m, k, g), load_b(b, k, n, g), store(out, m, n, v, g))`` device functions."""
    dev = cuda.jit(device=True, inline=True)

    if op == "forward":  # a = x (N,C,H,W), b = w as (C_out, K), out = y (N,C_out,Ho,Wo)
        @dev
        def load_a(x, m, k, g):
            if m >= g[GM] or k >= g[GK]:
                return zero
            n, r = udivmod(m, g[HO] * g[WO])
            i, j = udivmod(r, g[WO])
            c, r = udivmod(k, g[KH] * g[KW])
            p, q = udivmod(r, g[KW])
            hi = i * g[S0] - g[P0] + p * g[D0]
            wi = j * g[S1] - g[P1] + q * g[D1]
            if hi < 0 or hi >= g[H] or wi < 0 or wi >= g[W]:
                return zero
            return x[n, c, hi, wi]

        @dev
        def load_b(w2, k, n, g):
            if k >= g[GK] or n >= g[GN]:
                return zero
            return w2[n, k]

        @dev
        def store(y, m, n, v, g):
            b, r = udivmod(m, g[HO] * g[WO])
            i, j = udivmod(r, g[WO])
            y[b, n, i, j] = v

    elif op == "backward_input":  # a = gy, b = w (C_out,C_in,kh,kw), out = gx (N,C_in,H,W)
        @dev
        def load_a(gy, m, k, g):
            if m >= g[GM] or k >= g[GK]:
                return zero
            n, r = udivmod(m, g[H] * g[W])
            h, w = udivmod(r, g[W])
            o, r = udivmod(k, g[KH] * g[KW])
            p, q = udivmod(r, g[KW])
            # output pixel i reads input row h when i*s0 - p0 + p*d0 == h
            ti = h + g[P0] - p * g[D0]
            tj = w + g[P1] - q * g[D1]
            if ti < 0 or tj < 0:
                return zero
            i, ri = udivmod(ti, g[S0])
            j, rj = udivmod(tj, g[S1])
            if ri != 0 or rj != 0 or i >= g[HO] or j >= g[WO]:
                return zero
            return gy[n, o, i, j]

        @dev
        def load_b(w, k, n, g):
            if k >= g[GK] or n >= g[GN]:
                return zero
            o, r = udivmod(k, g[KH] * g[KW])
            p, q = udivmod(r, g[KW])
            return w[o, n, p, q]

        @dev
        def store(gx, m, n, v, g):
            b, r = udivmod(m, g[H] * g[W])
            h, w = udivmod(r, g[W])
            gx[b, n, h, w] = v

    elif op == "backward_weight":  # a = gy, b = x, out = gw as (C_out, K2)
        @dev
        def load_a(gy, m, k, g):
            if m >= g[GM] or k >= g[GK]:
                return zero
            n, r = udivmod(k, g[HO] * g[WO])
            i, j = udivmod(r, g[WO])
            return gy[n, m, i, j]

        @dev
        def load_b(x, k, n, g):
            if k >= g[GK] or n >= g[GN]:
                return zero
            b, r = udivmod(k, g[HO] * g[WO])
            i, j = udivmod(r, g[WO])
            c, r = udivmod(n, g[KH] * g[KW])
            p, q = udivmod(r, g[KW])
            hi = i * g[S0] - g[P0] + p * g[D0]
            wi = j * g[S1] - g[P1] + q * g[D1]
            if hi < 0 or hi >= g[H] or wi < 0 or wi >= g[W]:
                return zero
            return x[b, c, hi, wi]

        @dev
        def store(gw2, m, n, v, g):
            gw2[m, n] = v

    else:
        raise ValueError(f"numba_conv: unknown pass {op!r}")
    return load_a, load_b, store


# ------------------------------------------------------------------------- the tiled template
def _gemm_kernel(load_a: Callable, load_b: Callable, store: Callable, dtype: Any, tiles: Tiles,
                 a_m_fast: bool) -> Any:
    """The shared-memory tiled implicit-GEMM kernel for one pass, dtype and tile shape.

    ``a_m_fast``: consecutive threads load consecutive rows of A (True when M runs along the
    image row in memory) or consecutive K (when K does); B is always loaded K-fastest.
    """
    tiles.check()
    BM, BN, BK, TM, TN, PAD = tiles
    TX, TY = tiles.block
    NT = TX * TY
    A_ROW, B_ROW = BM + PAD, BN + PAD  # folded here: shared shapes must be literal constants
    zero = dtype(0)

    @cuda.jit
    def kernel(a, b, out, g):
        tx = cuda.threadIdx.x
        ty = cuda.threadIdx.y
        t = ty * TX + tx
        m0 = cuda.blockIdx.x * BM
        n0 = cuda.blockIdx.y * BN
        a_tile = cuda.shared.array((BK, A_ROW), dtype)
        b_tile = cuda.shared.array((BK, B_ROW), dtype)
        acc = cuda.local.array((TM, TN), dtype)
        a_reg = cuda.local.array(TM, dtype)
        b_reg = cuda.local.array(TN, dtype)
        for r in range(TM):
            for c in range(TN):
                acc[r, c] = zero

        for k0 in range(0, g[GK], BK):
            for e in range(t, BM * BK, NT):  # BM*BK/NT loads per thread
                if a_m_fast:
                    kk, mm = divmod(e, BM)
                else:
                    mm, kk = divmod(e, BK)
                a_tile[kk, mm] = load_a(a, m0 + mm, k0 + kk, g)
            for e in range(t, BN * BK, NT):
                nn, kk = divmod(e, BK)
                b_tile[kk, nn] = load_b(b, k0 + kk, n0 + nn, g)
            cuda.syncthreads()
            for kk in range(BK):
                for r in range(TM):
                    a_reg[r] = a_tile[kk, tx + r * TX]
                for c in range(TN):
                    b_reg[c] = b_tile[kk, ty + c * TY]
                for r in range(TM):
                    for c in range(TN):
                        acc[r, c] += a_reg[r] * b_reg[c]
            cuda.syncthreads()

        for r in range(TM):
            m = m0 + tx + r * TX
            for c in range(TN):
                n = n0 + ty + c * TY
                if m < g[GM] and n < g[GN]:
                    store(out, m, n, acc[r, c], g)

    return kernel


_A_M_FAST = {"forward": True, "backward_input": True, "backward_weight": False}
PASSES = tuple(_A_M_FAST)


@cache
def get_kernel(op: str, dtype: str, tiles: Tiles = DEFAULT_TILES) -> Any:
    """The (lazily compiled) kernel for pass ``op`` and ``dtype`` ``"float32"``/``"float64"``."""
    np_dtype = np.dtype(dtype).type
    load_a, load_b, store = _index_maps(op, np_dtype(0))
    return _gemm_kernel(load_a, load_b, store, np_dtype, tiles, _A_M_FAST[op])


def signature(op: str, dtype: str) -> tuple:
    """Numba argument types of pass ``op`` (for ``cuda.compile_ptx``)."""
    t = types.float32 if dtype == "float32" else types.float64
    arr2, arr4 = types.Array(t, 2, "C"), types.Array(t, 4, "C")
    geom = types.UniTuple(types.int64, GEOM_LEN)
    operands = {"forward": (arr4, arr2, arr4), "backward_input": (arr4, arr4, arr4),
                "backward_weight": (arr4, arr4, arr2)}[op]
    return (*operands, geom)


# ---------------------------------------------------------------------------------- launchers
def geometry(x_shape: tuple[int, ...], w_shape: tuple[int, ...], out_hw: Pair, stride: Pair,
             padding: Pair, dilation: Pair, op: str) -> tuple[int, ...]:
    """The geometry tuple ``g`` of pass ``op``."""
    n, c_in, h, w = x_shape
    c_out, _, kh, kw = w_shape
    ho, wo = out_hw
    gemm = {"forward": (n * ho * wo, c_out, c_in * kh * kw),
            "backward_input": (n * h * w, c_in, c_out * kh * kw),
            "backward_weight": (c_out, c_in * kh * kw, n * ho * wo)}[op]
    return (*gemm, n, c_in, h, w, c_out, kh, kw, ho, wo, *stride, *padding, *dilation)


def launch(op: str, a: Any, b: Any, out: Any, g: tuple[int, ...], dtype: str,
           tiles: Tiles = DEFAULT_TILES, stream: Any = 0) -> None:
    """Run pass ``op`` writing every element of ``out``; arrays are anything numba accepts
    (device arrays; host NumPy arrays under the simulator). Shapes are the caller's job."""
    if g[GM] == 0 or g[GN] == 0:
        return
    if max(g[GM], g[GN], g[GK], g[H] + 2 * g[P0], g[W] + 2 * g[P1]) >= INDEX_LIMIT - 2 * tiles.bm:
        raise ValueError(f"numba conv2d {op}: GEMM size {g[:3]} or padded image exceeds the "
                         f"kernels' 32-bit index range")
    grid = (math.ceil(g[GM] / tiles.bm), math.ceil(g[GN] / tiles.bn))
    get_kernel(op, dtype, tiles)[grid, tiles.block, stream](a, b, out, g)


def forward(x: Any, w: Any, y: Any, stride: Pair, padding: Pair, dilation: Pair,
            tiles: Tiles = DEFAULT_TILES, stream: Any = 0) -> None:
    """``y = conv2d(x, w)``; ``y`` preallocated (N, C_out, Ho, Wo)."""
    g = geometry(x.shape, w.shape, y.shape[2:], stride, padding, dilation, "forward")
    w2 = w.reshape(w.shape[0], w.size // w.shape[0])
    launch("forward", x, w2, y, g, str(x.dtype), tiles, stream)


def backward_input(gy: Any, w: Any, gx: Any, stride: Pair, padding: Pair, dilation: Pair,
                   tiles: Tiles = DEFAULT_TILES, stream: Any = 0) -> None:
    """``gx`` (N, C_in, H, W) = gradient of conv2d w.r.t. its input."""
    g = geometry(gx.shape, w.shape, gy.shape[2:], stride, padding, dilation, "backward_input")
    launch("backward_input", gy, w, gx, g, str(gy.dtype), tiles, stream)


def backward_weight(x: Any, gy: Any, gw: Any, stride: Pair, padding: Pair, dilation: Pair,
                    tiles: Tiles = DEFAULT_TILES, stream: Any = 0) -> None:
    """``gw`` (C_out, C_in, kh, kw) = gradient of conv2d w.r.t. its weight."""
    g = geometry(x.shape, gw.shape, gy.shape[2:], stride, padding, dilation, "backward_weight")
    gw2 = gw.reshape(gw.shape[0], gw.size // gw.shape[0])
    launch("backward_weight", gy, x, gw2, g, str(x.dtype), tiles, stream)
