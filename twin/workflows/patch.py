"""The patch of a scan that a simulated measurement stands for (:mod:`twin.workflows.simres`).

A calibration simulates a small patch of the scenario's scan rather than the whole scan:
:func:`patch_scenario` is that patch as a scenario of its own (same beam, optics, detector,
steps, rates and errors; one projection at angle 0), :func:`patch_summary` says what it is
against the scan it stands for (its field, frames, and the fluence at its centre over the
scan's).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from twin.core.errors import TwinInputError
from twin.scenario import Scenario

#: Scan points of a simulated patch (about 16 × 16): enough overlap and area for an FRC, small
#: enough that the quickstart's 9-point grid runs in minutes on a laptop.
PATCH_POINTS = 256


def patch_scenario(s: Scenario, points: int = PATCH_POINTS, g=None) -> Scenario:
    """The 2D patch of scenario ``s`` that is simulated for one measurement.

    Same beam, optics, detector, steps, rates and errors; one projection (angle 0), so its
    fluence per projection is the scenario's. Its field follows ``resolution.patch``:
    ``"points"``, a square of about ``points`` scan points at the scan's centre (never larger
    than the scan); ``"scan"``, :func:`scan_patch_field_um`.

    Parameters
    ----------
    s : Scenario
        The scenario.
    points : int
        ``"points"`` patch: about this many scan points, a side of ⌈√points⌉ (at least 4)
        points in x and lines per beam in y. Unused for ``"scan"``.
    g : Geometry, optional
        The scenario's geometry, used for ``"scan"`` only (built there if None).

    Returns
    -------
    Scenario
        ``s`` with the patch's ``scan.fov_x_um``, ``scan.fov_y_um``,
        ``tomography.n_projections = 0`` and ``run.frames`` unset (every frame).

    Raises
    ------
    TwinInputError
        ``"scan"``: as :func:`scan_patch_field_um`.
    """
    sc = s.scan
    if s.resolution.patch == "scan":
        fov_x, fov_y = scan_patch_field_um(s, g)
    else:
        side = max(4, math.ceil(math.sqrt(points)))
        fov_x = min(sc.fov_x_um, side * sc.fast_step_um)
        fov_y = min(sc.fov_y_um, side * sc.slow_step_um * sc.overlap_relaxation * sc.n_beams)
    return s.with_values({"scan.fov_x_um": fov_x, "scan.fov_y_um": fov_y,
                          "tomography.n_projections": 0, "run.frames": None})


#: ``resolution.patch = "scan"``: the patch spans this many beam diameters D in each direction
#: (each beam's band, with several beams). The FRC searches periods up to D (its lowest
#: searched ring, :func:`_resolution`), and never its three lowest rings: over a side L that
#: ring is ring L/D, so the region dosed as the scan is must span 3·D for it to be searched;
#: a scan point's beam reaches D/2 beyond it, so the dose falls off over the outer D/2 on each
#: side: 3·D + D.
PATCH_DIAMETERS = 4
#: The smallest field (per beam band) whose patch can be representative: three diameters.
MIN_DIAMETERS = 3


def _points_like(n_full: int, n_want: int) -> int:
    """Scan points along one direction of the patch: at least ``n_want``, of the same parity as
    the scan's ``n_full`` (so the patch's centre sits where the scan's does, on a point or
    between two), never more than ``n_full``."""
    n = max(1, n_want)
    n += (n - n_full) % 2
    return min(n, n_full)


def scan_patch_field_um(s: Scenario, g=None) -> tuple[float, float]:
    """Field (x, y), µm, of the ``resolution.patch = "scan"`` patch of scenario ``s``.

    :data:`PATCH_DIAMETERS` beam diameters in each direction (each beam's band in y), as whole
    scan points at the scan's own steps and overlap, of the scan's parity; the scan's own field
    where it is smaller.

    Parameters
    ----------
    s : Scenario
        The scenario.
    g : Geometry, optional
        Its geometry (built if None).

    Returns
    -------
    (float, float)
        x and y, µm.

    Raises
    ------
    TwinInputError
        A field (a beam's band in y) smaller than :data:`MIN_DIAMETERS` beam diameters: no
        patch of it is representative of a scan.
    """
    from twin.geometry import Geometry

    g = g or Geometry.from_scenario(s)
    sc = s.scan
    d_um = g.beam_diameter_m * 1e6
    minimum = MIN_DIAMETERS * d_um
    for field, value, per in (("scan.fov_x_um", sc.fov_x_um, 1),
                              ("scan.fov_y_um", sc.fov_y_um, sc.n_beams)):
        if value / per < minimum * (1 - 1e-9):
            beams = f" ({per} beams: each beam's band)" if per > 1 else ""
            raise TwinInputError(field, value, (
                f"resolution.patch = \"scan\" needs a field of at least {MIN_DIAMETERS} beam "
                f"diameters, {minimum * per:.4g} µm{beams} (beam diameter {d_um:.4g} µm): a "
                "smaller field cannot give a representative patch"))
    want = PATCH_DIAMETERS * d_um
    nx = _points_like(g.frames_per_line, math.ceil(want / sc.fast_step_um * (1 - 1e-9)))
    slow_um = sc.slow_step_um * sc.overlap_relaxation
    ny = _points_like(g.lines_per_beam, math.ceil(want / slow_um * (1 - 1e-9)))
    # (n − ½) steps: ⌈fov/step⌉ = n, away from the rounding of a whole number of steps
    fov_x = sc.fov_x_um if nx >= g.frames_per_line else (nx - 0.5) * sc.fast_step_um
    fov_y = (sc.fov_y_um if ny >= g.lines_per_beam
             else (ny * sc.n_beams - 0.5) * slow_um)
    return float(fov_x), float(fov_y)


def _disc_count(n_x: int, n_y: int, step_x_m: float, step_y_m: float,
                radius_m: float) -> int:
    """Points of an n_x × n_y raster (centred on the origin) within ``radius_m`` of it."""
    rows = min(n_y, 2 * math.ceil(radius_m / step_y_m) + 3)
    rows += (n_y - rows) % 2                              # keep the raster's own parity
    y = (np.arange(rows) - (n_y - 1) / 2 + (n_y - rows) / 2) * step_y_m
    half = np.sqrt(np.clip(radius_m ** 2 - y ** 2, 0.0, None))
    x0 = (n_x - 1) / 2
    # columns i with |(i − x0)·Δx| ≤ half, i in [0, n_x)
    lo = np.clip(np.ceil(x0 - half / step_x_m - 1e-9), 0, n_x)
    hi = np.clip(np.floor(x0 + half / step_x_m + 1e-9), -1, n_x - 1)
    return int(np.clip(hi - lo + 1, 0, None)[np.abs(y) <= radius_m].sum())


@dataclass(frozen=True)
class PatchSummary:
    """What the calibration of a scenario simulates, against the scan it stands for.

    Attributes
    ----------
    size_m : (float, float)
        The patch's field, x and y, metres.
    frames : int
        Scan points of the patch (frames; all beams share a frame).
    fluence_ratio : float
        Photons per unit area at the patch's centre over those at the centre of the scenario's
        own scan: the scan points whose beam (a disc of the beam's diameter) covers the centre,
        counted on both rasters (1: the patch is dosed as the scan is).
    """

    size_m: tuple
    frames: int
    fluence_ratio: float


def patch_summary(s: Scenario, g=None, points: int = PATCH_POINTS) -> PatchSummary:
    """The patch :func:`patch_scenario` simulates for scenario ``s``.

    Parameters
    ----------
    s : Scenario
        The scenario.
    g : Geometry, optional
        Its geometry (built if None).
    points : int
        As :func:`patch_scenario`.

    Returns
    -------
    PatchSummary
        Its ``fluence_ratio`` NaN where no scan point's beam covers the scan's centre.
    """
    from twin.geometry import Geometry

    g = g or Geometry.from_scenario(s)
    gp = Geometry.from_scenario(patch_scenario(s, points, g))
    r = g.beam_diameter_m / 2

    def at_centre(geo) -> int:
        """Scan points whose beam (the scenario's diameter) covers the raster's centre.

        Parameters
        ----------
        geo : Geometry
            The scan's or the patch's geometry.
        """
        # the lines of all beams together (each beam scans its own band of lines_per_beam)
        return _disc_count(geo.frames_per_line, geo.lines_per_beam * geo.n_beams,
                           geo.fast_step_m, geo.slow_step_m, r)

    full = at_centre(g)
    ratio = at_centre(gp) / full if full else math.nan
    return PatchSummary((gp.fov_x_m, gp.fov_y_m), int(gp.frames_per_projection), float(ratio))
