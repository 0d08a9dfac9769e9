"""A plate-shaped integrated circuit (seed 002): :class:`IntegratedCircuit`, layers of wiring
and vias along the beam on a substrate."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from twin.sample.voxels import Phantom, refractive_indices


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
        voxels, at other angles each row's slice rotated (linear interpolation) first.

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
        from scipy import ndimage

        ny, nz, nx = self.shape
        lut = refractive_indices(self.materials, energy_kev)
        dz = self.voxel_size_m
        n = max(nz, nx)
        z = (np.arange(n) - n // 2 + 0.5 * (1 - n % 2)) * dz       # depth of each row of sq
        e = np.asarray(edges_m, dtype=float)
        which = np.clip(np.searchsorted(e, z, side="right") - 1, -1, len(e) - 1)
        which[(z < e[0]) | (z >= e[-1])] = -1
        out = np.zeros((len(e) - 1, ny, nx), np.complex128)
        z0, x0 = (n - nz) // 2, (n - nx) // 2
        a = float(np.mod(angle_deg, 360.0))
        sq = np.zeros((n, n), np.complex128)
        for y in range(ny):
            sq[z0:z0 + nz, x0:x0 + nx] = lut[self.row(y)]
            if a in (0.0, 180.0):
                r = sq if a == 0 else sq[::-1, ::-1]
            else:
                # the sense of rotation of twin.operators.radon (CONTRACTS §5)
                r = (ndimage.rotate(sq.real, -a, reshape=False, order=1)
                     + 1j * ndimage.rotate(sq.imag, -a, reshape=False, order=1))
            for l in range(len(e) - 1):
                rows = which == l
                if rows.any():
                    out[l, y] = r[rows, x0:x0 + nx].sum(axis=0) * dz
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
