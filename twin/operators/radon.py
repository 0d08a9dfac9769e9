"""Parallel-beam projection and its exact adjoint (back-projection), CONTRACTS §5 geometry.

The geometry is scikit-image's ``radon(image, theta, circle=True)``: an (n, n) image (rows along
the beam at 0°, columns along the detector) is rotated about its centre pixel (n//2, n//2) and
summed along the rows. A detector pixel s and a ray sample t (both in pixels, centred on n//2)
read the image, bilinearly, at

    col = c + cos θ·(s − c) + sin θ·(t − c),   row = c − sin θ·(s − c) + cos θ·(t − c).

The same pixel and ray conventions are those of the gridding FBP in :mod:`twin.tomo.reconstruct`
(axis at column n//2, detector pixel n//2 at s = 0), so FBP and the iterative methods agree.

These weights form one sparse matrix A of shape (n_angles·n, n²) — rows ordered (angle,
detector pixel), columns the image's pixels in C order — built once per geometry and cached.
Projection is A·X and back-projection Aᵀ·Y, applied to all slices at once as a sparse-dense
matrix product on a pixel-major stack X (n², n_slices): the layout the iterative solvers keep.
On a GPU the same matrix is a ``cupyx.scipy.sparse.csr_matrix`` (cuSPARSE).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import scipy.sparse as sp

from twin.core.xp import array_module


@lru_cache(maxsize=6)
def projection_matrix(n: int, angles_key: tuple) -> sp.csr_matrix:
    """The bilinear ray-sampling matrix A, (n_angles·n, n²) float32 CSR with int32 indices.

    Parameters
    ----------
    n : int
        Image side in pixels.
    angles_key : tuple of float
        Projection angles in degrees (a tuple so that the matrix can be cached).
    """
    n = int(n)
    c = n // 2
    na = len(angles_key)
    th = np.deg2rad(np.asarray(angles_key, dtype=float))
    cos, sin = np.cos(th)[:, None, None], np.sin(th)[:, None, None]
    s = (np.arange(n) - c)[None, :, None]              # detector pixel  (a, s, t)
    t = (np.arange(n) - c)[None, None, :]              # sample along the ray
    col = c + cos * s + sin * t
    row = c - sin * s + cos * t
    r0 = np.floor(row)
    c0 = np.floor(col)
    fr = (row - r0).astype(np.float32)
    fc = (col - c0).astype(np.float32)
    r0 = r0.astype(np.int32)
    c0 = c0.astype(np.int32)
    ray = np.broadcast_to(np.arange(na * n, dtype=np.int32).reshape(na, n, 1), r0.shape)
    rows, cols, vals = [], [], []
    for dr, dc, w in ((0, 0, (1 - fr) * (1 - fc)), (0, 1, (1 - fr) * fc),
                      (1, 0, fr * (1 - fc)), (1, 1, fr * fc)):
        rr, cc = r0 + dr, c0 + dc
        ok = (rr >= 0) & (rr < n) & (cc >= 0) & (cc < n) & (w > 0)
        rows.append(ray[ok])
        cols.append((rr * n + cc)[ok])
        vals.append(w[ok])
    A = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                      shape=(na * n, n * n), dtype=np.float32)
    A.sum_duplicates()
    return A


class Radon:
    """Projector for (..., n, n) images at ``angles_deg``; sinograms are (..., n_angles, n).

    Parameters
    ----------
    n : int
        Image side in pixels (the detector has n pixels too).
    angles_deg : array_like, (n_angles,)
        Projection angles in degrees.
    xp : module
        ``numpy`` or ``cupy``: where the matrix lives.

    :meth:`fwd`/:meth:`adj` take image-shaped arrays (any leading axes, real or complex);
    :meth:`fwd_cols`/:meth:`adj_cols` take the pixel-major stacks (n², k) and (n_angles·n, k)
    that the iterative solvers keep, with no reshuffling.
    """

    def __init__(self, n: int, angles_deg, xp=np):
        self.n = int(n)
        self.angles_deg = np.atleast_1d(np.asarray(angles_deg, dtype=float))
        self.n_angles = len(self.angles_deg)
        self.xp = xp
        A = projection_matrix(self.n, tuple(np.round(self.angles_deg, 9).tolist()))
        if xp is np:
            self.A, self.AT = A, A.T              # the transpose is a CSC view: no copy
        else:  # pragma: no cover - needs a GPU
            import cupyx.scipy.sparse as csp

            self.A = csp.csr_matrix(A)
            self.AT = csp.csr_matrix(A.T.tocsr())

    @property
    def shape(self) -> tuple[int, int]:
        """(n_angles·n, n²): the matrix's shape."""
        return self.A.shape

    def fwd_cols(self, x):
        """A·x: (n², k) pixel-major images → (n_angles·n, k) rays (k slices at once)."""
        return self._mul(self.A, x)

    def adj_cols(self, y):
        """Aᵀ·y: (n_angles·n, k) rays → (n², k) pixel-major images (the exact transpose)."""
        return self._mul(self.AT, y)

    def angle_blocks(self) -> list:
        """Per-angle row blocks [(A_a, A_aᵀ)], A_a (n, n²): views of A, for SART's updates."""
        if getattr(self, "_blocks", None) is None:
            n, A = self.n, self.A
            blocks = []
            for a in range(self.n_angles):
                if self.xp is np:
                    i0, i1 = A.indptr[a * n], A.indptr[(a + 1) * n]
                    Ab = sp.csr_matrix((A.data[i0:i1], A.indices[i0:i1],
                                        A.indptr[a * n:(a + 1) * n + 1] - i0),
                                       shape=(n, n * n))
                else:  # pragma: no cover - needs a GPU
                    Ab = A[a * n:(a + 1) * n]
                blocks.append((Ab, Ab.T))
            self._blocks = blocks
        return self._blocks

    def _mul(self, M, v):
        xp = array_module(v)
        if xp.iscomplexobj(v):
            return self._mul(M, v.real) + 1j * self._mul(M, v.imag)
        if v.dtype not in (np.float32, np.float64):
            v = v.astype(np.float32)
        return M @ xp.ascontiguousarray(v)

    def fwd(self, images):
        """Sinogram (..., n_angles, n) of images (..., n, n)."""
        lead = images.shape[:-2]
        x = images.reshape((-1, self.n * self.n)).T              # (n², k)
        y = self.fwd_cols(x)                                      # (a·n, k)
        return y.T.reshape(lead + (self.n_angles, self.n))

    def adj(self, sino):
        """Back-projection (..., n, n) of sinograms (..., n_angles, n): the exact transpose."""
        lead = sino.shape[:-2]
        y = sino.reshape((-1, self.n_angles * self.n)).T
        x = self.adj_cols(y)
        return x.T.reshape(lead + (self.n, self.n))
