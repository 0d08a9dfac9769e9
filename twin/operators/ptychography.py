"""The far-field ptychography operator with probe modes (CONTRACTS §3's frame model): the
forward model every reconstruction engine runs; its noiseless frames (:meth:`intensity`) come
from the simulation's detector model (:mod:`twin.operators.farfield`) at oversampling 1.

For scan position n and probe mode m the far-field wave is Ψ_nm = F(P_m · O_n) with F the
unitary DFT (centred: DC at (ny//2, nx//2), CONTRACTS §3; or in plain FFT order, which the
engines use after moving their frames once). Frames are I_n = Σ_m |Ψ_nm|². The operator is
linear in the object (probe fixed) and in the probe (object fixed); both have ``fwd`` and
``adj``, and every method takes ``sel`` (an index array or slice of positions) so that the
engines run it on minibatches.

The sub-pixel part f of a position enters in one of two ways (``shift``):

* ``"fourier"``: P_m^(n) = P_m shifted by f with a Fourier phase ramp, times the object's
  integer-pixel patch. Exact for band-limited probes; two FFTs per frame and mode more.
  Simulation uses it (quantised and cached, :class:`twin.operators.farfield.ShiftedProbes`,
  which :meth:`intensity` shares), and so do the engines by default
  (``twin.recon.options.SUBPIXEL_SHIFT`` gives the measurement).
* ``"bilinear"`` / ``"cubic"`` (Keys' cubic convolution, a = −0.5): the probe stays put and the
  object is read at the fractional positions pos + r by a 2- or 4-tap separable
  interpolation. A shift of the exit wave leaves |Ψ| unchanged, so these describe the same
  frames up to the interpolation's blur; they cost elementwise passes instead of FFTs.

Positions: ``positions_px`` (N, 2) are the (row, col) of each probe window's top-left corner on
the object grid, in object pixels, fractional allowed. :func:`positions_from_translations`
converts CONTRACTS §3 translations (metres, probe centre relative to the object's centre pixel)
to these.

Names in the methods: the object ``obj`` is (H, W) complex64, the probe (M, ny, nx)
complex64; ``sel`` picks B of the N positions (an index array or a slice; None: all); exit
and far-field waves are (B, M, ny, nx) complex64, object patches (B, ny, nx). The positions
and the object side (patches under the windows and their adjoint) come from the base class
:class:`twin.operators.windows.ObjectWindows`.
"""

from __future__ import annotations

import numpy as np

from twin.core import kernels
from twin.operators import farfield
from twin.operators.propagation import farfield_adj, farfield_fwd
from twin.core.xp import array_module, fft2, ifft2
from twin.operators.windows import ObjectWindows, _floats

SHIFTS = ("fourier", "bilinear", "cubic")


def positions_from_translations(translation_m, pixel_size_m: float, object_shape,
                                probe_shape):
    """(N, 2) top-left (row, col) pixel positions from translations: the probe centre
    (ny//2, nx//2) at object pixel (H//2 + y/dx, W//2 + x/dx).

    Parameters
    ----------
    translation_m : array_like
        (N, ≥2) x, y translations, metres (CONTRACTS §3; further columns ignored).
    pixel_size_m : float
        Object pixel, metres.
    object_shape, probe_shape : tuple of int
        (H, W) of the object; the probe's shape, its last two entries (ny, nx).
    """
    t = np.asarray(translation_m, dtype=float)
    cy = object_shape[0] // 2 + t[:, 1] / pixel_size_m
    cx = object_shape[1] // 2 + t[:, 0] / pixel_size_m
    return np.stack([cy - probe_shape[-2] // 2, cx - probe_shape[-1] // 2], axis=1)


def translations_from_positions(positions_px, pixel_size_m: float, object_shape, probe_shape):
    """Inverse of :func:`positions_from_translations`: (N, 3) x, y, 0 in metres.

    Parameters
    ----------
    positions_px : array_like
        (N, 2) top-left (row, col) of the probe windows, object pixels.
    pixel_size_m : float
        Object pixel, metres.
    object_shape, probe_shape : tuple of int
        (H, W) of the object; the probe's shape, its last two entries (ny, nx).
    """
    p = np.asarray(positions_px, dtype=float)
    y = (p[:, 0] + probe_shape[-2] // 2 - object_shape[0] // 2) * pixel_size_m
    x = (p[:, 1] + probe_shape[-1] // 2 - object_shape[1] // 2) * pixel_size_m
    return np.stack([x, y, np.zeros_like(x)], axis=1)


def subpixel_shift(a, shift, xp=None):
    """Shift ``a`` (..., ny, nx) by ``shift`` (..., 2) pixels (row, col) with a Fourier phase ramp.

    Circular: IDFT(DFT(a) · :func:`shift_ramp`), unitary DFTs; a positive shift moves the
    content to higher indices. Unitary: its adjoint is the shift by −shift.

    Parameters
    ----------
    a : ndarray
        (..., ny, nx), complex64 in twin; the result has its dtype.
    shift : array_like
        (..., 2) shifts (row, col), pixels, broadcast against ``a``'s leading axes.
    xp : module or None
        ``numpy`` or ``cupy`` (default: ``a``'s).
    """
    xp = xp or array_module(a)
    return ifft2(fft2(a) * shift_ramp(a.shape[-2:], shift, xp)).astype(a.dtype, copy=False)


def shift_ramp(shape, shift, xp=np):
    """Fourier phase ramp exp(−2πi·(s_y·f_y + s_x·f_x)) (..., ny, nx) complex64 of a shift,
    in unshifted FFT order (f in cycles per pixel): separable, built from 1D factors.

    Parameters
    ----------
    shape : tuple of int
        (ny, nx).
    shift : array_like
        (..., 2) shifts (row, col), pixels.
    xp : module
        ``numpy`` or ``cupy``.
    """
    ny, nx = shape
    s = xp.asarray(shift, dtype=xp.float32)
    ey = xp.exp(-2j * np.pi * s[..., 0, None] * xp.fft.fftfreq(ny).astype(xp.float32))
    ex = xp.exp(-2j * np.pi * s[..., 1, None] * xp.fft.fftfreq(nx).astype(xp.float32))
    return (ey[..., :, None] * ex[..., None, :]).astype(xp.complex64)


def _check_waves(chi, probes) -> None:
    """Exit waves (B, M, n, n) that match the probes (1, M, n, n) (the kernels trust shapes)."""
    if chi.ndim != 4 or tuple(chi.shape[1:]) != tuple(probes.shape[1:]):
        raise ValueError(f"exit waves of shape {chi.shape} for probes {probes.shape}")


class FarFieldPtychography(ObjectWindows):
    """Ψ = F(P·O) for N positions and M probe modes.

    Parameters
    ----------
    probe : complex (M, ny, nx) or (ny, nx)
        Probe modes; the array module (NumPy or CuPy) of the operator is this array's.
    positions_px : (N, 2) float
        Top-left (row, col) of each probe window on the object grid, in object pixels.
    object_shape : (H, W)
        The object array's shape.
    subpixel_quantum : float, optional
        If given (e.g. 1/32), :meth:`intensity` rounds each Fourier sub-pixel shift to that
        fraction of a pixel and reuses the shifted probes (a cache); ``fwd``/``adj`` stay exact.
    shift : {"fourier", "bilinear", "cubic"}
        How a position's sub-pixel part enters (module docstring).
    centred : bool
        True: F is the centred DFT (CONTRACTS §3 frames). False: the plain unitary DFT, DC at
        index (0, 0), which saves two shifts per transform.
    """

    def __init__(self, probe, positions_px, object_shape, subpixel_quantum: float | None = None,
                 shift: str = "fourier", centred: bool = True):
        if shift not in SHIFTS:
            raise ValueError(f"shift must be one of {SHIFTS}, not {shift!r}")
        xp = array_module(probe)
        self.xp = xp
        self.probe = probe if probe.ndim == 3 else probe[None]
        self.object_shape = tuple(object_shape)
        self.quantum = subpixel_quantum
        self.shift = shift
        self.centred = centred
        self.set_positions(positions_px)

    def with_positions(self, positions_px):
        """A new operator (same probe, object shape, quantum, shift, centring) at other positions.

        Parameters
        ----------
        positions_px : array_like
            (N', 2) top-left (row, col), object pixels.
        """
        return FarFieldPtychography(self.probe, positions_px, self.object_shape, self.quantum,
                                    self.shift, self.centred)

    # --- the probe side ---------------------------------------------------------------------------
    def frame_probes(self, sel=None, probe=None):
        """(B, M, ny, nx) probes of the windows ``sel`` — shifted by each sub-pixel part for
        ``"fourier"`` — or (1, M, ny, nx) where all frames share one probe. Forward of the pair
        :meth:`frame_probes` / :meth:`frame_probes_adj`.

        Parameters
        ----------
        sel : index array, slice or None
            The windows (None: all).
        probe : ndarray or None
            (M, ny, nx) complex64 (None: the operator's).
        """
        p = (self.probe if probe is None else probe)[None]
        if self.shift != "fourier" or not self.has_frac:
            return p
        f = self.xp.asarray(self.frac_np[self._sel(sel)], dtype=self.xp.float32)
        return subpixel_shift(p, f[:, None, :])

    def frame_probes_adj(self, g, sel=None):
        """Adjoint of :meth:`frame_probes` (summed over the frames): (M, ny, nx) from
        (B, M, ny, nx).

        Parameters
        ----------
        g : ndarray
            (B, M, ny, nx) complex64 (or (1, M, ny, nx) where no frame is shifted).
        sel : index array, slice or None
            The windows (None: all).
        """
        if self.shift != "fourier" or not self.has_frac:
            return g.sum(axis=0)
        xp = self.xp
        f = xp.asarray(self.frac_np[self._sel(sel)], dtype=xp.float32)
        ramp = shift_ramp(g.shape[-2:], -f[:, None, :], xp)
        return ifft2((fft2(g) * ramp).sum(axis=0))

    # --- the far field ----------------------------------------------------------------------------
    def far(self, psi, overwrite: bool = False):
        """F: exit waves (..., ny, nx) → far-field waves, the unitary DFT (``norm="ortho"``),
        centred (:func:`~twin.operators.propagation.farfield_fwd`) or in FFT order as
        ``centred`` says. Forward of the pair :meth:`far` / :meth:`far_adj`.

        Parameters
        ----------
        psi : ndarray
            (..., ny, nx) complex64 exit waves.
        overwrite : bool
            ``psi`` may be used as work space (only for the uncentred transform).
        """
        if self.centred:
            return farfield_fwd(psi)
        return fft2(psi, overwrite_x=overwrite)

    def far_adj(self, psi, overwrite: bool = False):
        """Fᴴ = F⁻¹: far-field waves → exit waves (..., ny, nx).

        Parameters
        ----------
        psi : ndarray
            (..., ny, nx) complex64 far-field waves.
        overwrite : bool
            ``psi`` may be used as work space (only for the uncentred transform).
        """
        return farfield_adj(psi) if self.centred else ifft2(psi, overwrite_x=overwrite)

    # --- exit waves and their adjoints (what the engines compose) -----------------------
    def exit_waves(self, obj, sel=None, probe=None):
        """(ψ, patch, probes): exit waves (B, M, ny, nx), the object patches (B, ny, nx) and the
        frame probes (:meth:`frame_probes`) of the windows ``sel``. Forward of the pairs
        :meth:`exit_adj_object` (in O) and :meth:`exit_adj_probe` (in P).

        Parameters
        ----------
        obj : ndarray
            (H, W) complex64 object.
        sel : index array, slice or None
            The windows (None: all).
        probe : ndarray or None
            (M, ny, nx) complex64 (None: the operator's).
        """
        if self.fused:
            self._check_object(obj)
            pr = np.asarray(self.probe if probe is None else probe, np.complex64)
            if pr.shape != self.probe.shape:
                raise ValueError(f"probe of shape {pr.shape}, the operator's is "
                                 f"{self.probe.shape}")
            org, wy, wx = self._taps(sel)
            n = pr.shape[-1]
            patch = np.empty((len(org), n, n), np.complex64)
            psi = np.empty((len(org),) + pr.shape, np.complex64)
            kernels.interp_exit(_floats(obj), org, wy, wx, _floats(pr), patch.view(np.float32),
                                psi.view(np.float32))
            return psi, patch, pr[None]
        patch = self.patches(obj, sel)
        probes = self.frame_probes(sel, probe)
        return probes * patch[:, None], patch, probes

    def exit_adj_object(self, chi, probes, sel=None, out=None):
        """Adjoint of ψ = P·O with respect to O: Σ_m conj(P_m)·χ_m added into the object
        (:meth:`patches_adj`).

        Parameters
        ----------
        chi : ndarray
            (B, M, ny, nx) complex64 exit-wave residuals (or gradients).
        probes : ndarray
            (B, M, ny, nx) or (1, M, ny, nx) frame probes (:meth:`exit_waves`).
        sel : index array, slice or None
            The windows (None: all).
        out : ndarray or None
            (H, W) complex64 object added into (None: a new one).
        """
        if self.fused and probes.shape[0] == 1 and chi.dtype == np.complex64:
            _check_waves(chi, probes)
            g = np.empty((chi.shape[0],) + chi.shape[2:], np.complex64)
            kernels.mode_sum_conj(np.asarray(probes[0], np.complex64), chi, g)
            return self.patches_adj(g, sel, out)
        g = (self.xp.conj(probes) * chi).sum(axis=1)
        return self.patches_adj(g, sel, out)

    def exit_adj_probe(self, chi, patch, sel=None, weight=None):
        """Adjoint of ψ = P·O with respect to P: Σ_n conj(O_n)·χ_n (un-shifted), (M, ny, nx).
        ``weight`` (ny, nx) float32, if given, receives Σ_n |O_n|² (the probe's
        preconditioner) on the fused path; elsewhere it is filled from ``patch``.

        Parameters
        ----------
        chi : ndarray
            (B, M, ny, nx) complex64 exit-wave residuals (or gradients).
        patch : ndarray
            (B, ny, nx) complex64 object patches (:meth:`exit_waves`).
        sel : index array, slice or None
            The windows (None: all).
        weight : ndarray or None
            (ny, nx) float32 written with Σ_n |O_n|².
        """
        if self.fused and chi.dtype == np.complex64:
            if chi.ndim != 4 or tuple(patch.shape) != (chi.shape[0],) + chi.shape[2:] or (
                    weight is not None and tuple(weight.shape) != chi.shape[2:]):
                raise ValueError(f"exit waves {chi.shape} and patches {patch.shape} disagree")
            out = np.empty(chi.shape[1:], np.complex64)
            w = weight if weight is not None else np.empty(chi.shape[2:], np.float32)
            kernels.frame_sum_conj(np.asarray(patch, np.complex64), chi, out, w)
            return out
        if weight is not None:
            weight[...] = (patch.real ** 2 + patch.imag ** 2).sum(axis=0)
        return self.frame_probes_adj(self.xp.conj(patch)[:, None] * chi, sel)

    def object_update_terms(self, chi, probes, sel=None):
        """(:meth:`exit_adj_object`, :meth:`illumination`) of the windows ``sel`` on new object
        arrays: the numerator of an object update and its preconditioner.

        Parameters
        ----------
        chi : ndarray
            (B, M, ny, nx) complex64 exit-wave residuals (or gradients).
        probes : ndarray
            (B, M, ny, nx) or (1, M, ny, nx) frame probes.
        sel : index array, slice or None
            The windows (None: all).
        """
        return self.exit_adj_object(chi, probes, sel), self.illumination(probes, sel)

    def illumination(self, probes, sel=None):
        """Σ_n Σ_m |P_m^(n)|² on the object grid (H, W) float32: the object preconditioner.

        Parameters
        ----------
        probes : ndarray
            (B, M, ny, nx) complex64 frame probes, or (1, M, ny, nx) for every window.
        sel : index array, slice or None
            The windows (None: all).
        """
        return self.patches_adj((probes.real ** 2 + probes.imag ** 2).sum(axis=1), sel)

    # --- linear in the object ---------------------------------------------------------------------
    def fwd(self, obj, sel=None):
        """(B, M, ny, nx) far-field waves F(P·O) for object ``obj``: linear in the object.
        Forward of the pair :meth:`fwd` / :meth:`adj`.

        Parameters
        ----------
        obj : ndarray
            (H, W) complex64 object.
        sel : index array, slice or None
            The windows (None: all).
        """
        return self.far(self.exit_waves(obj, sel)[0], overwrite=True)

    def adj(self, psi, sel=None):
        """Adjoint of :meth:`fwd`: an (H, W) complex64 object from far-field waves.

        Parameters
        ----------
        psi : ndarray
            (B, M, ny, nx) complex64 far-field waves.
        sel : index array, slice or None
            The windows (None: all).
        """
        return self.exit_adj_object(self.far_adj(psi), self.frame_probes(sel), sel)

    # --- linear in the probe ----------------------------------------------------------------------
    def fwd_probe(self, probe, obj, sel=None):
        """(B, M, ny, nx) far-field waves as a linear function of ``probe``. Forward of the
        pair :meth:`fwd_probe` / :meth:`adj_probe`.

        Parameters
        ----------
        probe : ndarray
            (M, ny, nx) complex64.
        obj : ndarray
            (H, W) complex64 object (fixed).
        sel : index array, slice or None
            The windows (None: all).
        """
        return self.far(self.exit_waves(obj, sel, probe)[0], overwrite=True)

    def adj_probe(self, psi, obj, sel=None):
        """Adjoint of :meth:`fwd_probe` with respect to the probe: (M, ny, nx) complex64.

        Parameters
        ----------
        psi : ndarray
            (B, M, ny, nx) complex64 far-field waves.
        obj : ndarray
            (H, W) complex64 object (fixed).
        sel : index array, slice or None
            The windows (None: all).
        """
        return self.exit_adj_probe(self.far_adj(psi), self.patches(obj, sel), sel)

    def shifted_probes(self):
        """(N, M, ny, nx) probes shifted by each position's sub-pixel part (or (1, M, ...))."""
        return self.frame_probes()

    def _shifted(self):
        """The operator's cache of quantised Fourier shifts of its probe (the simulation's,
        :class:`twin.operators.farfield.ShiftedProbes`)."""
        hit = self._cache.get("shifted")
        if hit is None or hit.source is not self.probe:
            hit = self._cache["shifted"] = farfield.ShiftedProbes(self.probe, self.quantum)
        return hit

    def intensity(self, obj, chunk: int | None = None):
        """(N, ny, nx) float32 noiseless frames Σ_m |Ψ_nm|².

        Through the fine-grid detector model at oversampling 1 (:mod:`twin.operators.farfield`:
        the same shifted probes, exit-wave kernel and transforms as the simulation): the
        input-side shift of the centred DFT only adds a phase ramp to Ψ, so the frames are the
        DFT's |·|² read in centred order (in FFT order if not ``centred``).

        Parameters
        ----------
        obj : ndarray
            (H, W) complex64 object.
        chunk : int or None
            Frames made at a time (None: cache-sized on NumPy, all at once on a GPU).
        """
        xp = self.xp
        n_pos = self.n_positions
        m, ny, nx = self.probe.shape
        if chunk is None:
            chunk = n_pos if xp is not np else max(16, 2 ** 18 // (m * ny * nx))
        out = xp.empty((n_pos, ny, nx), dtype=xp.float32)
        quantized = self.quantum and self.shift == "fourier" and self.has_frac
        for start in range(0, n_pos, chunk):
            stop = min(n_pos, start + chunk)
            sel = slice(start, stop)
            if quantized:
                src, inv = self._shifted().lookup(self.frac_np[sel])
            else:
                src = self.frame_probes(sel)
                inv = np.arange(stop - start) if len(src) > 1 else np.zeros(stop - start, int)
            if self._interpolates():
                o = self.patches(obj, sel).reshape(-1, nx)
                org = np.stack([np.arange(stop - start) * ny, np.zeros(stop - start, int)], 1)
            else:
                o, org = obj, self.origin[sel]
            psi = farfield.exit_product(src, inv, farfield._c64(o, xp), org)
            out[sel] = farfield.far_intensity(psi, 1, ny, centred=self.centred)
        return out
