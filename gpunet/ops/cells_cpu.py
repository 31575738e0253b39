"""numba kernels for the cell math of the NumPy fast recurrent loops (:mod:`gpunet.ops.recurrent_cpu`).

One kernel per timestep replaces the chain of small in-place ufuncs between two GEMMs (each of
which costs a call and a pass over the arrays): the gate activations (their exponentials
included), the state update, the length mask and the saved buffers are written in one pass.

The pre-activations come scaled as :func:`gpunet.ops.recurrent_cpu._exp_scale` says, so that
every activation is one exponential and a division: ``sigmoid(x) = 1 / (1 + exp(-x))``,
``tanh(x) = 1 - 2 / (1 + exp(2x))``. The exponential is :func:`gpunet.ops.exp_cpu.exp`: for
float32 a branch-free ``expf`` that LLVM vectorises (numba's ``math.exp`` is a scalar ``libm``
call without Intel SVML, and a separate NumPy ``exp`` pass cost as much as the cell math), for
float64 ``math.exp``. No fastmath: NaN and inf must propagate as in the reference.
"""

from __future__ import annotations

import numba

from gpunet import settings
from gpunet.ops.exp_cpu import exp

settings.apply_threads()  # before numba's pool starts: see gpunet.parallel

@numba.njit(cache=True, nogil=True, error_model="numpy")
def lstm_forward_step(e, xg, c_prev, h_prev, c, h, carry, masked):  # pragma: no cover - compiled
    """``e + xg`` (B, 4H each: the recurrent and the input projection) are the scaled
    pre-activations; in place ``e`` becomes the activated gates ``i, f, g, o`` (the saved layout).
    Writes ``c``, ``h`` (B, H); rows with ``masked and carry[b]`` keep ``c_prev``, ``h_prev``."""
    batch, gates = e.shape
    hidden = gates // 4
    one = e.dtype.type(1.0)
    two = e.dtype.type(2.0)
    for b in range(batch):  # short loops over rows, few arrays each: LLVM vectorises them
        row, xb = e[b], xg[b]
        for k in range(gates):
            row[k] = one / (one + exp(row[k] + xb[k]))  # sigmoid of every gate's scaled input ...
        for k in range(2 * hidden, 3 * hidden):
            row[k] = one - two * row[k]  # ... and 1 - 2 sigmoid(2x) = tanh(x) for g
        cb, hb, cp, hp = c[b], h[b], c_prev[b], h_prev[b]
        if masked and carry[b]:
            for j in range(hidden):
                cb[j] = cp[j]
                hb[j] = hp[j]
            continue
        for j in range(hidden):
            cb[j] = row[hidden + j] * cp[j] + row[j] * row[2 * hidden + j]
        for j in range(hidden):
            hb[j] = row[3 * hidden + j] * (one - two / (one + exp(two * cb[j])))


@numba.njit(cache=True, nogil=True, error_model="numpy")
def lstm_backward_step(acts, c_in, c_out, dh, gym, has_gym, dc, d, dc_out, carry, masked
                       ):  # pragma: no cover - compiled
    """One BPTT step of the LSTM cell (``c_out`` is the step's new cell state). ``dh`` (B, H) gets
    ``gym`` added in place (when ``has_gym``); writes ``d`` = dxg (B, 4H) and ``dc_out`` = dc_prev.
    Finished rows get ``d = 0`` and carry ``dc`` through."""
    batch, gates = acts.shape
    hidden = gates // 4
    one = acts.dtype.type(1.0)
    two = acts.dtype.type(2.0)
    zero = acts.dtype.type(0.0)
    for b in range(batch):  # row views and branch-free inner loops: LLVM vectorises them
        a, dr, dhb, dcb, dco = acts[b], d[b], dh[b], dc[b], dc_out[b]
        if has_gym:
            gb = gym[b]
            for j in range(hidden):
                dhb[j] += gb[j]
        if masked and carry[b]:
            for k in range(gates):
                dr[k] = zero
            for j in range(hidden):
                dco[j] = dcb[j]
            continue
        cib, cob = c_in[b], c_out[b]
        # few arrays per loop, so that LLVM's alias checks stay within its limit and it vectorises
        for j in range(hidden):
            dco[j] = one - two / (one + exp(two * cob[j]))  # tanh(c)
        for j in range(hidden):
            t, o = dco[j], a[3 * hidden + j]
            dr[3 * hidden + j] = dhb[j] * (t * o * (one - o))
            dco[j] = dhb[j] * (o * (one - t * t)) + dcb[j]  # the cell state's gradient
        for j in range(hidden):
            i, g, dct = a[j], a[2 * hidden + j], dco[j]
            dr[j] = dct * (g * i * (one - i))
            dr[2 * hidden + j] = dct * (i * (one - g * g))
        for j in range(hidden):
            f = a[hidden + j]
            dr[hidden + j] = dco[j] * (cib[j] * f * (one - f))
            dco[j] *= f


@numba.njit(cache=True, nogil=True, error_model="numpy")
def gru_backward_step(saved, h_in, dh, gym, has_gym, dn, d, dh_out, carry, masked
                      ):  # pragma: no cover - compiled
    """One BPTT step of the GRU cell from the saved ``r, z, n, hn + b_hn`` (B, 4H): writes
    ``dn`` (B, H), ``d`` = dhg (B, 3H) and ``dh_out = dh * z`` (the carry, finished rows: ``dh``);
    ``dh`` gets ``gym`` added in place (when ``has_gym``)."""
    batch, hidden = dh.shape
    one = saved.dtype.type(1.0)
    zero = saved.dtype.type(0.0)
    for b in range(batch):  # one slice per gate, few arrays per loop: LLVM vectorises them
        sb, db, dhb, dnb, dho = saved[b], d[b], dh[b], dn[b], dh_out[b]
        if has_gym:
            gb = gym[b]
            for j in range(hidden):
                dhb[j] += gb[j]
        if masked and carry[b]:
            for k in range(3 * hidden):
                db[k] = zero
            for j in range(hidden):
                dnb[j] = zero
                dho[j] = dhb[j]
            continue
        r, z, n, hn = sb[:hidden], sb[hidden:2 * hidden], sb[2 * hidden:3 * hidden], sb[3 * hidden:]
        dr, dz, dnr, hib = db[:hidden], db[hidden:2 * hidden], db[2 * hidden:], h_in[b]
        for j in range(hidden):
            dnb[j] = dhb[j] * ((one - z[j]) * (one - n[j] * n[j]))
        for j in range(hidden):
            dz[j] = dhb[j] * ((hib[j] - n[j]) * z[j] * (one - z[j]))
        for j in range(hidden):
            dr[j] = dnb[j] * (hn[j] * r[j] * (one - r[j]))
            dnr[j] = dnb[j] * r[j]
        for j in range(hidden):
            dho[j] = dhb[j] * z[j]


@numba.njit(cache=True, nogil=True, error_model="numpy")
def gru_forward_step(s, xg, hg, b_hn, h_prev, h, carry, masked):  # pragma: no cover - compiled
    """``xg`` and ``hg`` (B, 3H) hold the step's input and recurrent projections, the r and z
    columns negated (``-(r, z)`` pre-activations split in two); writes the saved
    ``r, z, n, hn + b_hn`` into ``s`` (B, 4H) and ``h``; finished rows keep ``h_prev``."""
    batch, hidden = h.shape
    one = s.dtype.type(1.0)
    two = s.dtype.type(2.0)
    for b in range(batch):
        # one slice per gate: with offsets into one row (row[2H + j] written, row[j] read) LLVM
        # cannot rule out overlap and leaves the loop scalar (27 us a step instead of 4)
        row, xb, hgb, hp, hb = s[b], xg[b], hg[b], h_prev[b], h[b]
        r, z, n, hn = row[:hidden], row[hidden:2 * hidden], row[2 * hidden:3 * hidden], row[3 * hidden:]
        xn, hgn = xb[2 * hidden:], hgb[2 * hidden:]
        for j in range(2 * hidden):
            row[j] = one / (one + exp(xb[j] + hgb[j]))
        for j in range(hidden):
            hn[j] = hgn[j] + b_hn[j]
        for j in range(hidden):
            n[j] = one - two / (one + exp(two * (xn[j] + r[j] * hn[j])))
        if masked and carry[b]:
            for j in range(hidden):
                hb[j] = hp[j]
            continue
        for j in range(hidden):
            hb[j] = (hp[j] - n[j]) * z[j] + n[j]
