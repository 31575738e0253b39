"""Whole recurrent loops in numba, the batch rows split over threads (:mod:`gpunet.ops.recurrent_cpu`).

A sequence's batch rows never meet: row ``b`` of ``h_t`` depends only on row ``b`` of ``h_{t-1}``
(``h_{t-1} @ W_hh.T`` multiplies rows independently), forward and backward. So each thread runs
the *whole* loop, every timestep, for its own rows: one parallel region per sequence and no
synchronisation between timesteps. Per timestep a thread makes one GEMM on its rows (``np.dot``,
single-threaded BLAS) and one cell kernel of :mod:`gpunet.ops.cells_cpu` on the same rows. The
loop moved out of Python also drops the per-step interpreter cost (a call, a mask lookup and a
kernel dispatch, 5-10 us a step) at one thread.

``order`` is the ``(t, src, dst)`` of every step in processing order (``(T, 3)`` int64: step
``t`` reads state ``src`` and writes ``dst``); ``carry`` (T, B) marks the finished rows of step
``t`` and ``masked[t]`` whether it has any. In the backward loops ``dh``/``dc`` and their spares
swap roles every step (per thread, on its rows); after ``T`` steps the current gradient is in the
original buffer when ``T`` is even (:func:`final`).
"""

from __future__ import annotations

from typing import Any

import numba
import numpy as np

from gpunet import settings
from gpunet.ops.cells_cpu import gru_backward_step, gru_forward_step, lstm_backward_step, lstm_forward_step
from gpunet.ops.exp_cpu import exp
from gpunet.ops.regions_cpu import POOL, claim_part

settings.apply_threads()  # before numba's pool starts: see gpunet.parallel

Array = Any


@numba.njit(cache=True, inline="always")
def _rows(batch, t, parts):  # pragma: no cover - compiled
    return batch * t // parts, batch * (t + 1) // parts


#: Rows per GEMM call in the loops: OpenBLAS's small-matrix kernel takes an 8-row product without
#: packing ``W`` (8x128 @ 128x512: 10.8 us; 16 rows: 29 us; 32 rows: 55 us, one core).
GEMM_ROWS = 8


@numba.njit(cache=True, nogil=True)
def _dot_rows(a, b, out):  # pragma: no cover - compiled
    """``out = a @ b`` in calls of :data:`GEMM_ROWS` rows."""
    for r0 in range(0, a.shape[0], GEMM_ROWS):
        r1 = min(r0 + GEMM_ROWS, a.shape[0])
        np.dot(a[r0:r1], b, out[r0:r1])


@numba.njit(cache=True, nogil=True, error_model="numpy", inline="always")
def lstm_forward_part(acts, xg, w_t, c_buf, h_buf, carry, masked, order, part, parts):  # pragma: no cover
    lo, hi = _rows(xg.shape[1], part, parts)
    if hi <= lo:
        return
    for s in range(order.shape[0]):
        t, src, dst = order[s, 0], order[s, 1], order[s, 2]
        a = acts[t][lo:hi]
        _dot_rows(h_buf[src][lo:hi], w_t, a)
        lstm_forward_step(a, xg[t][lo:hi], c_buf[src][lo:hi], h_buf[src][lo:hi], c_buf[dst][lo:hi],
                          h_buf[dst][lo:hi], carry[t][lo:hi], masked[t])


@numba.njit(cache=True, nogil=True, error_model="numpy", inline="always")
def gru_forward_part(saved, xg, w_t, hg, b_hn, h_buf, carry, masked, order, part, parts):  # pragma: no cover
    lo, hi = _rows(xg.shape[1], part, parts)
    if hi <= lo:
        return
    rec = hg[lo:hi]
    for s in range(order.shape[0]):
        t, src, dst = order[s, 0], order[s, 1], order[s, 2]
        _dot_rows(h_buf[src][lo:hi], w_t, rec)
        gru_forward_step(saved[t][lo:hi], xg[t][lo:hi], rec, b_hn, h_buf[src][lo:hi], h_buf[dst][lo:hi],
                         carry[t][lo:hi], masked[t])


@numba.njit(cache=True, nogil=True, error_model="numpy", inline="always")
def rnn_forward_part(xg, w_t, h_buf, relu, carry, masked, order, part, parts):  # pragma: no cover
    """``h_dst = act(h_src @ w_t + xg[t])``; finished rows keep ``h_src``. ReLU keeps NaN (as
    ``np.maximum``); ``tanh(v) = 1 - 2 / (1 + exp(2v))`` with the vectorised exponential of
    :mod:`gpunet.ops.exp_cpu` (a scalar ``tanh`` is a libm call per element: 1.7x slower loop)."""
    lo, hi = _rows(xg.shape[1], part, parts)
    if hi <= lo:
        return
    hidden = h_buf.shape[2]
    zero = h_buf.dtype.type(0.0)
    one = h_buf.dtype.type(1.0)
    two = h_buf.dtype.type(2.0)
    for s in range(order.shape[0]):
        t, src, dst = order[s, 0], order[s, 1], order[s, 2]
        h, hp, x = h_buf[dst][lo:hi], h_buf[src][lo:hi], xg[t][lo:hi]
        _dot_rows(hp, w_t, h)
        for r in range(hi - lo):
            if masked[t] and carry[t, lo + r]:
                for j in range(hidden):
                    h[r, j] = hp[r, j]
                continue
            for j in range(hidden):
                v = h[r, j] + x[r, j]
                if relu:
                    h[r, j] = zero if v < zero else v
                else:
                    h[r, j] = one - two / (one + exp(two * v))


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _keep_finished(out, keep, carry_t, lo):  # pragma: no cover - compiled
    """Finished rows of ``out`` take ``keep``'s (the gradient carried past a finished step)."""
    for r in range(out.shape[0]):
        if carry_t[lo + r]:
            for j in range(out.shape[1]):
                out[r, j] = keep[r, j]


@numba.njit(cache=True, nogil=True, error_model="numpy", inline="always")
def lstm_backward_part(acts, c_in, c_out, w_hh, gym, has_gym, dh, dc, spare_h, spare_c, dxg, carry, masked,
                       order, part, parts):  # pragma: no cover - compiled
    lo, hi = _rows(dh.shape[0], part, parts)
    if hi <= lo:
        return
    dh_r, dc_r, sh_r, sc_r = dh[lo:hi], dc[lo:hi], spare_h[lo:hi], spare_c[lo:hi]
    for s in range(order.shape[0]):
        t = order[s, 0]
        d = dxg[t][lo:hi]
        g = gym[t][lo:hi] if has_gym else dh_r
        lstm_backward_step(acts[t][lo:hi], c_in[t][lo:hi], c_out[t][lo:hi], dh_r, g, has_gym, dc_r, d, sc_r,
                           carry[t][lo:hi], masked[t])
        _dot_rows(d, w_hh, sh_r)
        if masked[t]:
            _keep_finished(sh_r, dh_r, carry[t], lo)
        dh_r, sh_r = sh_r, dh_r
        dc_r, sc_r = sc_r, dc_r


@numba.njit(cache=True, nogil=True, error_model="numpy", inline="always")
def gru_backward_part(saved, h_in, w_hh, gym, has_gym, dh, spare, carry_h, dn_all, dhg, carry, masked,
                      order, part, parts):  # pragma: no cover - compiled
    lo, hi = _rows(dh.shape[0], part, parts)
    if hi <= lo:
        return
    dh_r, sp_r, ch_r = dh[lo:hi], spare[lo:hi], carry_h[lo:hi]
    hidden = dh.shape[1]
    for s in range(order.shape[0]):
        t = order[s, 0]
        d = dhg[t][lo:hi]
        g = gym[t][lo:hi] if has_gym else dh_r
        gru_backward_step(saved[t][lo:hi], h_in[t][lo:hi], dh_r, g, has_gym, dn_all[t][lo:hi], d, ch_r,
                          carry[t][lo:hi], masked[t])
        _dot_rows(d, w_hh, sp_r)
        for r in range(hi - lo):
            for j in range(hidden):
                sp_r[r, j] += ch_r[r, j]
        if masked[t]:
            _keep_finished(sp_r, dh_r, carry[t], lo)
        dh_r, sp_r = sp_r, dh_r


@numba.njit(cache=True, nogil=True, error_model="numpy", inline="always")
def rnn_backward_part(deriv, w_hh, gym, has_gym, dh, spare, dxg, carry, masked, order, part,
                      parts):  # pragma: no cover - compiled
    lo, hi = _rows(dh.shape[0], part, parts)
    if hi <= lo:
        return
    dh_r, sp_r = dh[lo:hi], spare[lo:hi]
    hidden = dh.shape[1]
    zero = dh.dtype.type(0.0)
    for s in range(order.shape[0]):
        t = order[s, 0]
        d, dv = dxg[t][lo:hi], deriv[t][lo:hi]
        for r in range(hi - lo):
            fin = masked[t] and carry[t, lo + r]
            for j in range(hidden):
                if has_gym:
                    dh_r[r, j] += gym[t, lo + r, j]
                d[r, j] = zero if fin else dh_r[r, j] * dv[r, j]
        _dot_rows(d, w_hh, sp_r)
        if masked[t]:
            _keep_finished(sp_r, dh_r, carry[t], lo)
        dh_r, sp_r = sp_r, dh_r


# -------------------------------------- every part, claimed by the threads (regions_cpu.claim_part)
@numba.njit(parallel=True, cache=True, nogil=True, error_model="numpy")
def lstm_forward_parts(acts, xg, w_t, c_buf, h_buf, carry, masked, order, parts):  # pragma: no cover
    counter = np.zeros(1, np.int64)
    for _ in numba.prange(parts):
        p = claim_part(counter, parts)
        while p >= 0:
            lstm_forward_part(acts, xg, w_t, c_buf, h_buf, carry, masked, order, p, parts)
            p = claim_part(counter, parts)


@numba.njit(parallel=True, cache=True, nogil=True, error_model="numpy")
def gru_forward_parts(saved, xg, w_t, hg, b_hn, h_buf, carry, masked, order, parts):  # pragma: no cover
    counter = np.zeros(1, np.int64)
    for _ in numba.prange(parts):
        p = claim_part(counter, parts)
        while p >= 0:
            gru_forward_part(saved, xg, w_t, hg, b_hn, h_buf, carry, masked, order, p, parts)
            p = claim_part(counter, parts)


@numba.njit(parallel=True, cache=True, nogil=True, error_model="numpy")
def rnn_forward_parts(xg, w_t, h_buf, relu, carry, masked, order, parts):  # pragma: no cover
    counter = np.zeros(1, np.int64)
    for _ in numba.prange(parts):
        p = claim_part(counter, parts)
        while p >= 0:
            rnn_forward_part(xg, w_t, h_buf, relu, carry, masked, order, p, parts)
            p = claim_part(counter, parts)


@numba.njit(parallel=True, cache=True, nogil=True, error_model="numpy")
def lstm_backward_parts(acts, c_in, c_out, w_hh, gym, has_gym, dh, dc, spare_h, spare_c, dxg, carry, masked,
                        order, parts):  # pragma: no cover - compiled
    counter = np.zeros(1, np.int64)
    for _ in numba.prange(parts):
        p = claim_part(counter, parts)
        while p >= 0:
            lstm_backward_part(acts, c_in, c_out, w_hh, gym, has_gym, dh, dc, spare_h, spare_c, dxg, carry,
                               masked, order, p, parts)
            p = claim_part(counter, parts)


@numba.njit(parallel=True, cache=True, nogil=True, error_model="numpy")
def gru_backward_parts(saved, h_in, w_hh, gym, has_gym, dh, spare, carry_h, dn_all, dhg, carry, masked,
                       order, parts):  # pragma: no cover - compiled
    counter = np.zeros(1, np.int64)
    for _ in numba.prange(parts):
        p = claim_part(counter, parts)
        while p >= 0:
            gru_backward_part(saved, h_in, w_hh, gym, has_gym, dh, spare, carry_h, dn_all, dhg, carry, masked,
                              order, p, parts)
            p = claim_part(counter, parts)


@numba.njit(parallel=True, cache=True, nogil=True, error_model="numpy")
def rnn_backward_parts(deriv, w_hh, gym, has_gym, dh, spare, dxg, carry, masked, order,
                       parts):  # pragma: no cover - compiled
    counter = np.zeros(1, np.int64)
    for _ in numba.prange(parts):
        p = claim_part(counter, parts)
        while p >= 0:
            rnn_backward_part(deriv, w_hh, gym, has_gym, dh, spare, dxg, carry, masked, order, p, parts)
            p = claim_part(counter, parts)


# ------------------------------------------------------------------------------ Python side
#: A loop of fewer multiply-adds (all its steps' GEMMs) runs as one part on the calling thread.
SPLIT_MIN = 1 << 20


def parts_for(batch: int, multiply_adds: int) -> int:
    """Threads for a loop over ``batch`` rows: the setting, at most one per row; one when small."""
    threads = settings.current().threads
    if threads == 1 or batch < 2 or multiply_adds < SPLIT_MIN:
        return 1
    return max(1, min(threads, batch, POOL))


def masks(finished: list[Array | None], batch: int) -> tuple[Array, Array]:
    """``(carry (T, B) bool, masked (T,) bool)`` from the loop's per-step ``finished`` rows."""
    steps = len(finished)
    masked = np.fromiter((f is not None for f in finished), dtype=bool, count=steps)
    carry = np.zeros((steps, batch), dtype=bool)
    for t in np.flatnonzero(masked):
        carry[t] = finished[t][:, 0]
    return carry, masked


def step_order(steps: int, reverse: bool, backward: bool = False) -> Array:
    """``(T, 3)`` int64 ``(t, src, dst)`` in processing order (reversed for the backward loop)."""
    t = np.arange(steps - 1, -1, -1) if reverse else np.arange(steps)
    order = np.stack([t, t + 1, t] if reverse else [t, t, t + 1], axis=1).astype(np.int64)
    return np.ascontiguousarray(order[::-1]) if backward else order


def final(steps: int, first: Array, second: Array) -> Array:
    """The buffer holding the gradient after ``steps`` swaps of ``first`` and ``second``."""
    return first if steps % 2 == 0 else second
