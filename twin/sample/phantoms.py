"""Phantoms on a voxel grid with real materials.

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

import math
from dataclasses import dataclass

import numpy as np

from twin.sample import materials as _materials
from twin.sample.star import siemens_star_thickness  # noqa: F401  (the star's home: star.py)
from twin.core.constants import wavelength_m
from twin.operators.radon import Radon


def refractive_indices(names, energy_kev: float) -> np.ndarray:
    """(len(names) + 1,) complex δ + iβ per label; label 0 is vacuum."""
    out = np.zeros(len(names) + 1, dtype=np.complex128)
    for i, name in enumerate(names, start=1):
        out[i] = medium_index(name, energy_kev)
    return out


def medium_index(name: str, energy_kev: float) -> complex:
    """δ + iβ of a material name, or 0 for "vacuum"."""
    if name.strip().lower() == "vacuum":
        return 0j
    p = _materials.lookup(name, energy_kev)
    return p.delta + 1j * p.beta


def transmission_from_projection(proj_delta_beta, energy_kev: float):
    """O = exp(−ik(P_δ − iP_β)) from a projected ∫(δ + iβ)dz in metres."""
    k = 2 * np.pi / float(wavelength_m(energy_kev))
    p = np.asarray(proj_delta_beta)
    return np.exp(-1j * k * p.real - k * p.imag).astype(np.complex64)


class Phantom:
    """Base class: subclasses set :attr:`materials`, :attr:`shape`, :attr:`voxel_size_m` and
    implement :meth:`row`."""

    materials: tuple[str, ...]
    shape: tuple[int, int, int]
    voxel_size_m: float

    def row(self, y: int) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def labels(self) -> np.ndarray:
        """The whole (ny, nz, nx) label volume: only for grids that fit in memory."""
        return np.stack([self.row(y) for y in range(self.shape[0])])

    def index_volume(self, energy_kev: float, rows=None) -> np.ndarray:
        """(n_rows, nz, nx) complex δ + iβ of the given rows (default all)."""
        lut = refractive_indices(self.materials, energy_kev)
        rows = range(self.shape[0]) if rows is None else rows
        return np.stack([lut[self.row(y)] for y in rows])

    def projection(self, angles_deg, energy_kev: float, rows=None) -> np.ndarray:
        """(n_angles, n_rows, nx) projected ∫(δ + iβ)dz in metres, computed row by row.

        The slice is embedded in a square of side max(nz, nx) for the rotation (CONTRACTS §5
        geometry); the result is cropped back to nx columns.
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
        sq = np.zeros((n, n), dtype=np.complex128)
        for i, y in enumerate(rows):
            sq[z0:z0 + nz, x0:x0 + nx] = lut[self.row(y)]
            out[:, i, :] = radon.fwd(sq)[:, x0:x0 + nx] * self.voxel_size_m
        return out

    def transmission(self, angle_deg: float, energy_kev: float, rows=None) -> np.ndarray:
        """(n_rows, nx) complex64 object transmission at one rotation angle."""
        return transmission_from_projection(
            self.projection([angle_deg], energy_kev, rows)[0], energy_kev)

    def slices(self, n_slices: int, energy_kev: float, rows=None) -> np.ndarray:
        """(n_slices, n_rows, nx) transmissions of thick slabs along the beam at 0° (multislice)."""
        idx = self.index_volume(energy_kev, rows)                     # (rows, nz, nx)
        edges = np.linspace(0, idx.shape[1], n_slices + 1).round().astype(int)
        proj = np.stack([idx[:, a:b].sum(axis=1) * self.voxel_size_m
                         for a, b in zip(edges[:-1], edges[1:])])
        return transmission_from_projection(proj, energy_kev)


# ----------------------------------------------------------------------------- uniform


@dataclass
class UniformCylinder(Phantom):
    """A homogeneous cylinder (or slab) of one material: the closed-form reference."""

    material: str
    radius_m: float
    shape: tuple[int, int, int]
    voxel_size_m: float

    def __post_init__(self):
        self.materials = (self.material,)

    def row(self, y: int) -> np.ndarray:
        _, nz, nx = self.shape
        z = (np.arange(nz) - nz // 2)[:, None] * self.voxel_size_m
        x = (np.arange(nx) - nx // 2)[None, :] * self.voxel_size_m
        return (x ** 2 + z ** 2 <= self.radius_m ** 2).astype(np.uint8)


# ----------------------------------------------------------------------------- fibres


@dataclass
class FibreBundle(Phantom):
    """Axon-mimicking hollow fibres in a quasi-cylindrical sample (seed 000 §2.1).

    Hollow PCL fibres of random outer/inner diameter run along the vertical axis with a random
    tilt (orientation dispersion), packed without overlap (random sequential addition) in a
    cylinder of ``sample_diameter_m`` filled with the matrix material. Labels: 1 matrix,
    2 fibre wall, 3 lumen (matrix material too, kept apart for segmentation).

    Placement is local, so that a small window of a huge sample (a 16-point patch of a 1 mm
    bundle) costs only the fibres near it. The cross-section (x, z) is cut into square cells
    of side ``cell_m`` (at least the largest fibre diameter); each cell draws its candidates
    from its own random stream (seeded by ``seed`` and the cell's indices) and adds them by
    random sequential addition until the outer discs cover ``packing_fraction`` of the cell's
    area inside the sample (the part of each disc inside the cell, from the x and z
    overlaps). Cells are filled in four
    colours (checkerboard of period 2 in both directions): a cell checks overlap only against
    its own fibres and those of its 8 neighbours of lower colour, so a cell depends on at most
    a 7 × 7 block of cells, and a given fibre is the same whatever window asked for it.
    Outer radii are clipped to 5 sd above the mean and tilts to 5 sd, which bounds how far a
    fibre reaches (probability < 10⁻⁶ per fibre of a clip).

    Each fibre's size is drawn once and positions are drawn until it fits, so the placed
    diameters follow the requested law (rejecting whole candidates, as before, left the fibres
    ~1.1 µm thinner on average at 0.5 packing). Measured on a 600 µm bundle at 0.5: coverage 0.50, 0.51 within
    ~4 µm of a cell edge against 0.50 inside; the outer-diameter sd comes out ~6 % below the
    requested one (a large fibre that finds no room is dropped, at most 3 per cell).
    """

    shape: tuple[int, int, int]
    voxel_size_m: float
    sample_diameter_m: float
    seed: int = 0
    fibre_material: str = "polycaprolactone"
    matrix_material: str = "water"
    outer_diameter_m: tuple[float, float] = (6e-6, 1.5e-6)
    inner_diameter_m: tuple[float, float] = (3e-6, 1e-6)
    dispersion_deg: float = 10.0
    packing_fraction: float = 0.5
    cell_m: float | None = None
    """Side of the placement cells, metres (default 4.5 × the largest outer diameter)."""

    _BATCH = 256                # positions drawn at once for a fibre
    _POSITION_BATCHES = 32      # batches a fibre may try before it is dropped
    _MISSES = 3                 # fibres dropped before a cell counts as full

    def __post_init__(self):
        self.materials = (self.matrix_material, self.fibre_material, self.matrix_material)
        mo, so = self.outer_diameter_m
        self._ro_max = max((mo + 5 * abs(so)) / 2, 2 * self.voxel_size_m)
        self._tilt_max = math.radians(5 * abs(self.dispersion_deg) / 2)
        c = self.cell_m if self.cell_m is not None else 9 * self._ro_max
        self._cell = max(float(c), 2 * self._ro_max)
        R = self.sample_diameter_m / 2
        self._i_range = (math.floor(-R / self._cell), math.floor(R / self._cell))
        self._cells: dict = {}
        self._all = None

    # -- placement --------------------------------------------------------------------------

    def _cell_area(self, i: int, j: int) -> float:
        """Area of cell (i, j) inside the sample's disc, m² (midpoint rule over x)."""
        c, R = self._cell, self.sample_diameter_m / 2
        x = i * c + (np.arange(256) + 0.5) * c / 256
        h = np.sqrt(np.clip(R * R - x * x, 0, None))
        z0, z1 = j * c, (j + 1) * c
        return float(np.sum(np.clip(np.minimum(z1, h) - np.maximum(z0, -h), 0, None)) * c / 256)

    def _cell_fibres(self, i: int, j: int) -> np.ndarray:
        """(k, 6) fibres (x, z, r_out, r_in, tan tilt_x, tan tilt_z) with centres in cell
        (i, j), memoised."""
        key = (i, j)
        if key in self._cells:
            return self._cells[key]
        lo, hi = self._i_range
        area_cell = self._cell_area(i, j) if lo <= i <= hi and lo <= j <= hi else 0.0
        if area_cell <= 0:
            self._cells[key] = out = np.zeros((0, 6))
            return out
        old = self._earlier_neighbours(i, j)
        rng = np.random.default_rng([0xF1B3E, int(self.seed) % 2 ** 63,
                                     i % 2 ** 32, j % 2 ** 32])
        c = self._cell
        target = self.packing_fraction * area_cell
        # the area covered inside this cell: what earlier neighbours put in, then its own
        # fibres' part in it (what they put into neighbours is not counted)
        area = float(np.sum(math.pi * old[:, 2] ** 2 * _disc_share(old, [(i, j)], c)))
        placed, misses = [], 0
        ox, oz, orr = list(old[:, 0]), list(old[:, 1]), list(old[:, 2])
        while area < target:
            # each fibre's size and tilt are drawn once, then positions until one fits: the
            # placed fibres keep the requested size distribution (rejecting a size at each
            # position would favour thin fibres); after a few fibres found no room the cell
            # counts as full
            ro, ri, tilt = self._draw_fibre(rng)
            spot = self._find_spot(rng, i, j, ro, (np.array(ox), np.array(oz), np.array(orr)))
            if spot is None:
                misses += 1
                if misses >= self._MISSES:
                    break
                continue
            placed.append((spot[0], spot[1], ro, ri,
                           math.tan(tilt[0]), math.tan(tilt[1])))
            ox.append(spot[0])
            oz.append(spot[1])
            orr.append(ro)
            area += math.pi * ro ** 2 * _disc_share(np.array([[spot[0], spot[1], ro]]),
                                                    [(i, j)], c)[0]
        self._cells[key] = out = np.array(placed, dtype=float).reshape(-1, 6)
        return out

    def _earlier_neighbours(self, i: int, j: int) -> np.ndarray:
        """(k, 6) fibres of the 8 neighbours of cell (i, j) whose colour (checkerboard of
        period 2: i mod 2 + 2·(j mod 2)) is lower than its own: those placed before it."""
        colour = i % 2 + 2 * (j % 2)
        old = [self._cell_fibres(i + di, j + dj)
               for di in (-1, 0, 1) for dj in (-1, 0, 1)
               if (di or dj) and (i + di) % 2 + 2 * ((j + dj) % 2) < colour]
        return np.concatenate(old) if old else np.zeros((0, 6))

    def _draw_fibre(self, rng: np.random.Generator) -> tuple[float, float, np.ndarray]:
        """One fibre's outer and inner radius (metres) and its tilts (x, z; radians), drawn
        from the requested laws, clipped (outer radius to [2 voxels, 5 sd above the mean],
        inner to 0.8 × the outer, tilts to 5 sd)."""
        mo, so = self.outer_diameter_m
        mi, si = self.inner_diameter_m
        ro = float(np.clip(rng.normal(mo, so) / 2, 2 * self.voxel_size_m, self._ro_max))
        ri = float(np.clip(rng.normal(mi, si) / 2, 0.0, 0.8 * ro))
        tilt = np.clip(rng.normal(0.0, 1.0, 2), -5, 5) * math.radians(self.dispersion_deg / 2)
        return ro, ri, tilt

    def _find_spot(self, rng: np.random.Generator, i: int, j: int, ro: float,
                   others: tuple[np.ndarray, np.ndarray, np.ndarray]
                   ) -> tuple[float, float] | None:
        """A centre in cell (i, j) for a fibre of outer radius ``ro`` inside the sample and
        clear of ``others``.

        Parameters
        ----------
        rng : numpy.random.Generator
            The cell's stream.
        i, j : int
            The cell.
        ro : float
            Outer radius, metres.
        others : (x, z, r_out) arrays
            Centres and outer radii (metres) of the fibres already placed around it.

        Returns
        -------
        (x, z) in metres, or None
            The first candidate that fits, of up to ``_POSITION_BATCHES`` batches of
            ``_BATCH`` uniform positions; None when none fits.
        """
        c, R, B = self._cell, self.sample_diameter_m / 2, self._BATCH
        ax, az, ar = others
        for _ in range(self._POSITION_BATCHES):
            x = (i + rng.uniform(size=B)) * c
            z = (j + rng.uniform(size=B)) * c
            ok = np.hypot(x, z) <= R - ro
            if len(ax):
                d2 = (x[:, None] - ax) ** 2 + (z[:, None] - az) ** 2
                ok &= np.all(d2 >= (ro + ar) ** 2, axis=1)
            if ok.any():
                k = int(np.argmax(ok))
                return float(x[k]), float(z[k])
        return None

    @property
    def fibres(self) -> np.ndarray:
        """(n, 6) all fibres of the sample: x, z of the centre at height 0 (metres), outer and
        inner radius (metres), tan of the tilt along x and along z; ordered by cell."""
        if self._all is None:
            lo, hi = self._i_range
            self._all = np.concatenate(
                [self._cell_fibres(i, j) for i in range(lo, hi + 1)
                 for j in range(lo, hi + 1)] + [np.zeros((0, 6))])
        return self._all

    def fibres_near(self, s_lo_m: float, s_hi_m: float, angle_deg: float,
                    height_m: float = 0.0) -> np.ndarray:
        """(k, 6) fibres (as :attr:`fibres`) of the cells that rays at detector coordinates
        [``s_lo_m``, ``s_hi_m``] (metres from the axis) at ``angle_deg`` can meet at heights
        |y| ≤ ``height_m``: a superset of the fibres those rays cross, the same fibres
        :attr:`fibres` holds there."""
        lo, hi = self._i_range
        c = self._cell
        th = math.radians(angle_deg)
        ct, st = math.cos(th), math.sin(th)
        m = self._ro_max + abs(height_m) * math.tan(self._tilt_max) * (abs(ct) + abs(st))
        idx = np.arange(lo, hi + 1)
        ii, jj = np.meshgrid(idx, idx, indexing="ij")
        corners = [((ii + a) * c) * ct - ((jj + b) * c) * st for a in (0, 1) for b in (0, 1)]
        smin, smax = np.minimum.reduce(corners), np.maximum.reduce(corners)
        hit = (smax >= s_lo_m - m) & (smin <= s_hi_m + m)
        parts = [self._cell_fibres(int(i), int(j)) for i, j in zip(ii[hit], jj[hit])]
        return np.concatenate(parts + [np.zeros((0, 6))])

    def projection_analytic(self, y_m, s_m, angle_deg: float, energy_kev: float) -> np.ndarray:
        """(len(y_m), len(s_m)) projected ∫(δ + iβ)dz in metres, from chord lengths.

        ``y_m``: heights, ``s_m``: detector coordinates (metres from the rotation axis). Needs
        no voxel grid at all: the way to project a 100 µm sample at 60 nm.
        """
        lut = refractive_indices(self.materials, energy_kev)
        n_mat, n_fib = lut[1], lut[2]
        th = np.deg2rad(angle_deg)
        s = np.asarray(s_m, dtype=float)[None, :]

        def chord(r, d):
            return 2 * np.sqrt(np.clip(r * r - d * d, 0, None))

        base = chord(self.sample_diameter_m / 2, s[0]) * n_mat
        hy = float(np.max(np.abs(y_m))) if np.size(y_m) else 0.0
        f = self.fibres_near(float(s.min()), float(s.max()), angle_deg, hy)
        out = np.empty((len(y_m), s.shape[1]), dtype=np.complex128)
        for i, h in enumerate(np.asarray(y_m, dtype=float)):
            cx, cz = f[:, 0] + h * f[:, 4], f[:, 1] + h * f[:, 5]
            d = s - (cx * np.cos(th) - cz * np.sin(th))[:, None]
            wall = chord(f[:, 2:3], d) - chord(f[:, 3:4], d)
            out[i] = base + (n_fib - n_mat) * wall.sum(axis=0)
        return out

    def projection_slabs(self, y_m, s_m, angle_deg: float, energy_kev: float,
                         edges_m) -> np.ndarray:
        """(L, len(y_m), len(s_m)) projected ∫(δ + iβ)dz of the slabs between ``edges_m``
        (L + 1 depths along the beam, metres from the axis), from chord intervals: the slabs
        sum to :meth:`projection_analytic` where they span the sample."""
        lut = refractive_indices(self.materials, energy_kev)
        n_mat, n_fib = lut[1], lut[2]
        th = np.deg2rad(angle_deg)
        s = np.asarray(s_m, dtype=float)
        e = np.asarray(edges_m, dtype=float)
        e0, e1 = e[:-1, None, None], e[1:, None, None]           # (L, 1, 1)

        def seg(r, d):
            return np.sqrt(np.clip(r * r - d * d, 0, None))

        R = self.sample_diameter_m / 2
        cb = seg(R, s)[None, None, :]
        base = _overlap(-cb, cb, e0, e1)[:, 0] * n_mat               # (L, ns)
        hy = float(np.max(np.abs(y_m))) if np.size(y_m) else 0.0
        f = self.fibres_near(float(s.min()), float(s.max()), angle_deg, hy)
        out = np.empty((len(e) - 1, len(y_m), len(s)), dtype=np.complex128)
        lo, hi = s.min(), s.max()
        n_slabs, ns = len(e) - 1, len(s)
        for i, h in enumerate(np.asarray(y_m, dtype=float)):
            cx, cz = f[:, 0] + h * f[:, 4], f[:, 1] + h * f[:, 5]
            sc = cx * np.cos(th) - cz * np.sin(th)
            tc = cx * np.sin(th) + cz * np.cos(th)
            near = (sc + f[:, 2] >= lo) & (sc - f[:, 2] <= hi)      # fibres that the rays see
            d = s[None, :] - sc[near, None]
            ro, ri = seg(f[near, 2:3], d), seg(f[near, 3:4], d)      # (n_fib, ns) half-chords
            t0, rf = tc[near], f[near, 2]
            # a fibre whose whole disc lies in one slab puts its whole wall chord there; only
            # those that straddle a slab edge need the interval overlaps
            k0 = np.searchsorted(e, t0 - rf, side="right") - 1
            k1 = np.searchsorted(e, t0 + rf, side="right") - 1
            one = (k0 == k1) & (k0 >= 0) & (k0 < n_slabs)
            wall = np.bincount(
                (k0[one, None] * ns + np.arange(ns)[None, :]).ravel(),
                weights=(2 * (ro[one] - ri[one])).ravel(), minlength=n_slabs * ns
            ).reshape(n_slabs, ns).astype(np.float64)
            if not one.all():
                t1 = t0[~one, None]
                r1, q1 = ro[~one], ri[~one]
                ka = np.clip(k0[~one], 0, n_slabs - 1)
                kb = np.clip(k1[~one], 0, n_slabs - 1)
                for o in range(int(np.max(kb - ka)) + 1):    # the slabs each one spans
                    k = np.minimum(ka + o, kb)
                    a0, a1 = e[k, None], e[k + 1, None]
                    w = _overlap(t1 - r1, t1 + r1, a0, a1) - _overlap(t1 - q1, t1 + q1, a0, a1)
                    w[ka + o > kb] = 0.0
                    wall = wall + np.bincount(
                        (k[:, None] * ns + np.arange(ns)[None, :]).ravel(),
                        weights=w.ravel(), minlength=n_slabs * ns).reshape(n_slabs, ns)
            out[:, i] = base + (n_fib - n_mat) * wall
        return out

    @property
    def achieved_packing_fraction(self) -> float:
        R = self.sample_diameter_m / 2
        return float(np.sum(self.fibres[:, 2] ** 2) / R ** 2)

    def row(self, y: int) -> np.ndarray:
        ny, nz, nx = self.shape
        h = (y - ny // 2) * self.voxel_size_m
        z = (np.arange(nz) - nz // 2)[:, None] * self.voxel_size_m
        x = (np.arange(nx) - nx // 2)[None, :] * self.voxel_size_m
        lab = np.zeros((nz, nx), np.uint8)
        inside = x ** 2 + z ** 2 <= (self.sample_diameter_m / 2) ** 2
        lab[inside] = 1
        for fx, fz, ro, ri, tx, tz in self.fibres:
            cx, cz = fx + h * tx, fz + h * tz
            # bounding box first: only a few voxels per fibre are touched
            i0 = max(0, int((cz - ro) / self.voxel_size_m) + nz // 2 - 1)
            i1 = min(nz, int((cz + ro) / self.voxel_size_m) + nz // 2 + 2)
            j0 = max(0, int((cx - ro) / self.voxel_size_m) + nx // 2 - 1)
            j1 = min(nx, int((cx + ro) / self.voxel_size_m) + nx // 2 + 2)
            if i0 >= i1 or j0 >= j1:
                continue
            d2 = (x[:, j0:j1] - cx) ** 2 + (z[i0:i1] - cz) ** 2
            sub = lab[i0:i1, j0:j1]
            sub[(d2 <= ro * ro) & inside[i0:i1, j0:j1]] = 2
            sub[(d2 <= ri * ri) & inside[i0:i1, j0:j1]] = 3
        return lab


# ----------------------------------------------------------------------------- IC


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
        voxels, at other angles each row's slice rotated (linear interpolation) first."""
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


# ----------------------------------------------------------------------------- star


def siemens_star_transmission(shape, pixel_size_m: float, energy_kev: float, spokes: int = 36,
                              radius_m: float | None = None, spoke_material: str = "ta",
                              spoke_thickness_m: float = 0.5e-6,
                              membrane_material: str = "si3n4",
                              membrane_thickness_m: float = 1e-6,
                              centre_px: tuple[float, float] | None = None) -> np.ndarray:
    """(ny, nx) complex64 transmission of a Siemens star on a membrane (a thin 2D object)."""
    if radius_m is None:
        radius_m = 0.45 * min(shape) * pixel_size_m
    t = siemens_star_thickness(shape, pixel_size_m, spokes, radius_m, spoke_thickness_m,
                               centre_px=centre_px)
    s = _materials.lookup(spoke_material, energy_kev)
    m = _materials.lookup(membrane_material, energy_kev)
    proj = (s.delta + 1j * s.beta) * t + (m.delta + 1j * m.beta) * membrane_thickness_m
    return transmission_from_projection(proj, energy_kev)


# ----------------------------------------------------------------------------- registry
#
# Each phantom registers one builder, in the manner of Ptychodus's plugins: adding a phantom
# means writing its builder below (and its config section in the scenario) — nothing else.
# A builder receives the scenario's [sample] table (duck-typed: its own sub-table, in the
# scenario's units), the sample's outer extent in metres and the grid to evaluate on, and
# returns the projected ∫(δ + iβ)dz (metres) of each slab along the beam.


@dataclass(frozen=True)
class Extent:
    """The sample's outer shape in metres: ``shape`` "cylinder" (width = depth = diameter) or
    "box"; width along x, depth along the beam at 0°, height along y (the rotation axis)."""

    shape: str
    width_m: float
    depth_m: float
    height_m: float

    def path_m(self, angle_deg: float) -> float:
        """Longest path through the sample along the beam at ``angle_deg``."""
        if self.shape == "cylinder":
            return self.width_m
        th = math.radians(angle_deg)
        return abs(self.width_m * math.sin(th)) + abs(self.depth_m * math.cos(th))


@dataclass(frozen=True)
class Grid:
    """Where a phantom is evaluated.

    Attributes
    ----------
    y_m, x_m : 1D float arrays
        Pixel centres (rows, columns), metres from the scan centre (on the rotation axis).
    pixel_m : float
        Pixel size, metres (``x_m``, ``y_m`` are spaced by it).
    energy_kev : float
    angle_deg : float
        Rotation of the sample about the vertical axis.
    n_slices : int
        Slabs of equal thickness along the beam, spanning the longest path
        (:meth:`Extent.path_m`) centred on the rotation axis.
    seed : int
        The scenario's seed (random phantoms).
    """

    y_m: np.ndarray
    x_m: np.ndarray
    pixel_m: float
    energy_kev: float
    angle_deg: float = 0.0
    n_slices: int = 1
    seed: int = 0

    def slab_edges_m(self, extent: Extent) -> np.ndarray:
        """(n_slices + 1,) slab boundaries along the beam, metres from the rotation axis."""
        half = 0.5 * extent.path_m(self.angle_deg) * (1 + 1e-9) + 1e-12
        return np.linspace(-half, half, self.n_slices + 1)


_BUILDERS: dict = {}


def register(name: str):
    """Decorator: register ``builder(sample_cfg, extent, grid) -> (n_slices, H, W)`` as the
    phantom ``name``."""
    def deco(fn):
        if name in _BUILDERS:
            raise ValueError(f"phantom {name!r} is registered twice")
        _BUILDERS[name] = fn
        return fn
    return deco


def registered() -> list[str]:
    """Names of the registered phantoms."""
    return sorted(_BUILDERS)


def projected_slabs(name: str, sample_cfg, extent: Extent, grid: Grid) -> np.ndarray:
    """(n_slices, len(y), len(x)) complex128 projected ∫(δ + iβ)dz of each slab, metres.

    Raises :class:`~twin.core.errors.TwinInputError` for an unknown phantom.
    """
    from twin.core.errors import TwinInputError

    if name not in _BUILDERS:
        raise TwinInputError("sample.phantom", name, f"allowed: {registered()}")
    out = np.asarray(_BUILDERS[name](sample_cfg, extent, grid), dtype=np.complex128)
    return out.reshape(grid.n_slices, len(grid.y_m), len(grid.x_m))


def _disc_share(f, cells, c: float) -> np.ndarray:
    """(len(f),) fraction of the discs (x, z, r) = f[:, :3] inside the union of the square
    cells (i, j) of side c: the product of the x and z fractions (exact for a disc that
    crosses one edge, close where it crosses a corner)."""
    def below(t, centre, r):
        u = np.clip((t - centre) / r, -1.0, 1.0)
        return 1 - (np.arccos(u) - u * np.sqrt(1 - u * u)) / np.pi

    f = np.asarray(f, dtype=float)
    out = np.zeros(len(f))
    for i, j in cells:
        fx = below((i + 1) * c, f[:, 0], f[:, 2]) - below(i * c, f[:, 0], f[:, 2])
        fz = below((j + 1) * c, f[:, 1], f[:, 2]) - below(j * c, f[:, 1], f[:, 2])
        out += fx * fz
    return out


def _overlap(a, b, e0, e1):
    """Length of the overlap of intervals [a, b] (arrays) with [e0, e1]."""
    return np.clip(np.minimum(b, e1) - np.maximum(a, e0), 0, None)


def _box_interval(extent: Extent, s, angle_deg: float):
    """Entry and exit depth t (along the beam) of rays at detector coordinates ``s`` through
    the sample's outer shape; empty rays have a == b."""
    s = np.asarray(s, dtype=float)
    if extent.shape == "cylinder":
        c = np.sqrt(np.clip((extent.width_m / 2) ** 2 - s ** 2, 0, None))
        return -c, c
    th = math.radians(angle_deg)
    lo, hi = np.full(s.shape, -np.inf), np.full(s.shape, np.inf)
    # sample frame: x' = s·cos + t·sin, z' = −s·sin + t·cos
    for a, b, h in ((s * math.cos(th), math.sin(th), extent.width_m / 2),
                    (-s * math.sin(th), math.cos(th), extent.depth_m / 2)):
        if abs(b) < 1e-12:
            bad = np.abs(a) > h
            lo, hi = np.where(bad, 0, lo), np.where(bad, 0, hi)
        else:
            t1, t2 = (-h - a) / b, (h - a) / b
            lo, hi = np.maximum(lo, np.minimum(t1, t2)), np.minimum(hi, np.maximum(t1, t2))
    hi = np.maximum(hi, lo)
    return lo, hi


@register("uniform")
def _uniform(sample, extent: Extent, grid: Grid) -> np.ndarray:
    """A cylinder or box of the sample's bulk material."""
    m = _materials.lookup(sample.material, grid.energy_kev, sample.density_g_per_cm3)
    a, b = _box_interval(extent, grid.x_m, grid.angle_deg)
    edges = grid.slab_edges_m(extent)
    inside = np.abs(np.asarray(grid.y_m))[:, None] <= extent.height_m / 2
    t = np.stack([_overlap(a, b, e0, e1) for e0, e1 in zip(edges[:-1], edges[1:])])
    return (m.delta + 1j * m.beta) * t[:, None, :] * inside[None]


@register("siemens_star")
def _star(sample, extent: Extent, grid: Grid) -> np.ndarray:
    """A thin Siemens star (``sample.star``) of the sample's width, on its membrane; it sits in
    the middle slab."""
    st = sample.star
    dx = grid.pixel_m
    y, x = np.asarray(grid.y_m), np.asarray(grid.x_m)
    t_spoke = st.spoke_thickness_um * 1e-6
    t = siemens_star_thickness(
        (len(y), len(x)), dx, st.spokes, extent.width_m / 2, t_spoke,
        centre_px=(-y[0] / dx, -x[0] / dx),
        sidewall_angle_deg=getattr(st, "sidewall_angle_deg", 90.0),
        edge_roughness_m=getattr(st, "edge_roughness_nm", 0.0) * 1e-9,
        edge_correlation_m=getattr(st, "edge_correlation_nm", 30.0) * 1e-9, seed=grid.seed)
    s = _materials.lookup(st.spoke_material, grid.energy_kev)
    m = _materials.lookup(st.membrane_material, grid.energy_kev)
    out = np.zeros((grid.n_slices, len(y), len(x)), np.complex128)
    out[grid.n_slices // 2] = ((s.delta + 1j * s.beta) * t
                               + (m.delta + 1j * m.beta) * st.membrane_thickness_um * 1e-6)
    medium = getattr(sample, "medium_material", None) or "vacuum"
    if medium.strip().lower() != "vacuum":       # the medium between the spokes
        out[grid.n_slices // 2] += medium_index(medium, grid.energy_kev) * (t_spoke - t)
    return out


@register("fibre_bundle")
def _fibres(sample, extent: Extent, grid: Grid) -> np.ndarray:
    """Hollow fibres (``sample.fibres``) in a cylinder of the sample's width."""
    fb = sample.fibres
    y, x = np.asarray(grid.y_m), np.asarray(grid.x_m)
    bundle = FibreBundle(
        shape=(len(y), 1, len(x)), voxel_size_m=grid.pixel_m, sample_diameter_m=extent.width_m,
        seed=grid.seed, fibre_material=fb.fibre_material,
        matrix_material=getattr(sample, "medium_material", None) or fb.matrix_material,
        outer_diameter_m=(fb.outer_diameter_um_mean * 1e-6, fb.outer_diameter_um_sd * 1e-6),
        inner_diameter_m=(fb.inner_diameter_um_mean * 1e-6, fb.inner_diameter_um_sd * 1e-6),
        dispersion_deg=fb.orientation_dispersion_deg, packing_fraction=fb.packing_fraction)
    return bundle.projection_slabs(y, x, grid.angle_deg, grid.energy_kev,
                                   grid.slab_edges_m(extent))


@register("integrated_circuit")
def _circuit(sample, extent: Extent, grid: Grid) -> np.ndarray:
    """A layered circuit (``sample.circuit``) as thick as the sample's depth (voxels)."""
    c = sample.circuit
    y, x = np.asarray(grid.y_m), np.asarray(grid.x_m)
    h, w, dx = len(y), len(x), grid.pixel_m
    thick = extent.depth_m
    nz = int(math.ceil(thick / dx)) + 2
    ic = IntegratedCircuit(
        shape=(h, nz, w), voxel_size_m=dx, thickness_m=thick, n_layers=c.n_layers,
        seed=grid.seed, min_pitch_m=c.min_pitch_nm * 1e-9, max_pitch_m=c.max_pitch_nm * 1e-9,
        substrate_thickness_m=min(c.substrate_thickness_um * 1e-6, 0.5 * thick),
        dielectric_material=getattr(sample, "medium_material", None) or c.dielectric_material,
        wire_material=c.wire_material,
        via_material=c.via_material, substrate_material=c.substrate_material,
        origin_m=(float(y[h // 2]), float(x[w // 2])))
    if grid.n_slices == 1:
        return ic.projection([grid.angle_deg], grid.energy_kev)[0][None]
    return ic.projection_slabs(grid.angle_deg, grid.energy_kev, grid.slab_edges_m(extent))
