"""Fused CPU kernels (numba) of the detector-side forward model
(:mod:`twin.operators.farfield`): the passes between its FFTs, each one sweep over memory.

* :func:`spectrum_ramp` — a cached half-transformed probe times a frame's sub-pixel ramp;
* :func:`exit_product` — shifted probe × object window × separable phase ramp (the exit wave
  of a slice), out of place from a stack of probes;
* :func:`gather_columns` — the far field's kept columns after the row transforms (the pruned
  2D FFT);
* :func:`modulus_bin` — |·|² summed over the modes and over each s × s block of far-field
  samples (one detector pixel), rows and columns read in centred order.

They work on float32 views of complex64 arrays (two floats per sample), like
:mod:`twin.core.kernels`, and are tested against the array code of
:mod:`twin.operators.farfield` that they replace (tests/core/test_kernels.py). Each output
element is computed from its inputs alone, in a fixed order: the results do not depend on
the batch or on the thread count.

They are compiled without fast-math (strict IEEE order, no contraction into FMA). With
``reassoc`` the compiler may sum in any order it likes, and it does not always like the same:
:func:`modulus_bin` compiled afresh and the same source loaded from numba's on-disk cache gave
sums that differed in the last bit, which the photon counting downstream turns into different
counts (a stale cache, after an edit or a checkout, made one run of a scenario differ from the
next). In source order every compilation gives the same bits, at no measurable cost here (the
passes are memory-bound).
"""

from __future__ import annotations

import numpy as np

from twin.core.kernels import AVAILABLE, _jit, prange

__all__ = ["AVAILABLE", "spectrum_ramp", "exit_product", "gather_columns", "modulus_bin"]


@_jit(parallel=True, fastmath=False)
def spectrum_ramp(qf, iq, ex, outf):  # pragma: no cover - compiled
    """outf[u, m, y, x] = q[iq[u], m, y, x] · ex[u, x] (complex; float views (…, 2N)).

    Parallel over (u, m, y); writes ``outf`` in place and returns None.

    Parameters
    ----------
    qf : ndarray (Q, M, ny, 2·nx) float32
        Cached half-transformed probes (complex64 as float pairs).
    iq : ndarray (U,) int
        Which cached probe each output frame uses.
    ex : ndarray (U, 2·nx) float32
        Per-frame phase ramp along x (complex64 as float pairs).
    outf : ndarray (U, M, ny, 2·nx) float32
        Output, overwritten.
    """
    u_n, m_n, ny = outf.shape[0], outf.shape[1], outf.shape[2]
    nx = outf.shape[3] // 2
    for t in prange(u_n * m_n * ny):
        u = t // (m_n * ny)
        m = (t // ny) % m_n
        y = t % ny
        src = qf[iq[u], m, y]
        dst = outf[u, m, y]
        e = ex[u]
        for j in range(nx):
            a, b = src[2 * j], src[2 * j + 1]
            c, d = e[2 * j], e[2 * j + 1]
            dst[2 * j] = a * c - b * d
            dst[2 * j + 1] = a * d + b * c


#: Rows per parallel task of :func:`exit_product` (one scratch row per task).
ROWS = 16


@_jit(parallel=True, fastmath=False)
def exit_product(srcf, inv, objf, org, ry, rx, ramp, dstf):  # pragma: no cover - compiled
    """dst[k, m, y, x] = src[inv[k], m, y, x] · obj[org[k, 0] + y, org[k, 1] + x] (· ry[y] ·
    rx[x] if ``ramp``) (complex; float views). ``src`` may be ``dst`` with ``inv`` = 0 … K − 1
    (in place).

    Parallel over frames and blocks of :data:`ROWS` rows; returns None.

    Parameters
    ----------
    srcf : ndarray (S, M, ny, 2·nx) float32
        Shifted probes (complex64 as float pairs).
    inv : ndarray (K,) int
        Which source probe stack each frame uses.
    objf : ndarray (H, 2·W) float32
        The object slice (complex64 as float pairs).
    org : ndarray (K, 2) int
        Top-left (row, col) of each frame's object window, pixels.
    ry : ndarray (2·ny,) float32
        Row factor of the separable phase ramp (complex as float pairs).
    rx : ndarray (2·nx,) float32
        Column factor of the separable phase ramp.
    ramp : bool
        Multiply by ry[y]·rx[x].
    dstf : ndarray (K, M, ny, 2·nx) float32
        Output exit waves, overwritten.
    """
    k_n, m_n, ny = dstf.shape[0], dstf.shape[1], dstf.shape[2]
    nx = dstf.shape[3] // 2
    nb = (ny + ROWS - 1) // ROWS
    for t in prange(k_n * nb):
        k = t // nb
        y0 = (t % nb) * ROWS
        c0 = 2 * org[k, 1]
        w = np.empty(2 * nx, np.float32)
        for y in range(y0, min(y0 + ROWS, ny)):
            orow = objf[org[k, 0] + y, c0:c0 + 2 * nx]
            if ramp:
                yr, yi = ry[2 * y], ry[2 * y + 1]
                for j in range(nx):
                    a, b = orow[2 * j], orow[2 * j + 1]
                    c, d = rx[2 * j], rx[2 * j + 1]
                    e, f = c * yr - d * yi, c * yi + d * yr          # ry[y]·rx[x]
                    w[2 * j] = a * e - b * f
                    w[2 * j + 1] = a * f + b * e
            else:
                w[:] = orow
            for m in range(m_n):
                src = srcf[inv[k], m, y]
                dst = dstf[k, m, y]
                for j in range(nx):
                    a, b = src[2 * j], src[2 * j + 1]
                    c, d = w[2 * j], w[2 * j + 1]
                    dst[2 * j] = a * c - b * d
                    dst[2 * j + 1] = a * d + b * c


@_jit(parallel=True, fastmath=False)
def gather_columns(ff, off, outf):  # pragma: no cover - compiled
    """outf[…, y, j] = f[…, y, (j + off) mod N] for j < S ≤ N (float views: (P, N, 2N) →
    (P, N, 2S)): at most two contiguous runs per row.

    Parallel over (p, y); returns None.

    Parameters
    ----------
    ff : ndarray (P, ny, 2·N) float32
        Row-transformed fields (complex64 as float pairs).
    off : int
        Column offset of the first kept column; taken modulo N.
    outf : ndarray (P, ny, 2·S) float32
        Output kept columns, overwritten.
    """
    p_n, ny = outf.shape[0], outf.shape[1]
    s_n = outf.shape[2] // 2
    n_n = ff.shape[2] // 2
    off = off % n_n
    n1 = min(s_n, n_n - off)
    for t in prange(p_n * ny):
        p = t // ny
        y = t % ny
        src = ff[p, y]
        dst = outf[p, y]
        dst[:2 * n1] = src[2 * off:2 * off + 2 * n1]
        if n1 < s_n:
            dst[2 * n1:] = src[:2 * (s_n - n1)]


@_jit(parallel=True, fastmath=False)
def modulus_bin(hf, row_off, col_off, s, out):  # pragma: no cover - compiled
    """out[k, i, j] = Σ_m Σ_a Σ_b |h[k, m, (i·s + a + row_off) mod R, (j·s + b + col_off) mod
    C]|² for out (K, nr, nc) float32 and h (K, M, R, C) complex64 as floats (K, M, R, 2C).

    Parallel over (k, i); sums in source order (deterministic); returns None.

    Parameters
    ----------
    hf : ndarray (K, M, R, 2·C) float32
        Far fields of every mode (complex64 as float pairs).
    row_off, col_off : int
        Offsets (samples) of the first row and column read, taken modulo R and C (centred order).
    s : int
        Binning: far-field samples per detector pixel along each axis.
    out : ndarray (K, nr, nc) float32
        Output intensities per detector pixel, overwritten.
    """
    k_n, nr, nc = out.shape[0], out.shape[1], out.shape[2]
    m_n, r_n = hf.shape[1], hf.shape[2]
    c_n = hf.shape[3] // 2
    for t in prange(k_n * nr):
        k = t // nr
        i = t % nr
        row = out[k, i]
        cols = np.empty(nc * s, np.int64)
        for j in range(nc * s):
            cols[j] = 2 * ((j + col_off) % c_n)
        for j in range(nc):
            row[j] = 0
        for m in range(m_n):
            for a in range(s):
                src = hf[k, m, (i * s + a + row_off) % r_n]
                for j in range(nc):
                    acc = np.float32(0)
                    for b in range(s):
                        c = cols[j * s + b]
                        acc += src[c] * src[c] + src[c + 1] * src[c + 1]
                    row[j] += acc
