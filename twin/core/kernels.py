"""Fused CPU kernels (numba) for the hot loops of ptychography on the CPU.

NumPy runs an expression such as ``P · interp(O)`` as one pass over memory per operator, each
writing a temporary of the whole batch; on a CPU these passes cost more than the FFTs. Each
kernel here does one such chain in a single pass, frame-parallel where frames are independent.
They are the CPU implementation of the operator in :mod:`twin.operators.ptychography` (which
keeps its array-module code for CuPy) and are tested against that code and by adjoint tests.

Interpolation is separable with ``k`` taps per axis: the window whose top-left is ``org`` (the
pixel of tap 0) is read as ``out[i, j] = Σ_a Σ_c wy[a]·wx[c]·obj[org_r + i + a, org_c + j + c]``.

Floating-point flags: contraction (fused multiply-add), reciprocals and approximate functions
are allowed, but neither the assumption that no value is NaN or infinite (the engines detect
divergence through NaN costs) nor reassociation. With reassociation the compiler chose the order
of sums differently when it compiled afresh and when numba's cache was loaded, so a
reconstruction's last bits changed after any edit of this file; without it every compilation
gives the same bits, with any thread count (tests/core/test_kernels_repro.py). Reductions are
written so that they still vectorise: per column into an array, then over the columns in order
(:func:`_ordered_sum`); the simulation's kernels are compiled with no flags at all
(:mod:`twin.core.simkernels`).
"""

from __future__ import annotations

import os

import numpy as np

# numba's OpenMP threads spin after each parallel kernel by default, and the FFT workers that
# run next then share the cores with them: the FFTs after a kernel took 2.1× as long (2.45 ms
# against 1.16 ms for 64 frames of 64², 2 cores). Idle OpenMP threads sleep instead, unless the
# user has chosen otherwise. Set before numba loads its OpenMP pool.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

try:
    import numba as _nb
except ImportError:  # pragma: no cover - numba is a dependency; a broken install falls back
    _nb = None

AVAILABLE = _nb is not None
_FLAGS = {"nsz", "arcp", "contract", "afn"}


def _compile(f, fastmath=_FLAGS, **kw):
    """numba.njit with an on-disk cache (next to this file, or numba's user-wide folder); where
    neither can be written, compiled anew in each process rather than failing."""
    try:
        return _nb.njit(cache=True, fastmath=fastmath, **kw)(f)
    except RuntimeError:  # pragma: no cover - no writable cache location
        return _nb.njit(cache=False, fastmath=fastmath, **kw)(f)


def _jit(parallel: bool, fastmath=_FLAGS):
    """numba.njit (cached, ``nogil``) with ``parallel`` and the ``fastmath`` flags (a set, or
    False for strict IEEE order: the results of every compilation are then the same bits)."""
    def wrap(f):
        """Compile ``f`` with :func:`_compile` (or return it unchanged when numba is missing).

        Parameters
        ----------
        f : callable
            A numba-compilable Python function.

        Returns
        -------
        callable
            The compiled dispatcher, or ``f`` itself without numba.
        """
        if _nb is None:  # pragma: no cover
            return f
        return _compile(f, fastmath=fastmath, parallel=parallel, nogil=True)
    return wrap


def _prange(n):  # pragma: no cover - replaced by numba's prange when compiled
    return range(n)


prange = _nb.prange if _nb is not None else _prange


# The interpolation kernels work on float32 views of complex64 arrays (``ch`` = 2 floats per
# pixel; ``ch`` = 1 for real arrays), one contiguous row at a time with the taps unrolled
# (k = 1, 2, 4): plain float loops that the compiler vectorises. Measured on 64 frames of 64²,
# 4 taps, 2 cores: 0.21 ms for the fused exit waves, against 0.87 ms for the same loops with
# the taps as an inner loop and 0.93 ms on complex numbers.


def _inline(f):
    if _nb is None:  # pragma: no cover
        return f
    return _compile(f, inline="always")


@_inline
def _ordered_sum(v):  # pragma: no cover - compiled
    """Σ_j v[j] in index order (a float64 scalar)."""
    s = 0.0
    for j in range(v.shape[0]):
        s += v[j]
    return s


@_inline
def _taps(dst, src, w, ch, m):  # pragma: no cover - compiled
    """dst[j] = Σ_c w[c]·src[j + ch·c] for j < m (k = len(w) taps: 1, 2, 4, or any)."""
    k = w.shape[0]
    if k == 4:
        w0, w1, w2, w3 = w[0], w[1], w[2], w[3]
        o1, o2, o3 = ch, 2 * ch, 3 * ch
        for j in range(m):
            dst[j] = w0 * src[j] + w1 * src[j + o1] + w2 * src[j + o2] + w3 * src[j + o3]
    elif k == 2:
        w0, w1 = w[0], w[1]
        for j in range(m):
            dst[j] = w0 * src[j] + w1 * src[j + ch]
    elif k == 1:
        w0 = w[0]
        for j in range(m):
            dst[j] = w0 * src[j]
    else:
        for j in range(m):
            acc = np.float32(0)
            for c in range(k):
                acc += w[c] * src[j + ch * c]
            dst[j] = acc


@_inline
def _rows(dst, t, i, w, m):  # pragma: no cover - compiled
    """dst[j] = Σ_a w[a]·t[i + a, j] for j < m."""
    k = w.shape[0]
    if k == 4:
        w0, w1, w2, w3 = w[0], w[1], w[2], w[3]
        for j in range(m):
            dst[j] = w0 * t[i, j] + w1 * t[i + 1, j] + w2 * t[i + 2, j] + w3 * t[i + 3, j]
    elif k == 2:
        w0, w1 = w[0], w[1]
        for j in range(m):
            dst[j] = w0 * t[i, j] + w1 * t[i + 1, j]
    else:
        for j in range(m):
            acc = np.float32(0)
            for a in range(k):
                acc += w[a] * t[i + a, j]
            dst[j] = acc


@_jit(parallel=True)
def interp_gather(objf, org, wy, wx, size, ch, outf):  # pragma: no cover - compiled
    """outf (B, size, ch·size) ← separable ``k``-tap reads of ``objf`` (H, ch·W) at ``org``.

    Writes in place; returns None. Frame-parallel.

    Parameters
    ----------
    objf : ndarray (H, ch·W) float32
        The object as a float view (``ch`` = 2: complex64 as float pairs; 1: real).
    org : ndarray (B, 2) int
        Pixel (row, col) of tap 0 of each window.
    wy, wx : ndarray (B, k) float32
        Row and column tap weights of each window.
    size : int
        Window side, pixels.
    ch : int
        Floats per pixel, 1 or 2.
    outf : ndarray (B, size, ch·size) float32
        Output windows, overwritten.
    """
    b_n = outf.shape[0]
    k = wy.shape[1]
    w2 = ch * size
    for b in prange(b_n):
        r0 = org[b, 0]
        c0 = ch * org[b, 1]
        t = np.empty((size + k - 1, w2), np.float32)
        for ii in range(size + k - 1):
            src = objf[r0 + ii, c0:c0 + w2 + ch * (k - 1)]
            if ch == 2:                   # a constant stride for the compiler
                _taps(t[ii], src, wx[b], 2, w2)
            else:
                _taps(t[ii], src, wx[b], 1, w2)
        for i in range(size):
            _rows(outf[b, i], t, i, wy[b], w2)


@_jit(parallel=True)
def interp_exit(objf, org, wy, wx, probef, patchf, psif):  # pragma: no cover - compiled
    """Float views of complex64 arrays: patch (B, n, n) ← interpolated windows of the object;
    psi (B, M, n, n) ← probe_m · patch.

    Writes ``patchf`` and ``psif`` in place; returns None. Frame-parallel.

    Parameters
    ----------
    objf : ndarray (H, 2·W) float32
        The complex64 object viewed as float pairs.
    org : ndarray (B, 2) int
        Pixel (row, col) of tap 0 of each window.
    wy, wx : ndarray (B, k) float32
        Row and column tap weights.
    probef : ndarray (M, n, 2·n) float32
        The probe modes' float view.
    patchf : ndarray (B, n, 2·n) float32
        Output object windows (float view), overwritten.
    psif : ndarray (B, M, n, 2·n) float32
        Output exit waves (float view), overwritten.
    """
    b_n, n = patchf.shape[0], patchf.shape[1]
    k = wy.shape[1]
    m_n = probef.shape[0]
    n2 = 2 * n
    for b in prange(b_n):
        r0 = org[b, 0]
        c0 = 2 * org[b, 1]
        t = np.empty((n + k - 1, n2), np.float32)
        for ii in range(n + k - 1):
            _taps(t[ii], objf[r0 + ii, c0:c0 + n2 + 2 * (k - 1)], wx[b], 2, n2)
        for i in range(n):
            row = patchf[b, i]
            _rows(row, t, i, wy[b], n2)
            for m in range(m_n):
                pr = probef[m, i]
                out = psif[b, m, i]
                for j in range(n):
                    out[2 * j] = pr[2 * j] * row[2 * j] - pr[2 * j + 1] * row[2 * j + 1]
                    out[2 * j + 1] = pr[2 * j] * row[2 * j + 1] + pr[2 * j + 1] * row[2 * j]


#: Row bands of :func:`interp_scatter`: each thread adds every window's rows that fall in its
#: band, so no two threads write one pixel and the order of the sums is fixed.
SCATTER_BANDS = 8


@_jit(parallel=True)
def interp_scatter(outf, org, wy, wx, gf, ch):  # pragma: no cover - compiled
    """Adjoint of :func:`interp_gather`: add ``gf`` (B or 1, s, ch·s) into ``outf`` (H, ch·W).

    Parallel over row bands of ``out`` (windows overlap, bands do not); within a band the
    frames are added in order, so the result does not depend on the thread count. A ``g`` of
    one frame counts for every window.

    Parameters
    ----------
    outf : ndarray (H, ch·W) float32
        Accumulator (float view of the object or its gradient), added to in place.
    org : ndarray (B, 2) int
        Pixel (row, col) of tap 0 of each window.
    wy, wx : ndarray (B, k) float32
        Row and column tap weights.
    gf : ndarray (B, s, ch·s) or (1, s, ch·s) float32
        Windows to add (float view).
    ch : int
        Floats per pixel, 1 or 2.
    """
    b_n = org.shape[0]
    s = gf.shape[1]
    w2 = gf.shape[2]
    k = wy.shape[1]
    shared = gf.shape[0] == 1
    h = outf.shape[0]
    nb = SCATTER_BANDS
    for band in prange(nb):
        lo = band * h // nb
        hi = (band + 1) * h // nb
        t = np.empty((s + k - 1, w2), np.float32)
        for b in range(b_n):
            r0 = org[b, 0]
            c0 = ch * org[b, 1]
            if r0 + s + k - 1 <= lo or r0 >= hi:
                continue
            gb = 0 if shared else b
            # rows ii of the window that land in the band: row taps, then column taps
            for ii in range(max(lo - r0, 0), min(hi - r0, s + k - 1)):
                tr = t[ii]
                for j in range(w2):
                    tr[j] = 0
                for a in range(k):
                    i = ii - a
                    if i >= 0 and i < s:
                        w = wy[b, a]
                        g = gf[gb, i]
                        for j in range(w2):
                            tr[j] += w * g[j]
                for c in range(k):
                    w = wx[b, c]
                    o = outf[r0 + ii, c0 + ch * c:c0 + ch * c + w2]
                    for j in range(w2):
                        o[j] += w * tr[j]


@_jit(parallel=True)
def mode_sum_conj(probe, chi, out):  # pragma: no cover - compiled
    """out (B, n, n) ← Σ_m conj(probe_m)·chi_bm: the exit waves' adjoint in the object
    (modes outermost: every inner loop runs along a contiguous row).

    Frame-parallel; writes ``out`` in place and returns None.

    Parameters
    ----------
    probe : ndarray (M, n, n) complex64
        Probe modes.
    chi : ndarray (B, M, n, n) complex64
        Exit-wave updates per frame and mode.
    out : ndarray (B, n, n) complex64
        Output, overwritten.
    """
    b_n, m_n, n = chi.shape[0], chi.shape[1], chi.shape[2]
    for b in prange(b_n):
        for i in range(n):
            o = out[b, i]
            p = probe[0, i]
            c = chi[b, 0, i]
            for j in range(n):
                o[j] = np.conj(p[j]) * c[j]
            for m in range(1, m_n):
                p = probe[m, i]
                c = chi[b, m, i]
                for j in range(n):
                    o[j] += np.conj(p[j]) * c[j]


@_jit(parallel=True)
def frame_sum_conj(patch, chi, out, weight):  # pragma: no cover - compiled
    """out (M, n, n) ← Σ_b conj(patch_b)·chi_bm; weight (n, n) ← Σ_b |patch_b|².

    Parallel over rows; each row's sum over frames runs in frame order (deterministic).

    Parameters
    ----------
    patch : ndarray (B, n, n) complex64
        Object windows.
    chi : ndarray (B, M, n, n) complex64
        Exit-wave updates.
    out : ndarray (M, n, n) complex64
        Output, overwritten.
    weight : ndarray (n, n) float32
        Output Σ_b |patch_b|², overwritten.
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


@_inline
def _block_power(farf, b, i, u, r):  # pragma: no cover - compiled
    """r[j] ← Σ_m Σ_block |far_bm|² over the u×u block (i, j) of frame ``b``, for every j
    (``farf`` the float view (B, M, n, 2n) of :func:`modulus_update`)."""
    m_n, n = farf.shape[1], farf.shape[2]
    nd = n // u
    for j in range(nd):
        r[j] = 0
    for m in range(m_n):
        for a in range(u):
            row = farf[b, m, i * u + a]
            if u == 1:
                for j in range(nd):
                    x = row[2 * j]
                    y = row[2 * j + 1]
                    r[j] += x * x + y * y
            else:
                for jj in range(n):
                    x = row[2 * jj]
                    y = row[2 * jj + 1]
                    r[jj // u] += x * x + y * y


@_inline
def _scale_block_rows(farf, b, i, u, r):  # pragma: no cover - compiled
    """far_bm ← far_bm·r[j] on the u rows of block row ``i`` of frame ``b``, every mode m, the
    block (i, j) scaled by r[j] (``farf`` as in :func:`_block_power`)."""
    m_n, n = farf.shape[1], farf.shape[2]
    nd = n // u
    for m in range(m_n):
        for a in range(u):
            row = farf[b, m, i * u + a]
            if u == 1:
                for j in range(nd):
                    row[2 * j] *= r[j]
                    row[2 * j + 1] *= r[j]
            else:
                for jj in range(n):
                    row[2 * jj] *= r[jj // u]
                    row[2 * jj + 1] *= r[jj // u]


@_jit(parallel=True)
def modulus_update(farf, amp, mask, poisson, u, cost):  # pragma: no cover - compiled
    """The far-field correction in place on a float view (B, M, n, 2n) of the waves, measured
    frames binned ``u``×``u`` (amp (B, n/u, n/u); u = 1: none): far_bm ← far_bm·(ratio − 1)·mask,
    with ratio √I/√Î (Gaussian / PIE) or I/Î (Poisson ML), Î = Σ_m Σ_block |far_bm|²;
    cost_b ← Σ mask·(√Î − √I)². ``mask`` (n/u, n/u), or (1, 1): all valid.

    The ratios are regularised: √I/(√Î + 10⁻⁶) and (I + 10⁻³)/(Î + 10⁻³). Frame-parallel; returns
    None.

    Parameters
    ----------
    farf : ndarray (B, M, n, 2·n) float32
        Far fields of every mode (float view of complex64), replaced by the correction.
    amp : ndarray (B, n/u, n/u) float32
        Measured amplitudes √I (photon counts, square-rooted).
    mask : ndarray (n/u, n/u) or (1, 1) float32
        Weight of each measured pixel (0 for invalid ones); (1, 1) for all valid.
    poisson : bool
        Poisson maximum-likelihood ratio I/Î instead of the amplitude ratio.
    u : int
        Binning factor of the measured frames; ``n`` must be a multiple of it.
    cost : ndarray (B,) float
        Output masked amplitude misfit per frame, overwritten.
    """
    b_n, nd = farf.shape[0], farf.shape[2] // u
    full = mask.shape[0] == 1
    for b in prange(b_n):
        cv = np.zeros(nd)                 # cost per column: the sum is over j in order, last
        r = np.empty(nd, np.float32)
        for i in range(nd):
            _block_power(farf, b, i, u, r)
            for j in range(nd):
                s = r[j]
                am = np.sqrt(s)
                w = np.float32(1) if full else mask[i, j]
                d = (am - amp[b, i, j]) * w
                cv[j] += d * d
                if poisson:
                    q = (amp[b, i, j] * amp[b, i, j] + np.float32(1e-3)) / (s + np.float32(1e-3))
                else:
                    q = amp[b, i, j] / (am + np.float32(1e-6))
                r[j] = (q - np.float32(1)) * w
            _scale_block_rows(farf, b, i, u, r)
        cost[b] = _ordered_sum(cv)


@_jit(parallel=True)
def ls_dots(probe, d_obj_patch, d_probe, patch, chi, out):  # pragma: no cover - compiled
    """Per frame b the inner products of LSQML's step search, with a = P·ΔO_b and
    b = ΔP·O_b (never stored): out (B, 5) ← (‖a‖², Re⟨a, χ⟩, ‖b‖², Re⟨a, b⟩, Re⟨b, χ⟩).

    Each sum runs per column j over modes and rows, then over j in order (see
    :func:`_ordered_sum`). Frame-parallel; returns None.

    Parameters
    ----------
    probe : ndarray (M, n, n) complex64
        Probe modes P.
    d_obj_patch : ndarray (B, n, n) complex64
        Object update direction ΔO in each frame's window.
    d_probe : ndarray (M, n, n) complex64
        Probe update direction ΔP.
    patch : ndarray (B, n, n) complex64
        Object windows O_b.
    chi : ndarray (B, M, n, n) complex64
        Exit-wave updates χ.
    out : ndarray (B, 5) float
        Output, overwritten.
    """
    b_n, m_n, n = chi.shape[0], chi.shape[1], chi.shape[2]
    for bb in prange(b_n):
        acc = np.zeros((5, n))
        aa, ac, b2, ab, bc = acc[0], acc[1], acc[2], acc[3], acc[4]
        for m in range(m_n):
            for i in range(n):
                pm, dpm = probe[m, i], d_probe[m, i]
                dop, pa, ch = d_obj_patch[bb, i], patch[bb, i], chi[bb, m, i]
                for j in range(n):
                    x = pm[j] * dop[j]
                    y = dpm[j] * pa[j]
                    c = ch[j]
                    aa[j] += x.real * x.real + x.imag * x.imag
                    ac[j] += x.real * c.real + x.imag * c.imag
                    b2[j] += y.real * y.real + y.imag * y.imag
                    ab[j] += x.real * y.real + x.imag * y.imag
                    bc[j] += y.real * c.real + y.imag * c.imag
        for q in range(5):
            out[bb, q] = _ordered_sum(acc[q])


@_jit(parallel=True)
def direction_dots(probe, g, chi, out):  # pragma: no cover - compiled
    """Per frame b, for the exit-wave direction d_bm = probe_m·g_b (never stored):
    out (B, 2) ← (Re⟨d_b, χ_b⟩, ‖d_b‖²), summed per column, then over columns in order.

    Frame-parallel; returns None.

    Parameters
    ----------
    probe : ndarray (M, n, n) complex64
        Probe modes.
    g : ndarray (B, n, n) complex64
        Per-frame object-space direction.
    chi : ndarray (B, M, n, n) complex64
        Exit-wave updates.
    out : ndarray (B, 2) float
        Output, overwritten.
    """
    b_n, m_n, n = chi.shape[0], chi.shape[1], chi.shape[2]
    for bb in prange(b_n):
        num = np.zeros(n)
        den = np.zeros(n)
        for m in range(m_n):
            for i in range(n):
                pm, gb, ch = probe[m, i], g[bb, i], chi[bb, m, i]
                for j in range(n):
                    x = pm[j] * gb[j]
                    c = ch[j]
                    num[j] += x.real * c.real + x.imag * c.imag
                    den[j] += x.real * x.real + x.imag * x.imag
        out[bb, 0] = _ordered_sum(num)
        out[bb, 1] = _ordered_sum(den)


@_jit(parallel=True)
def central_differences(wf, gyf, gxf):  # pragma: no cover - compiled
    """Float views: from windows w (B, n+2, n+2) with a one-pixel border, the central
    differences gy[b, i, j] = (w[i+2, j+1] − w[i, j+1])/2 and gx = (w[i+1, j+2] − w[i+1, j])/2,
    each (B, n, n).

    Frame-parallel; returns None.

    Parameters
    ----------
    wf : ndarray (B, n+2, 2·(n+2)) float32
        Complex64 windows with a one-pixel border, viewed as float pairs.
    gyf, gxf : ndarray (B, n, 2·n) float32
        Outputs (float views of complex64), overwritten; differences per pixel, not per metre.
    """
    b_n, n = gyf.shape[0], gyf.shape[1]
    n2 = 2 * n
    for b in prange(b_n):
        for i in range(n):
            up = wf[b, i]
            mid = wf[b, i + 1]
            dn = wf[b, i + 2]
            gy = gyf[b, i]
            gx = gxf[b, i]
            for j in range(n2):
                gy[j] = np.float32(0.5) * (dn[j + 2] - up[j + 2])
                gx[j] = np.float32(0.5) * (mid[j + 4] - mid[j])
