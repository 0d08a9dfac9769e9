"""Fused CPU kernels (numba) for the hot loops of ptychography on the CPU.

NumPy runs an expression such as ``P · interp(O)`` as one pass over memory per operator, each
writing a temporary of the whole batch; on a CPU these passes cost more than the FFTs. Each
kernel here does one such chain in a single pass, frame-parallel where frames are independent.
They are the CPU implementation of the operator in :mod:`twin.operators.ptychography` (which
keeps its array-module code for CuPy) and are tested against that code and by adjoint tests.

Interpolation is separable with ``k`` taps per axis: the window whose top-left is ``org`` (the
pixel of tap 0) is read as ``out[i, j] = Σ_a Σ_c wy[a]·wx[c]·obj[org_r + i + a, org_c + j + c]``.

Floating-point flags: contraction and reassociation are allowed, but not the assumption that
no value is NaN or infinite (the engines detect divergence through NaN costs).
"""

from __future__ import annotations

import numpy as np

try:
    import numba as _nb
except ImportError:  # pragma: no cover - numba is a dependency; a broken install falls back
    _nb = None

AVAILABLE = _nb is not None
_FLAGS = {"nsz", "arcp", "contract", "afn", "reassoc"}


def _jit(parallel: bool):
    def wrap(f):
        if _nb is None:  # pragma: no cover
            return f
        return _nb.njit(parallel=parallel, fastmath=_FLAGS, cache=True, nogil=True)(f)
    return wrap


def _prange(n):  # pragma: no cover - replaced by numba's prange when compiled
    return range(n)


prange = _nb.prange if _nb is not None else _prange


@_jit(parallel=True)
def interp_gather(obj, org, wy, wx, size, out):  # pragma: no cover - compiled
    """out (B, size, size) ← separable ``k``-tap reads of ``obj`` (H, W) at windows ``org``."""
    b_n = out.shape[0]
    k = wy.shape[1]
    for b in prange(b_n):
        r0 = org[b, 0]
        c0 = org[b, 1]
        t = np.empty((size + k - 1, size), np.complex64)
        for ii in range(size + k - 1):
            for j in range(size):
                t[ii, j] = 0
            for c in range(k):
                w = wx[b, c]
                for j in range(size):
                    t[ii, j] += w * obj[r0 + ii, c0 + j + c]
        for i in range(size):
            for j in range(size):
                out[b, i, j] = 0
            for a in range(k):
                w = wy[b, a]
                for j in range(size):
                    out[b, i, j] += w * t[i + a, j]


@_jit(parallel=True)
def interp_exit(obj, org, wy, wx, probe, patch, psi):  # pragma: no cover - compiled
    """patch (B, n, n) ← interpolated windows of ``obj``; psi (B, M, n, n) ← probe_m · patch."""
    b_n, n = patch.shape[0], patch.shape[1]
    k = wy.shape[1]
    m_n = probe.shape[0]
    for b in prange(b_n):
        r0 = org[b, 0]
        c0 = org[b, 1]
        t = np.empty((n + k - 1, n), np.complex64)
        for ii in range(n + k - 1):
            for j in range(n):
                t[ii, j] = 0
            for c in range(k):
                w = wx[b, c]
                for j in range(n):
                    t[ii, j] += w * obj[r0 + ii, c0 + j + c]
        for i in range(n):
            for j in range(n):
                patch[b, i, j] = 0
            for a in range(k):
                w = wy[b, a]
                for j in range(n):
                    patch[b, i, j] += w * t[i + a, j]
            for m in range(m_n):
                for j in range(n):
                    psi[b, m, i, j] = probe[m, i, j] * patch[b, i, j]


#: Row bands of :func:`interp_scatter`: each thread adds every window's rows that fall in its
#: band, so no two threads write one pixel and the order of the sums is fixed.
SCATTER_BANDS = 8


@_jit(parallel=True)
def interp_scatter(out, org, wy, wx, g):  # pragma: no cover - compiled
    """Adjoint of :func:`interp_gather`: add ``g`` (B or 1, s, s) into ``out`` (H, W).

    Parallel over row bands of ``out`` (windows overlap, bands do not); within a band the
    frames are added in order, so the result does not depend on the thread count. A ``g`` of
    one frame counts for every window.
    """
    b_n = org.shape[0]
    s = g.shape[1]
    k = wy.shape[1]
    shared = g.shape[0] == 1
    h = out.shape[0]
    nb = SCATTER_BANDS
    for band in prange(nb):
        lo = band * h // nb
        hi = (band + 1) * h // nb
        t = np.empty((s + k - 1, s), out.dtype)
        for b in range(b_n):
            r0 = org[b, 0]
            c0 = org[b, 1]
            if r0 + s + k - 1 <= lo or r0 >= hi:
                continue
            gb = 0 if shared else b
            # rows ii of the window that land in the band
            i_lo = max(lo - r0, 0)
            i_hi = min(hi - r0, s + k - 1)
            for ii in range(i_lo, i_hi):
                for j in range(s):
                    t[ii, j] = 0
                for a in range(k):
                    i = ii - a
                    if i < 0 or i >= s:
                        continue
                    w = wy[b, a]
                    for j in range(s):
                        t[ii, j] += w * g[gb, i, j]
                for c in range(k):
                    w = wx[b, c]
                    for j in range(s):
                        out[r0 + ii, c0 + j + c] += w * t[ii, j]


@_jit(parallel=True)
def mode_sum_conj(probe, chi, out):  # pragma: no cover - compiled
    """out (B, n, n) ← Σ_m conj(probe_m)·chi_bm: the exit waves' adjoint in the object."""
    b_n, m_n, n = chi.shape[0], chi.shape[1], chi.shape[2]
    for b in prange(b_n):
        for i in range(n):
            for j in range(n):
                acc = np.complex64(0)
                for m in range(m_n):
                    acc += np.conj(probe[m, i, j]) * chi[b, m, i, j]
                out[b, i, j] = acc


@_jit(parallel=True)
def frame_sum_conj(patch, chi, out, weight):  # pragma: no cover - compiled
    """out (M, n, n) ← Σ_b conj(patch_b)·chi_bm; weight (n, n) ← Σ_b |patch_b|².

    Parallel over rows; each row's sum over frames runs in frame order (deterministic).
    """
    b_n, m_n, n = chi.shape[0], chi.shape[1], chi.shape[2]
    for i in prange(n):
        for j in range(n):
            weight[i, j] = 0
            for m in range(m_n):
                out[m, i, j] = 0
        for b in range(b_n):
            for j in range(n):
                v = patch[b, i, j]
                weight[i, j] += v.real * v.real + v.imag * v.imag
            for m in range(m_n):
                for j in range(n):
                    out[m, i, j] += np.conj(patch[b, i, j]) * chi[b, m, i, j]


@_jit(parallel=True)
def modulus_update(far, amp, mask, poisson, cost):  # pragma: no cover - compiled
    """The far-field correction in place: far_bm ← far_bm·(ratio − 1)·mask, with ratio √I/√Î
    (Gaussian / PIE) or I/Î (Poisson ML), Î = Σ_m |far_bm|²; cost_b ← Σ mask·(√Î − √I)².

    ``mask`` (n, n), or (1, 1) for all pixels valid.
    """
    b_n, m_n, n = far.shape[0], far.shape[1], far.shape[2]
    full = mask.shape[0] == 1
    for b in prange(b_n):
        cb = 0.0
        for i in range(n):
            for j in range(n):
                s = np.float32(0)
                for m in range(m_n):
                    v = far[b, m, i, j]
                    s += v.real * v.real + v.imag * v.imag
                a = np.sqrt(s)
                w = np.float32(1) if full else mask[i, j]
                d = (a - amp[b, i, j]) * w
                cb += d * d
                if poisson:
                    r = (amp[b, i, j] * amp[b, i, j] + np.float32(1e-3)) / (s + np.float32(1e-3))
                else:
                    r = amp[b, i, j] / (a + np.float32(1e-6))
                r = (r - np.float32(1)) * w
                for m in range(m_n):
                    far[b, m, i, j] *= r
        cost[b] = cb


@_jit(parallel=True)
def ls_dots(probe, d_obj_patch, d_probe, patch, chi, out):  # pragma: no cover - compiled
    """Per frame b the inner products of LSQML's step search, with a = P·ΔO_b and
    b = ΔP·O_b (never stored): out (B, 5) ← (‖a‖², Re⟨a, χ⟩, ‖b‖², Re⟨a, b⟩, Re⟨b, χ⟩)."""
    b_n, m_n, n = chi.shape[0], chi.shape[1], chi.shape[2]
    for bb in prange(b_n):
        aa = 0.0
        ac = 0.0
        b2 = 0.0
        ab = 0.0
        bc = 0.0
        for m in range(m_n):
            for i in range(n):
                for j in range(n):
                    x = probe[m, i, j] * d_obj_patch[bb, i, j]
                    y = d_probe[m, i, j] * patch[bb, i, j]
                    c = chi[bb, m, i, j]
                    aa += x.real * x.real + x.imag * x.imag
                    ac += x.real * c.real + x.imag * c.imag
                    b2 += y.real * y.real + y.imag * y.imag
                    ab += x.real * y.real + x.imag * y.imag
                    bc += y.real * c.real + y.imag * c.imag
        out[bb, 0] = aa
        out[bb, 1] = ac
        out[bb, 2] = b2
        out[bb, 3] = ab
        out[bb, 4] = bc
