"""Phantoms on a voxel grid with real materials, and the registry behind ``sample.phantom``.

The grid convention, the refractive index and the object transmission are those of
:mod:`twin.sample.voxels` (the :class:`Phantom` base class, re-exported here with its
helpers); the fibre bundle lives in :mod:`twin.sample.fibres`, the integrated circuit in
:mod:`twin.sample.circuit`, the Siemens star in :mod:`twin.sample.star`. This module holds the
uniform cylinder, the star's transmission, the registry (:func:`register`,
:func:`projected_slabs`), :class:`Extent`, :class:`Grid` and the builders of each phantom.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from twin.sample import materials as _materials
from twin.sample.circuit import IntegratedCircuit
from twin.sample.fibres import FibreBundle
from twin.sample.star import siemens_star_thickness  # noqa: F401  (the star's home: star.py)
from twin.sample.voxels import (Phantom, _overlap, medium_index,  # noqa: F401
                                refractive_indices, transmission_from_projection)

__all__ = ["Extent", "FibreBundle", "Grid", "IntegratedCircuit", "Phantom", "UniformCylinder",
           "medium_index", "projected_slabs", "refractive_indices", "register", "registered",
           "siemens_star_thickness", "siemens_star_transmission", "transmission_from_projection"]


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
        """(nz, nx) uint8 labels of row ``y``: 1 inside the cylinder's disc, 0 outside (the
        same in every row).

        Parameters
        ----------
        y : int
            Row index (unused: the cylinder is the same at every height).

        Returns
        -------
        numpy.ndarray
            (nz, nx) uint8; voxel centres at (index − n//2)·voxel_size_m.
        """
        _, nz, nx = self.shape
        z = (np.arange(nz) - nz // 2)[:, None] * self.voxel_size_m
        x = (np.arange(nx) - nx // 2)[None, :] * self.voxel_size_m
        return (x ** 2 + z ** 2 <= self.radius_m ** 2).astype(np.uint8)



# ----------------------------------------------------------------------------- star


def siemens_star_transmission(shape, pixel_size_m: float, energy_kev: float, spokes: int = 36,
                              radius_m: float | None = None, spoke_material: str = "ta",
                              spoke_thickness_m: float = 0.5e-6,
                              membrane_material: str = "si3n4",
                              membrane_thickness_m: float = 1e-6,
                              centre_px: tuple[float, float] | None = None) -> np.ndarray:
    """(ny, nx) complex64 transmission of a Siemens star on a membrane (a thin 2D object).

    Parameters
    ----------
    shape : (int, int)
        (ny, nx) pixels.
    pixel_size_m : float
        Pixel size, metres.
    energy_kev : float
        Photon energy, keV.
    spokes : int
        Number of spokes.
    radius_m : float or None
        The star's radius (default 0.45 of the smaller side).
    spoke_material, membrane_material : str
        Materials (:mod:`twin.sample.materials`).
    spoke_thickness_m, membrane_thickness_m : float
        Thicknesses, metres.
    centre_px : (float, float) or None
        The star's centre (row, col) in pixels; None: the array's centre.

    Returns
    -------
    complex64 array (ny, nx)
    """
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
        """Longest path through the sample along the beam at ``angle_deg``.

        Parameters
        ----------
        angle_deg : float
            Rotation angle, degrees.

        Returns
        -------
        float
            Metres: the diameter for a cylinder, |w·sin θ| + |d·cos θ| for a box.
        """
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
        """(n_slices + 1,) slab boundaries along the beam, metres from the rotation axis.

        The slabs span :meth:`Extent.path_m` at :attr:`angle_deg`, widened by a relative 10⁻⁹ and
        10⁻¹² m so that the sample's surfaces fall inside.

        Parameters
        ----------
        extent : Extent
            The sample's outer shape.

        Returns
        -------
        numpy.ndarray
            (n_slices + 1,) equally spaced, symmetric about 0, metres.
        """
        half = 0.5 * extent.path_m(self.angle_deg) * (1 + 1e-9) + 1e-12
        return np.linspace(-half, half, self.n_slices + 1)


_BUILDERS: dict = {}


def register(name: str):
    """Decorator: register ``builder(sample_cfg, extent, grid) -> (n_slices, H, W)`` as the
    phantom ``name``.

    Parameters
    ----------
    name : str
        The phantom's name in ``sample.phantom``.

    Returns
    -------
    callable
        The decorator; it returns the builder unchanged and raises ValueError for a name
        registered twice.
    """
    def deco(fn):
        """Register ``fn`` under the enclosing ``name`` and return it unchanged.

        Parameters
        ----------
        fn : callable
            The builder.

        Returns
        -------
        callable
            ``fn``.

        Raises
        ------
        ValueError
            When ``name`` is already registered.
        """
        if name in _BUILDERS:
            raise ValueError(f"phantom {name!r} is registered twice")
        _BUILDERS[name] = fn
        return fn
    return deco


def registered() -> list[str]:
    """Names of the registered phantoms.

    Returns
    -------
    list of str
        Sorted.
    """
    return sorted(_BUILDERS)


def projected_slabs(name: str, sample_cfg, extent: Extent, grid: Grid) -> np.ndarray:
    """(n_slices, len(y), len(x)) complex128 projected ∫(δ + iβ)dz of each slab, metres.

    Parameters
    ----------
    name : str
        A registered phantom (:func:`registered`).
    sample_cfg
        The scenario's [sample] table (duck-typed).
    extent : Extent
        The sample's outer shape.
    grid : Grid
        Where to evaluate it.

    Returns
    -------
    complex128 array (n_slices, len(grid.y_m), len(grid.x_m))

    Raises
    ------
    TwinInputError
        For an unknown phantom.
    """
    from twin.core.errors import TwinInputError

    if name not in _BUILDERS:
        raise TwinInputError("sample.phantom", name, f"allowed: {registered()}")
    out = np.asarray(_BUILDERS[name](sample_cfg, extent, grid), dtype=np.complex128)
    return out.reshape(grid.n_slices, len(grid.y_m), len(grid.x_m))


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
