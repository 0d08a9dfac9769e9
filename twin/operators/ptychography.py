"""The far-field ptychography operator with probe modes (CONTRACTS §3's frame model).

For scan position n and probe mode m the far-field wave is Ψ_nm = F(P_m^(n) · O_n), with O_n
the object patch under the probe, P_m^(n) the probe shifted by the position's sub-pixel part,
and F the centred unitary DFT. Frames are I_n = Σ_m |Ψ_nm|². The operator is linear in the
object (probe fixed) and in the probe (object fixed); both have ``fwd`` and ``adj``.

Positions: ``positions_px`` (N, 2) are the (row, col) of each probe window's top-left corner on
the object grid, fractional allowed. :func:`positions_from_translations` converts CONTRACTS §3
translations (metres, probe centre relative to the object's centre pixel) to these.
"""

from __future__ import annotations

import numpy as np

from twin.operators.propagation import farfield_adj, farfield_fwd
from twin.core.scatter import scatter_add
from twin.core.xp import array_module, fft2, ifft2


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


class FarFieldPtychography:
    """Ψ = F(P·O) for N positions and M probe modes.

    ``probe`` (M, ny, nx) complex; ``positions_px`` (N, 2); ``object_shape`` (H, W).
    """

    def __init__(self, probe, positions_px, object_shape, subpixel_quantum: float | None = None):
        """``subpixel_quantum``: if given (e.g. 1/32), :meth:`intensity` rounds each sub-pixel
        shift to that fraction of a pixel and reuses the shifted probes (a cache), instead of
        two FFTs per frame; the operators ``fwd``/``adj`` are always exact."""
        xp = array_module(probe)
        self.xp = xp
        self.probe = probe if probe.ndim == 3 else probe[None]
        pos = np.asarray(positions_px, dtype=float)
        self.object_shape = tuple(object_shape)
        ny, nx = self.probe.shape[-2:]
        self.origin = np.floor(pos).astype(int)
        if (self.origin.min(initial=0) < 0 or (self.origin[:, 0] + ny).max() > object_shape[0]
                or (self.origin[:, 1] + nx).max() > object_shape[1]):
            raise ValueError("a probe window falls outside the object array")
        self.frac_np = pos - self.origin
        self.frac = xp.asarray(self.frac_np, dtype=xp.float32)
        self.has_frac = bool(np.any(pos != self.origin))
        self.quantum = subpixel_quantum

    @property
    def n_positions(self) -> int:
        return len(self.origin)

    def flat_index(self, sel=slice(None)):
        """(n, ny, nx) flat object indices of the probe windows ``sel`` (built on demand)."""
        ny, nx = self.probe.shape[-2:]
        o = self.origin[sel]
        rows = o[:, 0, None, None] + np.arange(ny)[None, :, None]
        cols = o[:, 1, None, None] + np.arange(nx)[None, None, :]
        return self.xp.asarray(rows * self.object_shape[1] + cols)

    # --- pieces ---------------------------------------------------------------------------
    def patches(self, obj, sel=slice(None)):
        """(n, ny, nx) object patches under the probe windows ``sel``."""
        if self.xp is np:
            ny, nx = self.probe.shape[-2:]
            win = np.lib.stride_tricks.sliding_window_view(obj, (ny, nx))
            o = self.origin[sel]
            return win[o[:, 0], o[:, 1]]
        return obj.ravel()[self.flat_index(sel)]

    def patches_adj(self, p, sel=slice(None)):
        """Adjoint of :meth:`patches`: scatter-add into an object array."""
        size = self.object_shape[0] * self.object_shape[1]
        return scatter_add(size, self.flat_index(sel), p).reshape(self.object_shape)

    def _quantized_probes(self, sel):
        """(n, M, ny, nx) probes shifted by sub-pixel parts rounded to :attr:`quantum`."""
        q = self.quantum
        steps = int(round(1 / q))
        key = np.round(self.frac_np[sel] * steps).astype(int)          # 0..steps
        if not hasattr(self, "_cache"):
            self._cache = {}
        uniq, inv = np.unique(key, axis=0, return_inverse=True)
        for k in map(tuple, uniq):
            if k not in self._cache:
                shift = self.xp.asarray(np.array(k, dtype=np.float32) / steps)
                self._cache[k] = subpixel_shift(self.probe, shift[None, :])
        stack = self.xp.stack([self._cache[tuple(k)] for k in uniq])
        return stack[self.xp.asarray(inv.ravel())]

    def shifted_probes(self):
        """(N, M, ny, nx) probes shifted by each position's sub-pixel part (or (1, M, ...))."""
        if not self.has_frac:
            return self.probe[None]
        return subpixel_shift(self.probe[None], self.frac[:, None, :])

    # --- linear in the object ---------------------------------------------------------------
    def fwd(self, obj):
        """(N, M, ny, nx) far-field waves for object ``obj`` (H, W)."""
        return farfield_fwd(self.shifted_probes() * self.patches(obj)[:, None])

    def adj(self, psi):
        """Adjoint of :meth:`fwd`: an (H, W) object from (N, M, ny, nx) waves."""
        back = farfield_adj(psi)
        return self.patches_adj((self.xp.conj(self.shifted_probes()) * back).sum(axis=1))

    # --- linear in the probe ----------------------------------------------------------------
    def fwd_probe(self, probe, obj):
        """(N, M, ny, nx) far-field waves as a linear function of ``probe`` (M, ny, nx)."""
        p = probe[None]
        if self.has_frac:
            p = subpixel_shift(p, self.frac[:, None, :])
        return farfield_fwd(p * self.patches(obj)[:, None])

    def adj_probe(self, psi, obj):
        """Adjoint of :meth:`fwd_probe` with respect to the probe."""
        g = self.xp.conj(self.patches(obj))[:, None] * farfield_adj(psi)
        if self.has_frac:
            g = subpixel_shift(g, -self.frac[:, None, :])
        return g.sum(axis=0)

    def intensity(self, obj, chunk: int | None = None):
        """(N, ny, nx) float32 noiseless frames Σ_m |Ψ_nm|².

        The input-side shift of the centred DFT only adds a phase ramp to Ψ, so the intensity
        is fftshift(|DFT(P·O)|²): one real shift instead of two complex ones. Frames are made in
        cache-sized chunks with reused buffers (the CPU path is memory-bound otherwise).
        """
        xp = self.xp
        n_pos = self.n_positions
        m, ny, nx = self.probe.shape
        if chunk is None:
            chunk = n_pos if xp is not np else max(16, 2 ** 18 // (m * ny * nx))
        out = xp.empty((n_pos, ny, nx), dtype=xp.float32)
        buf = xp.empty((min(chunk, n_pos), m, ny, nx), dtype=xp.complex64)
        for start in range(0, n_pos, chunk):
            stop = min(n_pos, start + chunk)
            sel = slice(start, stop)
            b = buf[:stop - start]
            patch = self.patches(obj, sel)
            if not self.has_frac:
                probes = self.probe[None]
            elif self.quantum:
                probes = self._quantized_probes(sel)
            else:
                probes = subpixel_shift(self.probe[None], self.frac[sel, None, :])
            xp.multiply(probes, patch[:, None], out=b)
            f = fft2(b, norm="ortho", overwrite_x=True)
            sq = xp.square(f.view(xp.float32))
            inten = (sq[..., 0::2] + sq[..., 1::2]).sum(axis=1)
            out[start:stop] = xp.fft.fftshift(inten, axes=(-2, -1))
        return out
