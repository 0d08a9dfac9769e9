"""Parallel-beam projection and its exact adjoint (back-projection), CONTRACTS §5 geometry.

The geometry is scikit-image's ``radon(image, theta, circle=True)``: an (n, n) image (rows along
the beam at 0°, columns along the detector) is rotated about its centre pixel (n//2, n//2) and
summed along the rows. A detector pixel s and a ray sample t read the image, bilinearly, at

    col = c + cos θ·(s − c) + sin θ·(t − c),   row = c − sin θ·(s − c) + cos θ·(t − c).

:class:`Radon` keeps this interpolation as gathers so that :meth:`Radon.adj` is its exact
transpose (scatter-add), as the dot-product test requires.
"""

from __future__ import annotations

import numpy as np

from twin.core.scatter import scatter_add
from twin.core.xp import array_module


class Radon:
    """Projector for (..., n, n) images at ``angles_deg``; sinograms are (..., n_angles, n)."""

    def __init__(self, n: int, angles_deg, xp=np):
        self.n = int(n)
        self.angles_deg = np.asarray(angles_deg, dtype=float)
        self.xp = xp
        c = self.n // 2
        s = np.arange(self.n) - c
        t = np.arange(self.n) - c
        self._taps = []
        for th in np.deg2rad(self.angles_deg):
            col = c + np.cos(th) * s[None, :] + np.sin(th) * t[:, None]     # (t, s)
            row = c - np.sin(th) * s[None, :] + np.cos(th) * t[:, None]
            r0, c0 = np.floor(row).astype(int), np.floor(col).astype(int)
            fr, fc = row - r0, col - c0
            idx, wts = [], []
            for dr, dc, w in ((0, 0, (1 - fr) * (1 - fc)), (0, 1, (1 - fr) * fc),
                              (1, 0, fr * (1 - fc)), (1, 1, fr * fc)):
                rr, cc = r0 + dr, c0 + dc
                ok = (rr >= 0) & (rr < self.n) & (cc >= 0) & (cc < self.n)
                idx.append(np.where(ok, rr * self.n + cc, 0))
                wts.append(np.where(ok, w, 0.0))
            self._taps.append((xp.asarray(np.stack(idx)), xp.asarray(np.stack(wts),
                                                                      dtype=xp.float32)))

    def fwd(self, images):
        """Sinogram (..., n_angles, n) of images (..., n, n)."""
        xp = array_module(images)
        flat = images.reshape(images.shape[:-2] + (self.n * self.n,))
        out = []
        for idx, w in self._taps:
            vals = (flat[..., idx] * w).sum(axis=-3)          # (..., t, s)
            out.append(vals.sum(axis=-2))
        return xp.stack(out, axis=-2)

    def adj(self, sino):
        """Back-projection (..., n, n) of sinograms (..., n_angles, n): the exact transpose."""
        xp = array_module(sino)
        lead = sino.shape[:-2]
        nb = int(np.prod(lead)) if lead else 1
        s = sino.reshape((nb,) + sino.shape[-2:])
        size = self.n * self.n
        out = xp.zeros((nb, size), dtype=sino.dtype)
        for a, (idx, w) in enumerate(self._taps):
            vals = w[None] * s[:, a][:, None, None, :]            # (nb, 4, t, s)
            for b in range(nb):
                out[b] += scatter_add(size, idx, vals[b])
        return out.reshape(lead + (self.n, self.n))
