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


_CHUNK_ANGLES = 12


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
    th_all = np.deg2rad(np.asarray(angles_key, dtype=float))
    s = (np.arange(n) - c)[None, :, None]              # detector pixel  (angle, s, t)
    t = (np.arange(n) - c)[None, None, :]              # sample along the ray
    blocks = []
    # a few angles at a time: the temporaries stay in cache, and each block's rows are
    # already in order, so only the (short) rows need sorting to merge duplicate taps
    for a0 in range(0, len(th_all), _CHUNK_ANGLES):
        th = th_all[a0:a0 + _CHUNK_ANGLES]
        k = len(th)
        cos, sin = np.cos(th)[:, None, None], np.sin(th)[:, None, None]
        col = (c + cos * s) + sin * t
        row = (c - sin * s) + cos * t
        r0 = np.floor(row)
        c0 = np.floor(col)
        fr = (row - r0).astype(np.float32)
        fc = (col - c0).astype(np.float32)
        r0 = r0.astype(np.int32)
        c0 = c0.astype(np.int32)
        in_r = ((r0 >= 0) & (r0 < n), (r0 >= -1) & (r0 < n - 1))    # row r0, r0 + 1 inside
        in_c = ((c0 >= 0) & (c0 < n), (c0 >= -1) & (c0 < n - 1))
        base = r0 * n + c0
        wr, wc = (1 - fr, fr), (1 - fc, fc)
        idx = np.empty((k, n, n, 4), np.int32)
        w = np.empty((k, n, n, 4), np.float32)
        for j, (dr, dc) in enumerate(((0, 0), (0, 1), (1, 0), (1, 1))):
            w[..., j] = np.where(in_r[dr] & in_c[dc], wr[dr] * wc[dc], 0)
            idx[..., j] = base + (dr * n + dc)
        w = w.reshape(k * n, -1)
        idx = idx.reshape(k * n, -1)
        ok = w > 0
        indptr = np.zeros(k * n + 1, np.int64)
        np.cumsum(ok.sum(axis=1), out=indptr[1:])
        B = sp.csr_matrix((w[ok], idx[ok], indptr), shape=(k * n, n * n))
        B.sum_duplicates()
        blocks.append(B)
    A = sp.vstack(blocks, format="csr")
    if A.nnz < 2 ** 31:         # 32-bit indices: less memory traffic in every product
        A.indices = A.indices.astype(np.int32, copy=False)
        A.indptr = A.indptr.astype(np.int32, copy=False)
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
        """A·x: (n², k) pixel-major images → (n_angles·n, k) rays (k slices at once). Forward of
        the pair :meth:`fwd_cols` / :meth:`adj_cols`.

        Parameters
        ----------
        x : ndarray
            (n², k) images, pixels in C order down the columns; float32 (float64 stays float64,
            other real types become float32; complex: real and imaginary parts apart).

        Returns
        -------
        ndarray
            (n_angles·n, k) rays, rows ordered (angle, detector pixel).
        """
        return self._mul(self.A, x)

    def adj_cols(self, y):
        """Aᵀ·y: (n_angles·n, k) rays → (n², k) pixel-major images (the exact transpose).

        Parameters
        ----------
        y : ndarray
            (n_angles·n, k) rays, rows ordered (angle, detector pixel); dtypes as
            :meth:`fwd_cols`.

        Returns
        -------
        ndarray
            (n², k) back-projected images, pixels in C order.
        """
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
        """Sinogram (..., n_angles, n) of images (..., n, n): :meth:`fwd_cols` on the images as
        columns. Forward of the pair :meth:`fwd` / :meth:`adj`.

        Parameters
        ----------
        images : ndarray
            (..., n, n), real or complex (dtypes as :meth:`fwd_cols`).
        """
        lead = images.shape[:-2]
        x = images.reshape((-1, self.n * self.n)).T              # (n², k)
        y = self.fwd_cols(x)                                      # (a·n, k)
        return y.T.reshape(lead + (self.n_angles, self.n))

    def adj(self, sino):
        """Back-projection (..., n, n) of sinograms (..., n_angles, n): the exact transpose.

        Parameters
        ----------
        sino : ndarray
            (..., n_angles, n), real or complex (dtypes as :meth:`fwd_cols`).
        """
        lead = sino.shape[:-2]
        y = sino.reshape((-1, self.n_angles * self.n)).T
        x = self.adj_cols(y)
        return x.T.reshape(lead + (self.n, self.n))
