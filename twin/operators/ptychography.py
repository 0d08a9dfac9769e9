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
the object grid, fractional allowed. :func:`positions_from_translations` converts CONTRACTS §3
translations (metres, probe centre relative to the object's centre pixel) to these.
"""

from __future__ import annotations

import numpy as np

from twin.core import kernels
from twin.operators import farfield
from twin.operators.propagation import farfield_adj, farfield_fwd
from twin.core.scatter import add_windows, window_index
from twin.core.xp import array_module, fft2, ifft2

SHIFTS = ("fourier", "bilinear", "cubic")
TAPS = {"bilinear": 2, "cubic": 4}


def _keys_weights(f, a: float = -0.5):
    """Keys' cubic-convolution weights of the samples at −1, 0, 1, 2 for a fraction ``f``."""
    def near(d):                       # |d| ≤ 1
        return ((a + 2) * d - (a + 3)) * d * d + 1

    def far(d):                        # 1 < |d| < 2
        return ((a * d - 5 * a) * d + 8 * a) * d - 4 * a

    return [far(1 + f), near(f), near(1 - f), far(2 - f)]


def positions_from_translations(translation_m, pixel_size_m: float, object_shape,
                                probe_shape):
    """(N, 2) top-left (row, col) pixel positions from (N, ≥2) x/y translations in metres."""
    t = np.asarray(translation_m, dtype=float)
    cy = object_shape[0] // 2 + t[:, 1] / pixel_size_m
    cx = object_shape[1] // 2 + t[:, 0] / pixel_size_m
    return np.stack([cy - probe_shape[-2] // 2, cx - probe_shape[-1] // 2], axis=1)


def translations_from_positions(positions_px, pixel_size_m: float, object_shape, probe_shape):
    """Inverse of :func:`positions_from_translations`: (N, 3) x, y, 0 in metres."""
    p = np.asarray(positions_px, dtype=float)
    y = (p[:, 0] + probe_shape[-2] // 2 - object_shape[0] // 2) * pixel_size_m
    x = (p[:, 1] + probe_shape[-1] // 2 - object_shape[1] // 2) * pixel_size_m
    return np.stack([x, y, np.zeros_like(x)], axis=1)


def subpixel_shift(a, shift, xp=None):
    """Shift ``a`` (..., ny, nx) by ``shift`` (..., 2) pixels (row, col) with a Fourier phase ramp.

    Unitary: its adjoint is the shift by −shift.
    """
    xp = xp or array_module(a)
    return ifft2(fft2(a) * shift_ramp(a.shape[-2:], shift, xp)).astype(a.dtype, copy=False)


def shift_ramp(shape, shift, xp=np):
    """Fourier phase ramp (..., ny, nx) of a shift (..., 2): separable, built from 1D factors."""
    ny, nx = shape
    s = xp.asarray(shift, dtype=xp.float32)
    ey = xp.exp(-2j * np.pi * s[..., 0, None] * xp.fft.fftfreq(ny).astype(xp.float32))
    ex = xp.exp(-2j * np.pi * s[..., 1, None] * xp.fft.fftfreq(nx).astype(xp.float32))
    return (ey[..., :, None] * ex[..., None, :]).astype(xp.complex64)


def _check_waves(chi, probes) -> None:
    """Exit waves (B, M, n, n) that match the probes (1, M, n, n) (the kernels trust shapes)."""
    if chi.ndim != 4 or tuple(chi.shape[1:]) != tuple(probes.shape[1:]):
        raise ValueError(f"exit waves of shape {chi.shape} for probes {probes.shape}")


def _floats(a) -> np.ndarray:
    """A complex array as complex64 viewed as float32 pairs (…, 2·nx), for the CPU kernels."""
    a = np.asarray(a, np.complex64)
    if a.strides[-1] != a.itemsize:
        a = np.ascontiguousarray(a)
    return a.view(np.float32)


class FarFieldPtychography:
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

    # --- positions ----------------------------------------------------------------------------
    def set_positions(self, positions_px, sel=None) -> None:
        """Set all positions (N, 2), or those ``sel`` of them; checks they lie in the object."""
        pos = np.array(positions_px, dtype=float).reshape(-1, 2)
        if sel is not None:
            full = self.positions.copy()
            full[sel] = pos
            pos = full
        ny, nx = self.probe.shape[-2:]
        origin = np.floor(pos).astype(int)
        lo, hi = ((TAPS[self.shift] // 2 - 1, TAPS[self.shift] // 2) if self.shift in TAPS
                  else (0, 0))
        pad = hi
        if len(origin) and (origin.min() < lo or (origin[:, 0] + ny + pad).max()
                            > self.object_shape[0] or (origin[:, 1] + nx + pad).max()
                            > self.object_shape[1]):
            raise ValueError("a probe window falls outside the object array")
        self.positions = pos
        self.origin = origin
        self.frac_np = pos - origin
        self.has_frac = bool(np.any(self.frac_np))
        self._cache = {}
        self._taps_memo = {}
        self._dev_memo = {}

    @property
    def frac(self):
        """(N, 2) float32 sub-pixel parts on the operator's device."""
        return self.xp.asarray(self.frac_np, dtype=self.xp.float32)

    @property
    def n_positions(self) -> int:
        return len(self.origin)

    def with_positions(self, positions_px):
        """A copy of this operator (same probe, object shape, shift) at other positions."""
        return FarFieldPtychography(self.probe, positions_px, self.object_shape, self.quantum,
                                    self.shift, self.centred)

    def _sel(self, sel):
        return slice(None) if sel is None else sel

    def _frac(self, sel):
        """(B, 1, 1) row and column sub-pixel parts of the windows ``sel``, float32."""
        f = self.xp.asarray(self.frac_np[self._sel(sel)], dtype=self.xp.float32)
        return f[:, 0, None, None], f[:, 1, None, None]

    def flat_index(self, sel=None, size: int | None = None):
        """(B, s, s) flat object indices of the windows ``sel`` (s = probe side by default)."""
        ny, nx = self.probe.shape[-2:]
        sy, sx = (ny, nx) if size is None else (size, size)
        return window_index(self.origin[self._sel(sel)], (sy, sx), self.object_shape[1],
                            self.xp)

    # --- the object side: patches under the windows -----------------------------------------------
    def _windows(self, obj, sel, size, origins=None):
        o = self.origin[self._sel(sel)] if origins is None else origins
        if self.xp is np:
            win = np.lib.stride_tricks.sliding_window_view(obj, (size, size))
            return win[o[:, 0], o[:, 1]]
        return obj.ravel()[window_index(o, (size, size), self.object_shape[1], self.xp)]

    def _interpolates(self) -> bool:
        return self.shift in TAPS and self.has_frac

    @property
    def fused(self) -> bool:
        """Whether this operator runs on the CPU's fused kernels (:mod:`twin.core.kernels`):
        NumPy arrays, and a probe that no frame shifts (object-side interpolation, or integer
        positions)."""
        return (self.xp is np and kernels.AVAILABLE
                and (self.shift != "fourier" or not self.has_frac))

    def _check_object(self, a) -> None:
        """The fused kernels do not check bounds: an object-sized array must be one."""
        if tuple(a.shape) != self.object_shape:
            raise ValueError(f"an object array of shape {tuple(a.shape)}; the operator's is "
                             f"{self.object_shape}")

    def _taps(self, sel, extra: int = 0):
        """Kernel form of the windows ``sel``: (tap-0 origins (B, 2) int64, wy (B, k), wx (B, k)
        float32); ``extra`` widens each window by that many pixels on every side."""
        key = (id(sel), extra)
        hit = self._taps_memo.get(key)
        if hit is not None and (sel is None if hit[0] is None else
                                sel is not None and np.asarray(sel).dtype == hit[0].dtype
                                and np.array_equal(hit[0], sel)):
            return hit[1]                         # the same windows as a recent call
        o = self.origin[self._sel(sel)]
        if self._interpolates():
            k = TAPS[self.shift]
            f = self.frac_np[self._sel(sel)].astype(np.float32)
            fy, fx = f[:, 0], f[:, 1]
            if self.shift == "bilinear":
                wy, wx = np.stack([1 - fy, fy], 1), np.stack([1 - fx, fx], 1)
            else:
                wy, wx = np.stack(_keys_weights(fy), 1), np.stack(_keys_weights(fx), 1)
            o = o - (k // 2 - 1)
        else:
            wy = wx = np.ones((len(o), 1), np.float32)
        out = (np.ascontiguousarray(o - extra, dtype=np.int64),
               np.ascontiguousarray(wy, np.float32), np.ascontiguousarray(wx, np.float32))
        if len(self._taps_memo) > 8:
            self._taps_memo.clear()
        self._taps_memo[key] = (None if sel is None else np.array(sel, copy=True), out)
        return out

    def _device_taps(self, sel):
        """:meth:`_taps` on the operator's device: tap-0 corners (B, 2) and the row and column
        weights as lists of (B, 1, 1) float32. Moved once per batch (the memo follows
        :meth:`_taps`'s): on a GPU, the copies and a dozen tiny kernels per call otherwise cost
        more than the interpolation they weight."""
        host = self._taps(sel)
        hit = self._dev_memo.get(id(host))
        if hit is not None and hit[0] is host:
            return hit[1]
        org, wy, wx = host
        xp = self.xp
        dy, dx = xp.asarray(wy)[:, :, None, None], xp.asarray(wx)[:, :, None, None]
        dev = (xp.asarray(org), [dy[:, j] for j in range(wy.shape[1])],
               [dx[:, j] for j in range(wx.shape[1])])
        if len(self._dev_memo) > 8:
            self._dev_memo.clear()
        self._dev_memo[id(host)] = (host, dev)      # holds ``host``: its id stays unique
        return dev

    def _weights(self, sel):
        """Row and column interpolation weights, each a list of ``taps`` (B, 1, 1) float32."""
        return self._device_taps(sel)[1:]

    def _read(self, w, wy, wx):
        """Separable interpolation of windows (B, s + k − 1, s + k − 1) → (B, s, s)."""
        k = len(wx)
        m = w.shape[-1] - k + 1
        t = wx[0] * w[:, :, :m]
        for j in range(1, k):
            t += wx[j] * w[:, :, j:j + m]
        out = wy[0] * t[:, :m]
        for j in range(1, k):
            out += wy[j] * t[:, j:j + m]
        return out

    def patches(self, obj, sel=None):
        """(B, ny, nx) object patches under the probe windows ``sel`` (interpolated at the
        fractional positions for ``shift`` "bilinear" or "cubic")."""
        n = self.probe.shape[-1]
        if self.fused:
            self._check_object(obj)
            org, wy, wx = self._taps(sel)
            out = np.empty((len(org), n, n), np.complex64)
            kernels.interp_gather(_floats(obj), org, wy, wx, n, 2, out.view(np.float32))
            return out
        org, wy, wx = self._device_taps(sel)
        if not self._interpolates():
            return self._windows(obj, sel, n, org)
        return self._read(self._windows(obj, sel, n + len(wx) - 1, org), wy, wx)

    def patches_adj(self, p, sel=None, out=None):
        """Adjoint of :meth:`patches`: ``p`` (B, ny, nx) added into an (H, W) object array
        (``out``, or a new zero array). A (1, ny, nx) ``p`` counts for every window."""
        xp = self.xp
        b = len(self.origin[self._sel(sel)])
        if out is None:
            out = xp.zeros(self.object_shape, dtype=p.dtype)
        if self.fused and out.dtype in (np.complex64, np.float32) and out.strides[-1] == \
                out.itemsize:
            self._check_object(out)
            n = self.probe.shape[-1]
            if p.ndim != 3 or p.shape[0] not in (1, b) or p.shape[1:] != (n, n):
                raise ValueError(f"patches of shape {p.shape} for {b} windows of {n}×{n}")
            if np.iscomplexobj(p) and out.dtype == np.float32:
                raise TypeError("complex patches cannot be added into a real object array")
            org, wy, wx = self._taps(sel)
            ch = 2 if out.dtype == np.complex64 else 1
            g = np.asarray(p, out.dtype)
            if g.strides[-1] != g.itemsize:
                g = np.ascontiguousarray(g)
            kernels.interp_scatter(out.view(np.float32), org, wy, wx, g.view(np.float32), ch)
            return out
        if p.shape[0] != b:
            p = xp.broadcast_to(p, (b,) + p.shape[1:])
        origins, wy, wx = self._device_taps(sel)          # tap-0 corners and weights
        if self._interpolates():
            k = len(wy)
            ny, nx = p.shape[1:]
            t = xp.zeros((b, ny + k - 1, nx), dtype=p.dtype)
            for j in range(k):
                t[:, j:j + ny] += wy[j] * p
            w = xp.zeros((b, ny + k - 1, nx + k - 1), dtype=p.dtype)
            for j in range(k):
                w[:, :, j:j + nx] += wx[j] * t
            p = w
        add_windows(out, origins, p)
        return out

    def patch_gradients(self, obj, sel=None):
        """(∂/∂row, ∂/∂col) of the object under the windows ``sel``, each (B, ny, nx): central
        differences of the object as the operator reads it (interpolation included), edges
        repeated where a window touches the object's border."""
        n = self.probe.shape[-1]
        k = TAPS[self.shift] if self._interpolates() else 1
        size = n + 2 + k - 1
        o = self.origin[self._sel(sel)] - 1 - (k // 2 - 1) * (k > 1)
        inside = o.min(initial=0) >= 0 and (o + size <= np.array(self.object_shape)).all()
        if inside and self.fused:
            self._check_object(obj)
            org, wy, wx = self._taps(sel, extra=1)
            w = np.empty((len(org), n + 2, n + 2), np.complex64)
            kernels.interp_gather(_floats(obj), org, wy, wx, n + 2, 2, w.view(np.float32))
            gy = np.empty((len(org), n, n), np.complex64)
            gx = np.empty_like(gy)
            kernels.central_differences(w.view(np.float32), gy.view(np.float32),
                                        gx.view(np.float32))
            return gy, gx
        elif inside:
            w = self._windows(obj, None, size, o)
            if k > 1:
                w = self._read(w, *self._weights(sel))
        else:
            w = self.xp.pad(self.patches(obj, sel), ((0, 0), (1, 1), (1, 1)), mode="edge")
        return (w[:, 2:, 1:-1] - w[:, :-2, 1:-1]) / 2, (w[:, 1:-1, 2:] - w[:, 1:-1, :-2]) / 2

    # --- the probe side ---------------------------------------------------------------------------
    def frame_probes(self, sel=None, probe=None):
        """(B, M, ny, nx) probes of the windows ``sel`` — shifted by each sub-pixel part for
        ``"fourier"`` — or (1, M, ny, nx) where all frames share one probe."""
        p = (self.probe if probe is None else probe)[None]
        if self.shift != "fourier" or not self.has_frac:
            return p
        f = self.xp.asarray(self.frac_np[self._sel(sel)], dtype=self.xp.float32)
        return subpixel_shift(p, f[:, None, :])

    def frame_probes_adj(self, g, sel=None):
        """Adjoint of :meth:`frame_probes` (summed over the frames): (M, ny, nx) from
        (B, M, ny, nx)."""
        if self.shift != "fourier" or not self.has_frac:
            return g.sum(axis=0)
        xp = self.xp
        f = xp.asarray(self.frac_np[self._sel(sel)], dtype=xp.float32)
        ramp = shift_ramp(g.shape[-2:], -f[:, None, :], xp)
        return ifft2((fft2(g) * ramp).sum(axis=0))

    # --- the far field ----------------------------------------------------------------------------
    def far(self, psi, overwrite: bool = False):
        """F: exit waves (..., ny, nx) → far-field waves (unitary)."""
        if self.centred:
            return farfield_fwd(psi)
        return fft2(psi, overwrite_x=overwrite)

    def far_adj(self, psi, overwrite: bool = False):
        """Fᴴ = F⁻¹: far-field waves → exit waves (``overwrite``: ``psi`` may be reused)."""
        return farfield_adj(psi) if self.centred else ifft2(psi, overwrite_x=overwrite)

    # --- exit waves and their adjoints (what the engines compose) -----------------------
    def exit_waves(self, obj, sel=None, probe=None):
        """(ψ, patch, probes): exit waves (B, M, ny, nx), the object patches (B, ny, nx) and the
        frame probes (:meth:`frame_probes`) of the windows ``sel``."""
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
        """Adjoint of ψ = P·O with respect to O: Σ_m conj(P_m)·χ_m added into the object."""
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
        preconditioner) on the fused path; elsewhere it is filled from ``patch``."""
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
        arrays: the numerator of an object update and its preconditioner."""
        return self.exit_adj_object(chi, probes, sel), self.illumination(probes, sel)

    def illumination(self, probes, sel=None):
        """Σ_n Σ_m |P_m^(n)|² on the object grid (H, W) float32: the object preconditioner."""
        return self.patches_adj((probes.real ** 2 + probes.imag ** 2).sum(axis=1), sel)

    # --- linear in the object ---------------------------------------------------------------------
    def fwd(self, obj, sel=None):
        """(B, M, ny, nx) far-field waves for object ``obj`` (H, W)."""
        return self.far(self.exit_waves(obj, sel)[0], overwrite=True)

    def adj(self, psi, sel=None):
        """Adjoint of :meth:`fwd`: an (H, W) object from (B, M, ny, nx) waves."""
        return self.exit_adj_object(self.far_adj(psi), self.frame_probes(sel), sel)

    # --- linear in the probe ----------------------------------------------------------------------
    def fwd_probe(self, probe, obj, sel=None):
        """(B, M, ny, nx) far-field waves as a linear function of ``probe`` (M, ny, nx)."""
        return self.far(self.exit_waves(obj, sel, probe)[0], overwrite=True)

    def adj_probe(self, psi, obj, sel=None):
        """Adjoint of :meth:`fwd_probe` with respect to the probe: (M, ny, nx)."""
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
        DFT's |·|² read in centred order. Frames are made in cache-sized chunks.
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
