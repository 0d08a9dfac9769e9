"""A plate-shaped integrated circuit (seed 002): :class:`IntegratedCircuit`, layers of wiring
and vias along the beam on a substrate."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from twin.sample.voxels import Phantom, refractive_indices


def rotated_slab_sums(n: int, block: tuple[int, int, int, int], angle_deg: float,
                      slab_of_row: np.ndarray, n_slabs: int):
    """The linear map from one (nz, nx) slice of the sample to its slabs' sums after rotation:
    a sparse (n_slabs·nx, nz·nx) matrix.

    The slice sits at rows z0…z0+nz, columns x0…x0+nx of an n × n square of zeros; the square
    is rotated by ``angle_deg`` about its centre ((n − 1)/2, (n − 1)/2) with bilinear
    interpolation and zero outside (exactly ``scipy.ndimage.rotate(sq, -angle_deg,
    reshape=False, order=1)``, the sense of :mod:`twin.operators.radon`); then rows i with
    ``slab_of_row[i] = l ≥ 0`` are summed into slab l, over columns x0…x0+nx. Built once per
    angle, it replaces two ``ndimage.rotate`` calls of the n × n square per row (the 21-angle
    IC's tilted projections took minutes each).

    Parameters
    ----------
    n : int
        Side of the square.
    block : (int, int, int, int)
        (z0, x0, nz, nx): where the slice sits in the square, and its shape.
    angle_deg : float
        Rotation, degrees.
    slab_of_row : (n,) int ndarray
        Slab of each row of the rotated square; −1: none.
    n_slabs : int

    Returns
    -------
    scipy.sparse.csr_matrix
        float64, duplicates summed; apply it to a slice flattened in C order.
    """
    from scipy import sparse, special

    z0, x0, nz, nx = block
    c, s = special.cosdg(-angle_deg), special.sindg(-angle_deg)
    ctr = (n - 1) / 2
    i = np.flatnonzero(slab_of_row >= 0)[:, None].astype(float)
    j = np.arange(x0, x0 + nx)[None, :].astype(float)
    u = c * (i - ctr) + s * (j - ctr) + ctr              # input row of each output pixel
    v = -s * (i - ctr) + c * (j - ctr) + ctr             # input column
    out_row = (slab_of_row[i[:, 0].astype(int)][:, None] * nx + (j - x0)).astype(np.int64)
    inside = (u >= 0) & (u <= n - 1) & (v >= 0) & (v <= n - 1)
    u0, v0 = np.floor(u).astype(np.int64), np.floor(v).astype(np.int64)
    fu, fv = u - u0, v - v0
    rows, cols, weights = [], [], []
    for du, dv, w in ((0, 0, (1 - fu) * (1 - fv)), (1, 0, fu * (1 - fv)),
                      (0, 1, (1 - fu) * fv), (1, 1, fu * fv)):
        uu, vv = u0 + du - z0, v0 + dv - x0              # in the slice's own indices
        keep = inside & (uu >= 0) & (uu < nz) & (vv >= 0) & (vv < nx) & (w != 0)
        rows.append(out_row[keep])
        cols.append(uu[keep] * nx + vv[keep])
        weights.append(w[keep])
    return sparse.csr_matrix((np.concatenate(weights), (np.concatenate(rows),
                                                        np.concatenate(cols))),
                             shape=(n_slabs * nx, nz * nx))


@dataclass
class IntegratedCircuit(Phantom):
    """A plate-shaped integrated circuit: a stack of layers along the beam at 0° (seed 002).

    Layers alternate between wiring (Cu lines running along x or along y, alternately, with a
    pitch that grows from the first to the last layer and random breaks) and via layers
    (W plugs on a grid), embedded in SiO2 and carried on a Si substrate. Labels: 1 dielectric,
    2 wire, 3 via, 4 substrate. The plate is ``thickness_m`` deep, centred in nz.
    """

    shape: tuple[int, int, int]
    voxel_size_m: float
    thickness_m: float
    n_layers: int = 13
    seed: int = 0
    min_pitch_m: float = 64e-9
    max_pitch_m: float = 1000e-9
    substrate_thickness_m: float = 0.5e-6
    dielectric_material: str = "sio2"
    wire_material: str = "cu"
    via_material: str = "w"
    substrate_material: str = "si"
    origin_m: tuple[float, float] = (0.0, 0.0)
    """(y, x) of the grid's centre pixel in the circuit's own frame: a window on a larger die."""

    def __post_init__(self):
        self.materials = (self.dielectric_material, self.wire_material, self.via_material,
                          self.substrate_material)
        rng = np.random.default_rng(self.seed)
        stack = self.thickness_m - self.substrate_thickness_m
        w = rng.uniform(0.6, 1.4, self.n_layers)
        self.layer_thickness_m = stack * w / w.sum()
        self.pitch_m = np.geomspace(self.min_pitch_m, self.max_pitch_m, self.n_layers)
        self.is_via = np.arange(self.n_layers) % 2 == 1
        self.along_x = (np.arange(self.n_layers) // 2) % 2 == 0
        self._seeds = rng.integers(0, 2 ** 31, self.n_layers)
        ny, nz, nx = self.shape
        dz = self.voxel_size_m
        z_front = nz // 2 - int(round(self.thickness_m / 2 / dz))
        edges = z_front + np.concatenate([[0], np.cumsum(self.layer_thickness_m)]) / dz
        self._layer_of_z = np.full(nz, -1)
        for l in range(self.n_layers):
            self._layer_of_z[int(round(edges[l])):int(round(edges[l + 1]))] = l
        self._substrate = np.zeros(nz, bool)
        sub_end = int(round(edges[-1] + self.substrate_thickness_m / dz))
        self._substrate[int(round(edges[-1])):sub_end] = True

    def _pattern(self, l: int, y: int) -> np.ndarray:
        """(nx,) bool: metal in layer l at row y."""
        ny, _, nx = self.shape
        p = self.pitch_m[l]
        x = (np.arange(nx) - nx // 2) * self.voxel_size_m + self.origin_m[1]
        h = (y - ny // 2) * self.voxel_size_m + self.origin_m[0]
        rng = np.random.default_rng([int(self._seeds[l])])
        if self.is_via[l]:
            # vias: square plugs of side p/2 on a 2p grid, half of the sites filled
            gx = np.floor(x / (2 * p)).astype(int)
            gy = int(math.floor(h / (2 * p)))
            inx = np.mod(x, 2 * p) < p / 2
            iny = math.fmod(h, 2 * p) % (2 * p) < p / 2
            filled = (np.bitwise_xor(gx * 73856093, gy * 19349663 + int(self._seeds[l]))
                      % 2 == 0)
            return inx & iny & filled
        # wires of width p/2; a break every few pitches, positions from the layer's seed
        breaks = rng.uniform(4, 20, 64) * p
        if self.along_x[l]:
            on_line = math.fmod(h, p) % p < p / 2
            line = int(math.floor(h / p))
            period = breaks[line % 64]
            return on_line & (np.mod(x + line * 0.37 * p, period) > p)
        on = np.mod(x, p) < p / 2
        line = np.floor(x / p).astype(int)
        period = breaks[line % 64]
        return on & (np.mod(h + line * 0.37 * p, period) > p)

    def projection_slabs(self, angle_deg: float, energy_kev: float, edges_m) -> np.ndarray:
        """(L, ny, nx) projected ∫(δ + iβ)dz of the slabs between ``edges_m`` along the beam
        (metres from the grid's centre), row by row: at 0° and 180° exact sums over depth
        voxels, at other angles each row's slice rotated (linear interpolation, as
        ``scipy.ndimage.rotate(order=1, reshape=False)``) first, by one sparse operator that
        rotates and sums (:func:`rotated_slab_sums`) applied to batches of rows.

        Parameters
        ----------
        angle_deg : float
            Rotation angle, degrees (the sense of :mod:`twin.operators.radon`, CONTRACTS §5).
        energy_kev : float
            Photon energy, keV.
        edges_m : array_like (L + 1,)
            Increasing slab boundaries along the beam, metres from the grid's centre; depth rows
            outside [edges_m[0], edges_m[-1]) count in no slab.

        Returns
        -------
        numpy.ndarray
            (L, ny, nx) complex128 projected δ + iβ of each slab, metres.
        """
        ny, nz, nx = self.shape
        lut = refractive_indices(self.materials, energy_kev)
        dz = self.voxel_size_m
        n = max(nz, nx)
        z = (np.arange(n) - n // 2 + 0.5 * (1 - n % 2)) * dz       # depth of each row of sq
        e = np.asarray(edges_m, dtype=float)
        which = np.clip(np.searchsorted(e, z, side="right") - 1, -1, len(e) - 1)
        which[(z < e[0]) | (z >= e[-1])] = -1
        n_slabs = len(e) - 1
        out = np.zeros((n_slabs, ny, nx), np.complex128)
        z0, x0 = (n - nz) // 2, (n - nx) // 2
        a = float(np.mod(angle_deg, 360.0))
        if a in (0.0, 180.0):
            sq = np.zeros((n, n), np.complex128)
            for y in range(ny):
                sq[z0:z0 + nz, x0:x0 + nx] = lut[self.row(y)]
                r = sq if a == 0 else sq[::-1, ::-1]
                for l in range(n_slabs):
                    rows = which == l
                    if rows.any():
                        out[l, y] = r[rows, x0:x0 + nx].sum(axis=0) * dz
            return out
        op = rotated_slab_sums(n, (z0, x0, nz, nx), a, which, n_slabs) * dz
        for y0, sums in self._rows_through(op, range(ny), lut):           # (L·nx, K)
            out[:, y0:y0 + sums.shape[1]] = sums.reshape(n_slabs, nx, -1).transpose(0, 2, 1)
        return out

    def row(self, y: int) -> np.ndarray:
        """(nz, nx) uint8 labels of row ``y``: 0 vacuum, 1 dielectric, 2 wire, 3 via, 4 substrate.

        Parameters
        ----------
        y : int
            Row index along the rotation axis, 0 ≤ y < ny.

        Returns
        -------
        numpy.ndarray
            (nz, nx) uint8 label slice (depth along the beam at 0°, columns).
        """
        _, nz, nx = self.shape
        lab = np.zeros((nz, nx), np.uint8)
        for l in range(self.n_layers):
            zs = self._layer_of_z == l
            if not zs.any():
                continue
            metal = self._pattern(l, y)
            lab[zs] = np.where(metal, 3 if self.is_via[l] else 2, 1)[None, :]
        lab[self._substrate] = 4
        return lab
