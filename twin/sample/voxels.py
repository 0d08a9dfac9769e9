"""The phantom base class: labels on a voxel grid with real materials, and their projections.

Grid convention (the tomography geometry of CONTRACTS §5): a phantom has shape
(ny, nz, nx) = (rows along the vertical rotation axis, depth along the beam at 0°, columns
across the beam). Labels index :attr:`Phantom.materials`; label 0 is vacuum.

Phantoms never build their whole volume: :meth:`Phantom.row` makes one (nz, nx) slice at a
time, and projections at any angle are computed row by row, so a 100 µm cylinder at 60 nm
(4.6 × 10⁹ voxels) needs the memory of one slice.

The complex refractive index is n = 1 − δ + iβ; the object transmission along the beam is
O = exp(−ik∫(δ − iβ) dz) = exp(−ik∫δ dz) · exp(−k∫β dz) with k = 2π/λ: a phase shift of
−2πδt/λ and the Beer–Lambert amplitude exp(−μt/2).
"""


from __future__ import annotations

import numpy as np

from twin.core.constants import wavelength_m
from twin.operators.radon import Radon
from twin.sample import materials as _materials


def refractive_indices(names, energy_kev: float) -> np.ndarray:
    """(len(names) + 1,) complex δ + iβ per label; label 0 is vacuum.

    Parameters
    ----------
    names : sequence of str
        Material names of labels 1, 2, …
    energy_kev : float
        Photon energy, keV.

    Returns
    -------
    complex128 array (len(names) + 1,)
        The lookup table from label to δ + iβ.
    """
    out = np.zeros(len(names) + 1, dtype=np.complex128)
    for i, name in enumerate(names, start=1):
        out[i] = medium_index(name, energy_kev)
    return out


def medium_index(name: str, energy_kev: float) -> complex:
    """δ + iβ of a material name, or 0 for "vacuum".

    Parameters
    ----------
    name : str
        A material known to :mod:`twin.sample.materials`, or "vacuum".
    energy_kev : float
        Photon energy, keV.

    Returns
    -------
    complex
        δ + iβ.
    """
    if name.strip().lower() == "vacuum":
        return 0j
    p = _materials.lookup(name, energy_kev)
    return p.delta + 1j * p.beta


def transmission_from_projection(proj_delta_beta, energy_kev: float):
    """O = exp(−ik(P_δ − iP_β)) from a projected ∫(δ + iβ)dz in metres.

    Parameters
    ----------
    proj_delta_beta : complex array_like
        Projected ∫(δ + iβ)dz, metres.
    energy_kev : float
        Photon energy, keV.

    Returns
    -------
    complex64 array shaped like ``proj_delta_beta``
        The object transmission.
    """
    k = 2 * np.pi / float(wavelength_m(energy_kev))
    p = np.asarray(proj_delta_beta)
    return np.exp(-1j * k * p.real - k * p.imag).astype(np.complex64)


class Phantom:
    """Base class: subclasses set :attr:`materials`, :attr:`shape`, :attr:`voxel_size_m` and
    implement :meth:`row`."""

    materials: tuple[str, ...]
    shape: tuple[int, int, int]
    voxel_size_m: float
    #: rows projected together through the Radon matrix (memory ∝ rows × nz × nx)
    ROWS_PER_BATCH = 32

    def row(self, y: int) -> np.ndarray:  # pragma: no cover - abstract
        """(nz, nx) labels of row ``y`` (abstract: subclasses implement it).

        Parameters
        ----------
        y : int
            Row index along the rotation axis, 0 ≤ y < ny.

        Returns
        -------
        numpy.ndarray
            (nz, nx) integer labels indexing :attr:`materials` (0 vacuum).

        Raises
        ------
        NotImplementedError
            In the base class.
        """
        raise NotImplementedError

    def labels(self) -> np.ndarray:
        """The whole (ny, nz, nx) label volume: only for grids that fit in memory."""
        return np.stack([self.row(y) for y in range(self.shape[0])])

    def index_volume(self, energy_kev: float, rows=None) -> np.ndarray:
        """(n_rows, nz, nx) complex δ + iβ of the given rows (default all).

        Parameters
        ----------
        energy_kev : float
            Photon energy, keV.
        rows : iterable of int, optional
            Row indices; all ny rows when None.

        Returns
        -------
        numpy.ndarray
            (n_rows, nz, nx) complex128 δ + iβ (dimensionless).
        """
        lut = refractive_indices(self.materials, energy_kev)
        rows = range(self.shape[0]) if rows is None else rows
        return np.stack([lut[self.row(y)] for y in rows])

    def projection(self, angles_deg, energy_kev: float, rows=None) -> np.ndarray:
        """(n_angles, n_rows, nx) projected ∫(δ + iβ)dz in metres, computed row by row.

        The slice is embedded in a square of side max(nz, nx) for the rotation (CONTRACTS §5
        geometry); the result is cropped back to nx columns. When every angle is a multiple of
        180° the projection is an exact sum over depth voxels (180° flips the columns).

        Parameters
        ----------
        angles_deg : float or array_like
            Rotation angles, degrees.
        energy_kev : float
            Photon energy, keV.
        rows : iterable of int, optional
            Row indices; all rows when None.

        Returns
        -------
        numpy.ndarray
            (n_angles, n_rows, nx) complex128, metres.
        """
        ny, nz, nx = self.shape
        lut = refractive_indices(self.materials, energy_kev)
        rows = list(range(ny)) if rows is None else list(rows)
        angles = np.atleast_1d(np.asarray(angles_deg, dtype=float))
        if np.all(np.mod(angles, 180.0) == 0):
            # along the grid: an exact sum over depth, no interpolation, any nz
            out = np.stack([lut[self.row(y)].sum(axis=0) for y in rows]) * self.voxel_size_m
            return np.stack([out if np.mod(a, 360) == 0 else out[:, ::-1] for a in angles])
        n = max(nz, nx)
        radon = Radon(n, angles)
        out = np.zeros((len(radon.angles_deg), len(rows), nx), dtype=np.complex128)
        z0, x0 = (n - nz) // 2, (n - nx) // 2
        # Only the slice's own pixels of the square are non-zero: the Radon matrix restricted to
        # their columns gives the same sums (a plate nz ≪ nx deep costs nz/n of the square's),
        # applied to batches of rows at once.
        cols = ((np.arange(z0, z0 + nz) * n)[:, None] + np.arange(x0, x0 + nx)[None, :]).ravel()
        A = radon.A.tocsc()[:, cols].tocsr()
        for b, rays in self._rows_through(A, rows, lut):
            rays = rays.reshape(radon.n_angles, n, -1)
            out[:, b:b + rays.shape[2], :] = (np.moveaxis(rays[:, x0:x0 + nx, :], 2, 1)
                                              * self.voxel_size_m)
        return out

    def _rows_through(self, op, rows, lut):
        """Yield ``(start, result)`` over batches of ``rows``: the sparse map ``op``
        ((m, nz·nx)) applied to each row's δ + iβ (``lut`` of its labels), as (m, k) complex
        columns, k ≤ :attr:`ROWS_PER_BATCH`."""
        for b in range(0, len(rows), self.ROWS_PER_BATCH):
            z = np.stack([lut[self.row(y)].ravel() for y in rows[b:b + self.ROWS_PER_BATCH]])
            yield b, (op @ np.ascontiguousarray(z.real.T)
                      + 1j * (op @ np.ascontiguousarray(z.imag.T)))

    def transmission(self, angle_deg: float, energy_kev: float, rows=None) -> np.ndarray:
        """(n_rows, nx) complex64 object transmission at one rotation angle.

        Parameters
        ----------
        angle_deg : float
            Rotation angle, degrees.
        energy_kev : float
            Photon energy, keV.
        rows : iterable of int, optional
            Row indices; all rows when None.

        Returns
        -------
        numpy.ndarray
            (n_rows, nx) complex64 O = exp(−ik(P_δ − iP_β)).
        """
        return transmission_from_projection(
            self.projection([angle_deg], energy_kev, rows)[0], energy_kev)

    def slices(self, n_slices: int, energy_kev: float, rows=None) -> np.ndarray:
        """(n_slices, n_rows, nx) transmissions of thick slabs along the beam at 0° (multislice).

        The nz depth voxels are split into ``n_slices`` contiguous slabs of (rounded) equal size.

        Parameters
        ----------
        n_slices : int
            Number of slabs.
        energy_kev : float
            Photon energy, keV.
        rows : iterable of int, optional
            Row indices; all rows when None.

        Returns
        -------
        numpy.ndarray
            (n_slices, n_rows, nx) complex64 transmission of each slab, front (low z) first.
        """
        idx = self.index_volume(energy_kev, rows)                     # (rows, nz, nx)
        edges = np.linspace(0, idx.shape[1], n_slices + 1).round().astype(int)
        proj = np.stack([idx[:, a:b].sum(axis=1) * self.voxel_size_m
                         for a, b in zip(edges[:-1], edges[1:])])
        return transmission_from_projection(proj, energy_kev)



def _overlap(a, b, e0, e1):
    """Length of the overlap of intervals [a, b] (arrays) with [e0, e1]."""
    return np.clip(np.minimum(b, e1) - np.maximum(a, e0), 0, None)
