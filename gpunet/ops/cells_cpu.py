"""numba kernels for the cell math of the NumPy fast recurrent loops (:mod:`gpunet.ops.recurrent_cpu`).

One kernel per timestep replaces the chain of small in-place ufuncs between two GEMMs (each of
which costs a call and a pass over the arrays): the gate activations, the state update, the
length mask and the saved buffers are written in one pass.

The exponentials stay in NumPy: without Intel SVML (not installed here) numba calls the scalar
``libm`` ``exp``/``tanh`` (``tanh`` about 23 ns per element, ``exp`` about 5 ns), while NumPy's
vectorised ``exp`` runs at about 2 ns per element. So each step keeps one ``numpy.exp`` over
all of its gates (pre-activations scaled as :func:`gpunet.ops.recurrent_cpu._exp_scale` says:
``sigmoid(x) = 1 / (1 + exp(-x))``, ``tanh(x) = 1 - 2 / (1 + exp(2x))``), and the kernels do the
rest. No fastmath: NaN and inf must propagate exactly as in the reference.
"""

from __future__ import annotations

import math

import numba

from gpunet import settings

settings.apply_threads()  # before numba's pool starts: see gpunet.parallel

@numba.njit(cache=True, nogil=True)
def lstm_forward_step(e, c_prev, h_prev, c, h, carry, masked):  # pragma: no cover - compiled
    """``e`` (B, 4H) holds ``exp`` of the scaled pre-activations; in place it becomes the
    activated gates ``i, f, g, o`` (the saved layout). Writes ``c``, ``h`` (B, H); rows with
    ``masked and carry[b]`` keep ``c_prev``, ``h_prev``."""
    batch, gates = e.shape
    hidden = gates // 4
    one = e.dtype.type(1.0)
    two = e.dtype.type(2.0)
    for b in range(batch):
        for j in range(hidden):
            i = one / (one + e[b, j])
            f = one / (one + e[b, hidden + j])
            g = one - two / (one + e[b, 2 * hidden + j])
            o = one / (one + e[b, 3 * hidden + j])
            e[b, j] = i
            e[b, hidden + j] = f
            e[b, 2 * hidden + j] = g
            e[b, 3 * hidden + j] = o
            c[b, j] = f * c_prev[b, j] + i * g
        if masked and carry[b]:
            for j in range(hidden):
                c[b, j] = c_prev[b, j]
                h[b, j] = h_prev[b, j]
            continue
        for j in range(hidden):
            h[b, j] = e[b, 3 * hidden + j] * (one - two / (one + math.exp(two * c[b, j])))


@numba.njit(cache=True, nogil=True)
def lstm_backward_step(acts, c_in, tc, dh, gym, has_gym, dc, d, dc_out, carry, masked
                       ):  # pragma: no cover - compiled
    """One BPTT step of the LSTM cell. ``dh`` (B, H) gets ``gym`` added in place (when
    ``has_gym``); writes ``d`` = dxg (B, 4H) and ``dc_out`` = dc_prev. Finished rows get ``d = 0``
    and carry ``dc`` through."""
    batch, gates = acts.shape
    hidden = gates // 4
    one = acts.dtype.type(1.0)
    zero = acts.dtype.type(0.0)
    for b in range(batch):
        keep = masked and carry[b]
        for j in range(hidden):
            g_h = dh[b, j]
            if has_gym:
                g_h += gym[b, j]
                dh[b, j] = g_h
            if keep:
                d[b, j] = zero
                d[b, hidden + j] = zero
                d[b, 2 * hidden + j] = zero
                d[b, 3 * hidden + j] = zero
                dc_out[b, j] = dc[b, j]
                continue
            i = acts[b, j]
            f = acts[b, hidden + j]
            g = acts[b, 2 * hidden + j]
            o = acts[b, 3 * hidden + j]
            t = tc[b, j]
            dct = g_h * (o * (one - t * t)) + dc[b, j]
            d[b, j] = dct * (g * i * (one - i))
            d[b, hidden + j] = dct * (c_in[b, j] * f * (one - f))
            d[b, 2 * hidden + j] = dct * (i * (one - g * g))
            d[b, 3 * hidden + j] = g_h * (t * o * (one - o))
            dc_out[b, j] = dct * f


@numba.njit(cache=True, nogil=True)
def gru_backward_step(saved, h_in, dh, gym, has_gym, dn, d, dh_out, carry, masked
                      ):  # pragma: no cover - compiled
    """One BPTT step of the GRU cell from the saved ``r, z, n, hn + b_hn`` (B, 4H): writes
    ``dn`` (B, H), ``d`` = dhg (B, 3H) and ``dh_out = dh * z`` (the carry, finished rows: ``dh``);
    ``dh`` gets ``gym`` added in place (when ``has_gym``)."""
    batch, hidden = dh.shape
    one = saved.dtype.type(1.0)
    zero = saved.dtype.type(0.0)
    for b in range(batch):
        keep = masked and carry[b]
        for j in range(hidden):
            g_h = dh[b, j]
            if has_gym:
                g_h += gym[b, j]
                dh[b, j] = g_h
            if keep:
                dn[b, j] = zero
                d[b, j] = zero
                d[b, hidden + j] = zero
                d[b, 2 * hidden + j] = zero
                dh_out[b, j] = g_h
                continue
            r = saved[b, j]
            z = saved[b, hidden + j]
            n = saved[b, 2 * hidden + j]
            hn = saved[b, 3 * hidden + j]
            dnv = g_h * ((one - z) * (one - n * n))
            dn[b, j] = dnv
            d[b, hidden + j] = g_h * ((h_in[b, j] - n) * z * (one - z))
            d[b, j] = dnv * (hn * r * (one - r))
            d[b, 2 * hidden + j] = dnv * r
            dh_out[b, j] = g_h * z


@numba.njit(cache=True, nogil=True)
def gru_forward_step(s, xn, hg_n, b_hn, h_prev, h, carry, masked):  # pragma: no cover - compiled
    """``s`` (B, 4H) holds ``exp(-(r, z pre-activations))`` in its first 2H columns; in place it
    becomes the saved ``r, z, n, hn + b_hn``; writes ``h``; finished rows keep ``h_prev``."""
    batch, hidden = h.shape
    one = s.dtype.type(1.0)
    two = s.dtype.type(2.0)
    for b in range(batch):
        for j in range(2 * hidden):
            s[b, j] = one / (one + s[b, j])
        keep = masked and carry[b]
        for j in range(hidden):
            hn = hg_n[b, j] + b_hn[j]
            s[b, 3 * hidden + j] = hn
            pre = xn[b, j] + s[b, j] * hn
            n = one - two / (one + math.exp(two * pre))
            s[b, 2 * hidden + j] = n
            if keep:
                h[b, j] = h_prev[b, j]
            else:
                z = s[b, hidden + j]
                h[b, j] = (h_prev[b, j] - n) * z + n
