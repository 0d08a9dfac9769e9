"""The detector-side forward model on a fine grid: the one that simulation runs, and that
:meth:`twin.operators.ptychography.FarFieldPtychography.intensity` shares.

For scan position k and probe mode m, on a window of N × N fine pixels (pixel dx/s):

1. the probe shifted by the position's sub-pixel part f, rounded to :data:`SUBPIXEL_QUANTUM`
   (:class:`ShiftedProbes`);
2. the exit wave through the slices O_1 … O_L: ψ ← P · O_1, then ψ ← prop(ψ) · O_l
   (angular spectrum between slices) (:meth:`FineFarField.exit_fwd`);
3. the far field: the unitary DFT of ψ times a half-bin phase ramp (so that s consecutive
   samples sit at the centres of a detector pixel's sub-pixels), of which the detector keeps
   the central S = s·n samples per axis (:func:`far_field`);
4. the intensity Σ_m |·|², each s × s block of samples summed into one detector pixel
   (:func:`bin_far_field`: a midpoint rule for the pixel's integral).

Steps 2–3 are linear in the incident wave and have ``fwd``/``adj``; step 4's binning is linear
in the intensity (:func:`bin_far_field_adj`). Names below: s = ``oversampling``, n detector
pixels per side, N the fine window's side (fine pixels), S = s·n, K windows, M probe modes;
waves are complex64 and ``xp`` is ``numpy`` or ``cupy``.

Cost. The FFTs the model must do per frame and mode are 1 + 2·(L − 1) at N² (the far field and
each propagation there and back). Where the physics allows it exactly, fewer are done:

* **pruned far field**: after the row transforms only the S kept columns are transformed along
  the other axis: (1 + 1/s)/2 of a full 2D FFT;
* **separable shifts**: the probe's transform along the rows, shifted along the columns, is
  cached for each of the quantum's 1/q + 1 row shifts; a frame's shifted probe is then one
  set of 1D inverse transforms (half a 2D FFT), and repeated shifts come from a cache;
* the propagator is made once per operator and reused for every frame and mode.

On the CPU the passes between the FFTs are fused numba kernels (:mod:`twin.core.simkernels`)
and the FFTs use every core (``scipy.fft`` workers); elsewhere (CuPy) the same steps run as array
code. Every frame is computed on its own, in a fixed order, so results do not depend on how
many frames are computed together (``--frames N`` reproduces a prefix of a longer run), and
the kernels keep IEEE order (no fast-math), so they do not depend on how numba compiled them.
"""

from __future__ import annotations

import numpy as np

from twin.core import simkernels
from twin.core.xp import array_module, fft, to_numpy
from twin.core.scatter import window_index
from twin.operators.propagation import Propagator

#: Sub-pixel shifts of the probe are rounded to 1/32 of a (fine) pixel and the shifted probes
#: cached: positions are then exact to ±1/64 of a fine pixel.
SUBPIXEL_QUANTUM = 1 / 32
#: Memory for cached shifted probes (besides the 1/q + 1 half-transformed row shifts).
CACHE_BYTES = 128 * 2 ** 20
#: Memory for the probes shifted along y and transformed along x (one per y shift).
ROW_BYTES = 320 * 2 ** 20
#: Exit waves per chunk on the CPU (cache-sized: the CPU path is memory-bound otherwise).
CHUNK_BYTES = 4 * 2 ** 20
#: Largest last slice that is kept a second time with the half-bin ramp in it.
RAMPED_SLICE_BYTES = 256 * 2 ** 20
#: Exit waves per chunk on a GPU.
DEVICE_CHUNK_BYTES = 256 * 2 ** 20


def _floats(a):
    """A C-contiguous complex64 array viewed as float32 pairs (for the kernels)."""
    return a.view(np.float32)


def _c64(a, xp=np):
    a = xp.asarray(a, dtype=xp.complex64)
    return a if a.flags.c_contiguous else xp.ascontiguousarray(a)


def crop_index(N: int, oversampling: int, n: int, xp=np):
    """(S,) FFT-order indices of the S = s·n far-field samples the detector keeps, in centred
    order: sample j is frequency j − s·(n//2) bins (DC at s·(n//2)).

    Parameters
    ----------
    N, oversampling, n : int
        The window's (and its DFT's) side N, s and n.
    xp : module
        Where the result is made.
    """
    return (xp.arange(oversampling * n) - oversampling * (n // 2)) % N


def half_bin_phase(N: int, oversampling: int, xp=np):
    """(N,) complex64 phase exp(2πi·a·x/N), a = (s − 1)/2: applied along one axis before the
    DFT it moves the samples by −a bins, onto the centres of the sub-pixels.

    Parameters
    ----------
    N, oversampling : int
        The window's side N and s.
    xp : module
        Where the result is made.
    """
    a = (oversampling - 1) / 2
    return xp.asarray(np.exp(2j * np.pi * a * np.arange(N) / N).astype(np.complex64))


def half_bin_ramp(N: int, oversampling: int) -> np.ndarray:
    """(N, N) complex64 NumPy outer product of :func:`half_bin_phase` (all ones for s = 1).

    Parameters
    ----------
    N, oversampling : int
        The window's side N and s.
    """
    r = half_bin_phase(N, oversampling)
    return r[:, None] * r[None, :]


def bin_far_field(intensity, oversampling: int, n: int):
    """Detector pixels from centred fine far-field samples.

    ``intensity`` (…, N, N), DC at N//2, samples at spacing p/s centred in the detector's
    sub-pixels: the central s·n samples (from N//2 − s·(n//2)) are kept and each s × s block
    summed into one of the n × n pixels (DC pixel n//2). N = s·n is allowed (already cropped).
    Forward of the pair :func:`bin_far_field` / :func:`bin_far_field_adj`; linear. Returns
    (…, n, n) in ``intensity``'s dtype (``intensity`` itself for s = 1 and N = n).

    Parameters
    ----------
    intensity : ndarray
        (…, N, N) real, centred fine far-field intensities.
    oversampling, n : int
        s and n.
    """
    s = oversampling
    if s == 1 and intensity.shape[-1] == n:
        return intensity
    N = intensity.shape[-1]
    c = N // 2 - s * (n // 2)
    crop = intensity[..., c:c + s * n, c:c + s * n]
    return crop.reshape(*crop.shape[:-2], n, s, n, s).sum(axis=(-3, -1))


def bin_far_field_adj(pixels, oversampling: int, N: int):
    """Adjoint of :func:`bin_far_field`: each pixel's value on its s × s samples, zero outside
    the kept crop; (…, n, n) → (…, N, N), ``pixels``' dtype.

    Parameters
    ----------
    pixels : ndarray
        (…, n, n) detector pixels.
    oversampling, N : int
        s, and the side N of the fine grid returned.
    """
    xp = array_module(pixels)
    s, n = oversampling, pixels.shape[-1]
    up = xp.repeat(xp.repeat(pixels, s, axis=-2), s, axis=-1)
    out = xp.zeros(pixels.shape[:-2] + (N, N), dtype=pixels.dtype)
    c = N // 2 - s * (n // 2)
    out[..., c:c + s * n, c:c + s * n] = up
    return out


def far_field(psi, oversampling: int, n: int):
    """Kept far-field samples (…, S, S) of exit waves (…, N, N): the unitary DFT of ψ times the
    half-bin ramp, its central S = s·n samples per axis in centred order. Linear; computed as
    a pruned 2D FFT (rows first, then only the kept columns); complex64, DC at s·(n//2). The
    DFT is unitary (``norm="ortho"``) and unshifted on the input (ψ's index (0, 0) is the
    origin). Forward of the pair :func:`far_field` / :func:`far_field_adj`.

    Parameters
    ----------
    psi : ndarray
        (…, N, N) complex64 exit waves, without the half-bin ramp.
    oversampling, n : int
        s and n.
    """
    xp = array_module(psi)
    N, s = psi.shape[-1], oversampling
    r = half_bin_phase(N, s, xp)
    f = fft(psi * (r[:, None] * r[None, :]), axis=-1)
    idx = crop_index(N, s, n, xp)
    f = fft(xp.take(f, idx, axis=-1), axis=-2)
    return xp.take(f, idx, axis=-2)


def far_field_adj(g, oversampling: int, N: int):
    """Adjoint of :func:`far_field`: kept samples (…, S, S) → exit waves (…, N, N) complex64
    (zero-filled to N × N, inverse unitary DFT, times the conjugate half-bin ramp).

    Parameters
    ----------
    g : ndarray
        (…, S, S) complex64 far-field samples in centred order, S = s·n.
    oversampling, N : int
        s, and the side N of the exit waves.
    """
    xp = array_module(g)
    s, S = oversampling, g.shape[-1]
    idx = crop_index(N, s, S // s, xp)
    full = xp.zeros(g.shape[:-2] + (N, N), dtype=xp.complex64)
    full[..., idx[:, None], idx[None, :]] = g
    f = fft(fft(full, axis=-2, inverse=True), axis=-1, inverse=True)
    r = half_bin_phase(N, s, xp)
    return (f * xp.conj(r[:, None] * r[None, :])).astype(xp.complex64)


def far_intensity(psi, oversampling: int, n: int, centred: bool = True, fused=None, out=None):
    """(K, n, n) float32 detector intensities Σ_m |far field|², binned, of exit waves
    ``psi`` (K, M, N, N) complex64 that already carry the half-bin ramp (for s = 1 none is
    needed). Unitary DFT (``norm="ortho"``), unshifted on the input.

    Pruned: the row transforms of all N rows, the column transforms of the S kept columns.

    Parameters
    ----------
    psi : ndarray
        (K, M, R, N) complex64 exit waves, R, N ≥ s·n; used as work space (lost).
    oversampling, n : int
        s and n; for s = 1 n is unused: the frames are the whole (R, N).
    centred : bool
        DC at (n//2, n//2) (s = 1: (R//2, N//2)); False (s = 1 only): FFT order, DC at 0.
    fused : bool or None
        Use the numba kernels (:mod:`twin.core.simkernels`; default: on NumPy where available).
    out : ndarray or None
        (K, n, n) float32 to write into on the fused path (ignored on the array path).
    """
    xp = array_module(psi)
    s = oversampling
    K, _, R, N = psi.shape
    nr, nc = (R, N) if s == 1 else (n, n)
    fused = (xp is np and simkernels.AVAILABLE) if fused is None else fused
    f = fft(psi, axis=-1, overwrite_x=True)
    off_r = (-s * (nr // 2)) % R if centred else 0
    off_c = (-s * (nc // 2)) % N if centred else 0
    if fused:
        if s > 1:
            h = np.empty(f.shape[:-1] + (s * n,), np.complex64)
            simkernels.gather_columns(_floats(f).reshape(-1, R, 2 * N), off_c,
                                      _floats(h).reshape(-1, R, 2 * s * n))
            f, off_c = h, 0
        f = fft(f, axis=-2, overwrite_x=True)
        out = np.empty((K, nr, nc), np.float32) if out is None else out
        simkernels.modulus_bin(_floats(f), off_r, off_c, s, out)
        return out
    cols = (xp.arange(s * nc) + off_c) % N
    rows = (xp.arange(s * nr) + off_r) % R
    f = fft(xp.take(f, cols, axis=-1), axis=-2, overwrite_x=True)
    f = xp.take(f, rows, axis=-2)
    inten = (f.real ** 2 + f.imag ** 2).sum(axis=1)
    if s == 1:
        return inten.astype(xp.float32)
    return inten.reshape(K, n, s, n, s).sum(axis=(2, 4)).astype(xp.float32)


def exit_product(src, inv, obj, origins, ry=None, rx=None, out=None, fused=None):
    """(K, M, N, N) exit waves src[inv[k]] · obj window at ``origins[k]`` · ry[y]·rx[x].

    Parameters
    ----------
    src : complex64 (U, M, N, N)
        Probes (or waves); ``out`` may be ``src`` with ``inv`` = 0 … K − 1 (in place).
    inv : (K,) int
        Which of ``src`` each frame uses.
    obj : complex64 (H, W)
        The slice; windows must lie inside it (checked by the caller).
    origins : (K, 2) int
        Top-left (row, col) of each window.
    ry, rx : complex64 (N,) or None
        Separable phase ramp (none: 1).
    out : complex64 (K, M, N, N) or None
        Where to write the result (a new array if None).
    fused : bool or None
        The numba kernel (default: on NumPy where available); False: the array code.
    """
    xp = array_module(src)
    K = len(origins)
    M, ny, nx = src.shape[1:]
    fused = (xp is np and simkernels.AVAILABLE) if fused is None else fused
    if fused:
        ramp = ry is not None or rx is not None
        one = np.ones(max(ny, nx), np.complex64)
        ry = one[:ny] if ry is None else _c64(ry)
        rx = one[:nx] if rx is None else _c64(rx)
        same = out is src
        src, obj = _c64(src), _c64(obj)
        out = (np.empty((K, M, ny, nx), np.complex64) if out is None
               else src if same else out)
        simkernels.exit_product(_floats(src), np.ascontiguousarray(inv, np.int64),
                                _floats(obj), np.ascontiguousarray(origins, np.int64),
                                _floats(ry), _floats(rx), ramp, _floats(out))
        return out
    win = obj.ravel()[window_index(np.asarray(origins), (ny, nx), obj.shape[1], xp)]
    if ry is not None or rx is not None:
        ry = xp.ones(ny, xp.complex64) if ry is None else xp.asarray(ry)
        rx = xp.ones(nx, xp.complex64) if rx is None else xp.asarray(rx)
        win = win * (ry[:, None] * rx[None, :])
    res = src[xp.asarray(np.asarray(inv))] * win[:, None]
    if out is None:
        return res
    out[...] = res
    return out


class ShiftedProbes:
    """Probes (M, N, N) shifted by sub-pixel parts rounded to ``quantum`` of a pixel (a Fourier
    phase ramp: exact for band-limited probes), computed separably and cached.

    The probes shifted along y and transformed along x are kept for each y shift (at most
    1/q + 1 of them, up to ``row_bytes``); a new shift is then one set of 1D inverse transforms
    along x. Shifted probes are kept (first in, first out) up to ``cache_bytes``.
    """

    def __init__(self, probes, quantum: float = SUBPIXEL_QUANTUM,
                 cache_bytes: int = CACHE_BYTES, fused=None, row_bytes: int = ROW_BYTES):
        xp = array_module(probes)
        self.xp = xp
        self.source = probes                   # the array given (its identity names the cache)
        self.probes = _c64(probes, xp)
        self.steps = int(round(1 / quantum))
        self.fused = (xp is np and simkernels.AVAILABLE) if fused is None else fused
        size = max(self.probes.nbytes, 1)
        self.limit = max(1, int(cache_bytes // size))
        self.row_limit = max(1, int(row_bytes // size))
        self._spec = None
        self._rows = {}                        # y shift → (M, N, N), first in first out
        self._cache = {}                       # (y, x) shift → (M, N, N)

    def keys(self, frac) -> np.ndarray:
        """(K, 2) int64 shifts (row, col) in quanta: ``frac`` rounded to the quantum.

        Parameters
        ----------
        frac : array_like
            (K, 2) sub-pixel parts (row, col), fine pixels.
        """
        return np.round(np.asarray(frac, dtype=float) * self.steps).astype(np.int64)

    def _row_spectra(self, iy: int):
        """(M, N, N) the probes shifted by iy quanta along y, transformed along x."""
        q = self._rows.get(iy)
        if q is None:
            xp, (_, ny, _) = self.xp, self.probes.shape
            if self._spec is None:
                self._spec = fft(self.probes, axis=-2)
            e = np.exp(-2j * np.pi * (iy / self.steps) * np.fft.fftfreq(ny))
            q = fft(self._spec * xp.asarray(e.astype(np.complex64))[:, None], axis=-2,
                    inverse=True)
            q = _c64(fft(q, axis=-1, overwrite_x=True), xp)
            if len(self._rows) >= self.row_limit:
                self._rows.pop(next(iter(self._rows)))
            self._rows[iy] = q
        return q

    def _column_ramp(self, ix):
        nx = self.probes.shape[-1]
        e = np.exp(-2j * np.pi * (np.asarray(ix)[:, None] / self.steps)
                    * np.fft.fftfreq(nx)[None, :])
        return e.astype(np.complex64)

    def _compute(self, keys: np.ndarray):
        """(U, M, N, N) shifted probes of distinct ``keys`` (U, 2), sorted by y shift."""
        xp = self.xp
        ramps = self._column_ramp(keys[:, 1])
        if self.fused:
            out = np.empty((len(keys),) + self.probes.shape, np.complex64)
            ys, starts = np.unique(keys[:, 0], return_index=True)
            ends = list(starts[1:]) + [len(keys)]
            for iy, a, b in zip(ys.tolist(), starts.tolist(), ends):
                q = self._row_spectra(iy)
                simkernels.spectrum_ramp(_floats(q)[None], np.zeros(b - a, np.int64),
                                         _floats(ramps[a:b]), _floats(out[a:b]))
            out = fft(out, axis=-1, inverse=True, overwrite_x=True)
        else:                                  # one key at a time: batch-independent bits
            ramps = xp.asarray(ramps)
            out = xp.stack([fft(self._row_spectra(int(k[0])) * ramps[j], axis=-1,
                                inverse=True) for j, k in enumerate(keys)])
        for j, k in enumerate(keys):
            if k[0] == 0 and k[1] == 0:
                out[j] = self.probes           # no shift: the probes themselves
        return out

    def lookup(self, frac):
        """(src (U, M, N, N) complex64, inv (K,)): the probes shifted by sub-pixel parts
        ``frac``, one per distinct quantised shift, and each frame's index into them.

        Parameters
        ----------
        frac : array_like
            (K, 2) sub-pixel parts (row, col), fine pixels.
        """
        keys = self.keys(frac)
        uniq, inv = np.unique(keys, axis=0, return_inverse=True)
        found = [self._cache.get(tuple(k)) for k in uniq.tolist()]
        missing = [i for i, a in enumerate(found) if a is None]
        if missing:
            new = self._compute(uniq[missing])
            for j, i in enumerate(missing):
                found[i] = new[j]
                if len(self._cache) >= self.limit:
                    self._cache.pop(next(iter(self._cache)))
                self._cache[tuple(uniq[i].tolist())] = new[j]
            if len(missing) == len(uniq):
                return new, inv.ravel()
        src = found[0][None] if len(found) == 1 else self.xp.stack(found)
        return src, inv.ravel()


class FineFarField:
    """Detector intensities of probe windows on a fine grid, through thick samples.

    Parameters
    ----------
    probes : complex (M, N, N)
        Probe modes on the fine grid (one beam); the operator's array module (NumPy or CuPy) is
        this array's.
    slices : complex (L, H, W)
        Slab transmissions on the same grid.
    oversampling : int
        s: fine samples per detector pixel along each axis (N = s²·n for the simulation's
        windows; any N ≥ s·n works).
    n_pixels : int
        n: detector pixels per side.
    pixel_m, slice_spacing_m, wavelength_m : float
        Fine pixel, distance between slices and wavelength (used for L > 1).
    quantum : float
        Sub-pixel shifts are rounded to this fraction of a fine pixel (:class:`ShiftedProbes`).
    fused : bool or None
        Use the CPU kernels (default: on NumPy where numba is installed); False runs the array
        code (what a GPU runs) on NumPy.
    cache_bytes, row_bytes : int
        Memory for the cached shifted probes and for the half-transformed y shifts
        (:class:`ShiftedProbes`).
    """

    def __init__(self, probes, slices, oversampling: int, n_pixels: int, pixel_m: float = 1.0,
                 slice_spacing_m: float = 0.0, wavelength_m: float = 1.0,
                 quantum: float = SUBPIXEL_QUANTUM, cache_bytes: int = CACHE_BYTES, fused=None,
                 row_bytes: int = ROW_BYTES):
        xp = array_module(probes)
        self.xp = xp
        self.fused = (xp is np and simkernels.AVAILABLE) if fused is None else fused
        self.probes = _c64(probes, xp)
        self.slices = _c64(slices, xp)
        self.s, self.n = int(oversampling), int(n_pixels)
        M, N, N2 = self.probes.shape
        if N != N2 or N < self.s * self.n:
            raise ValueError(f"probe windows {N}×{N2} for {self.n} pixels at oversampling "
                             f"{self.s}: square windows of at least s·n are needed")
        self.N = N
        L = self.slices.shape[0]
        self.prop = (Propagator((N, N), pixel_m, slice_spacing_m, wavelength_m, xp=xp)
                     if L > 1 else None)
        self._last = None
        self.shifted = ShiftedProbes(self.probes, quantum, cache_bytes, self.fused, row_bytes)
        per = M * N * N * 8
        self.chunk = max(1, (CHUNK_BYTES if xp is np else DEVICE_CHUNK_BYTES) // per)

    @property
    def transforms_per_frame(self) -> int:
        """N² FFTs the model must do per frame: modes × (1 + 2 × propagations)."""
        return self.probes.shape[0] * (1 + 2 * (self.slices.shape[0] - 1))

    def windows(self, top_left_px):
        """Integer corners (K, 2) and sub-pixel parts (K, 2) of fine windows whose top-left
        corners are ``top_left_px``, checked to lie inside the slices (ValueError).

        Parameters
        ----------
        top_left_px : array_like
            (K, 2) top-left corners (row, col), fine pixels, fractional allowed.
        """
        tl = np.asarray(top_left_px, dtype=float).reshape(-1, 2)
        origin = np.floor(tl).astype(np.int64)
        H, W = self.slices.shape[-2:]
        if (origin.min(initial=0) < 0 or (origin[:, 0] + self.N).max(initial=0) > H
                or (origin[:, 1] + self.N).max(initial=0) > W):
            raise ValueError("a probe window falls outside the simulated object")
        return origin, tl - origin

    # --- linear in the incident wave ----------------------------------------------------------
    def exit_fwd(self, incident, origins):
        """Exit waves (K, M, N, N) complex64 of incident waves through the slices' windows at
        ``origins`` (no ramp). Forward of the pair :meth:`exit_fwd` / :meth:`exit_adj`.

        Parameters
        ----------
        incident : ndarray
            (K, M, N, N) complex64, one per window (left unchanged).
        origins : ndarray
            (K, 2) int top-left corners (row, col) of the windows (:meth:`windows`).
        """
        idx = np.arange(len(origins))
        psi = exit_product(incident, idx, self.slices[0], origins, fused=self.fused)
        for sl in self.slices[1:]:
            psi = self.prop.fwd(psi, overwrite=True)
            psi = exit_product(psi, idx, sl, origins, out=psi, fused=self.fused)
        return psi

    def exit_adj(self, chi, origins):
        """Adjoint of :meth:`exit_fwd`: exit waves → incident waves (K, M, N, N) complex64.

        Parameters
        ----------
        chi : ndarray
            (K, M, N, N) complex64 exit waves.
        origins : ndarray
            (K, 2) int top-left corners (row, col) of the windows (:meth:`windows`).
        """
        xp = self.xp
        idx = np.arange(len(origins))
        L = self.slices.shape[0]
        for l in range(L - 1, -1, -1):
            chi = exit_product(chi, idx, xp.conj(self.slices[l]), origins, fused=self.fused)
            if l > 0:
                chi = self.prop.adj(chi)
        return chi

    def fwd(self, incident, origins):
        """Kept far-field samples (K, M, S, S) complex64 of incident waves: :func:`far_field`
        of :meth:`exit_fwd`. Forward of the pair :meth:`fwd` / :meth:`adj`; linear.

        Parameters
        ----------
        incident : ndarray
            (K, M, N, N) complex64, one per window.
        origins : ndarray
            (K, 2) int top-left corners (row, col) of the windows (:meth:`windows`).
        """
        return far_field(self.exit_fwd(incident, origins), self.s, self.n)

    def adj(self, g, origins):
        """Adjoint of :meth:`fwd`: (K, M, S, S) samples → (K, M, N, N) incident waves.

        Parameters
        ----------
        g : ndarray
            (K, M, S, S) complex64 far-field samples, centred order.
        origins : ndarray
            (K, 2) int top-left corners (row, col) of the windows (:meth:`windows`).
        """
        return self.exit_adj(far_field_adj(g, self.s, self.N), origins)

    # --- the detector -------------------------------------------------------------------------
    def _detector_slice(self):
        """(last slice, ry, rx). For s > 1: the last slice times the half-bin ramp at global
        pixel indices, made once (up to :data:`RAMPED_SLICE_BYTES`): a frame's window of it
        is the window's ramp times a constant phase, which leaves |·|² unchanged, so the
        exit-wave kernel multiplies by no ramp. Larger slices: the kernel applies the ramp."""
        last = self.slices[-1]
        if self.s == 1:
            return last, None, None
        if last.nbytes > RAMPED_SLICE_BYTES:
            r = half_bin_phase(self.N, self.s, self.xp)
            return last, r, r
        if self._last is None:
            H, W = last.shape
            a = (self.s - 1) / 2
            ey = np.exp(2j * np.pi * a * np.arange(H) / self.N)
            ex = np.exp(2j * np.pi * a * np.arange(W) / self.N)
            ramp = self.xp.asarray((ey[:, None] * ex[None, :]).astype(np.complex64))
            self._last = _c64(last * ramp, self.xp)
        return self._last, None, None

    def _chunk_intensity(self, origin, frac, out=None):
        src, inv = self.shifted.lookup(frac)
        L = self.slices.shape[0]
        last, ry, rx = self._detector_slice()
        if L == 1:
            psi = exit_product(src, inv, last, origin, ry, rx, fused=self.fused)
        else:
            psi = exit_product(src, inv, self.slices[0], origin, fused=self.fused)
        idx = np.arange(len(origin))
        for l in range(1, L):
            psi = self.prop.fwd(psi, overwrite=True)
            o, y, x = (last, ry, rx) if l == L - 1 else (self.slices[l], None, None)
            psi = exit_product(psi, idx, o, origin, y, x, out=psi, fused=self.fused)
        return far_intensity(psi, self.s, self.n, fused=self.fused, out=out)

    def intensity(self, top_left_px) -> np.ndarray:
        """(K, n, n) float32 expected photons per detector pixel (on the host) for fine windows
        whose top-left corners are ``top_left_px``: Σ_m |·|² of the far field, binned.

        Parameters
        ----------
        top_left_px : array_like
            (K, 2) top-left corners (row, col), fine pixels, fractional (rounded to the quantum).
        """
        origin, frac = self.windows(top_left_px)
        k_all = len(origin)
        out = np.empty((k_all, self.n, self.n), np.float32)
        c = self.chunk
        if self.xp is not np and k_all:
            # every device chunk has the same length (the last padded by repeating its final
            # position): one FFT plan and batch size, whatever the run's length
            pad = -k_all % c
            origin = np.concatenate([origin, np.repeat(origin[-1:], pad, axis=0)])
            frac = np.concatenate([frac, np.repeat(frac[-1:], pad, axis=0)])
        for a in range(0, k_all, c):
            if self.fused:                         # written in place
                self._chunk_intensity(origin[a:a + c], frac[a:a + c], out[a:a + c])
                continue
            got = self._chunk_intensity(origin[a:a + c], frac[a:a + c])
            keep = min(c, k_all - a)
            out[a:a + keep] = to_numpy(got[:keep])
        return out
