"""The 3D resolution law read from simulated sub-volumes (:mod:`twin.workflows.simvol`).

Pure: a record of the measured points (:class:`VolumeCalibration`), how it is read at a
fluence (interpolated between resolved points, extrapolation flagged, a cliff kept), and the
forecast keys it gives (:func:`forecast_keys`).

The 3D figure is the FSC across the rotation axis where the volumes were scored so: that is the
tomography's own resolution. Each projection holds the frequencies along the axis whole (the 2D
figure), and a shell's FSC weighs each direction by the sample's power, so a sample whose fine
structure lies along one direction gives a shell FSC carried by it; the worst cone across the
axis is reported beside (``resolution_3d_worst_m``). The band across the axis weighs its
directions by the sample's power too, so the figure stands only where every cone across the
axis resolves: a plate seen from a few angles resolves along its normal and not in its plane,
and is reported unresolved, with every directional figure beside.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

#: ``resolution_3d_method`` where the 3D figure is measured (CONTRACTS §2).
METHOD = "fsc_simulated_volume"
#: Half-angle (degrees) of the cone along the rotation axis and of the band across it in which
#: a volume's FSC is also read (:func:`twin.analysis.resolution.axial_correlations`).
AXIAL_HALF_ANGLE_DEG = 30.0
#: Cones across the rotation axis in which a volume's FSC is read direction by direction
#: (:func:`twin.analysis.resolution.azimuthal_correlations`): half-angle and azimuth step.
CONE_HALF_ANGLE_DEG = 20.0
CONE_STEP_DEG = 15.0


@dataclass(frozen=True)
class VolumeCalibration:
    """The 3D resolution measured on simulated sub-volumes at fluences around the scenario's.

    Attributes
    ----------
    f0_photons_per_m2 : float
        The scenario's fluence per projection.
    fluences : list of float
        Fluences per projection of the measured points, ascending.
    resolution_m, resolution_std_m : list of float
        Mean and sample standard deviation over the seeds of the FSC against the truth
        (half-bit, half period); a point where a seed is unresolved holds the seeds' bounds.
    split_m : list of float
        Mean FSC between the even and the odd projections' volumes (half-bit, half period).
    all_resolved : list of bool
        Every seed resolved at that fluence.
    seeds : list of int
        Seeds measured per fluence.
    pcc : list of float
        Mean correlation of the volume with the truth.
    n_angles : int
        Projections of the sub-volume (the scenario's angular density).
    sub_volume_m : float
        Width of the sub-volume's sample.
    alignment_residual_m : float
        Mean RMS shift the alignment left across the rotation axis.
    fire_xz_split_m, fire_xz_split_biop_m : list of float
        Mean over the seeds of seed 000's procedure on the central xz slices of the even and
        odd volumes: standard FRC at 1/7, and the BIOP plugin's computation (full periods).
    along_m, across_m : list of float
        Mean over the seeds of the FSC against the truth along the rotation axis and across it
        (:func:`twin.analysis.resolution.axial_correlations`; half-bit, half period); NaN where
        a seed's volume was scored before the split existed.
    along_resolved, across_resolved : list of bool
        Every seed resolved in that part at that fluence.
    worst_m, worst_resolved : list
        The same for the worst cone across the axis
        (:func:`twin.analysis.resolution.azimuthal_correlations`).
    misalignment_rms_m : float
        Mean RMS of the stage's simulated wobble and misalignment over the volumes (NaN where
        not recorded); 0 for a perfect stage.
    split_resolved : list of bool
        Every seed's even/odd FSC resolved at that fluence (empty: not recorded, read as
        resolved, as the calibrations shipped before it were).
    cones_unresolved : list of int
        The most cones across the axis unresolved in any seed's volume, per point (-1 where
        not counted).
    cones : int
        Cones across the axis per volume (0 where the volumes were not scored by cone).
    worst_azimuth_deg : list of float
        Azimuth of the worst cone of each point's first seed (NaN where not scored).
    """

    f0_photons_per_m2: float
    fluences: list
    resolution_m: list
    resolution_std_m: list
    split_m: list
    all_resolved: list
    seeds: list
    pcc: list
    n_angles: int
    sub_volume_m: float
    alignment_residual_m: float
    fire_xz_split_m: list = ()
    fire_xz_split_biop_m: list = ()
    along_m: list = ()
    along_resolved: list = ()
    across_m: list = ()
    across_resolved: list = ()
    worst_m: list = ()
    worst_resolved: list = ()
    cones_unresolved: list = ()
    cones: int = 0
    worst_azimuth_deg: list = ()
    split_resolved: list = ()
    misalignment_rms_m: float = math.nan

    def at(self, fluence: float) -> tuple[float, bool, bool]:
        """The 3D resolution at ``fluence``: (d, resolved, extrapolated).

        Between resolved points: log–log interpolation. Beyond them: the power law through the
        two nearest resolved points, flagged as extrapolated (with one point: that point, flat,
        flagged). Below the cliff (the lowest fluence at which every seed resolved, above a
        failed one) the point is unresolved and no law is read.

        Parameters
        ----------
        fluence : float
            Fluence per projection, photons/m² (> 0).

        Returns
        -------
        d : float
            Half-period 3D resolution, metres; NaN when unresolved.
        resolved : bool
        extrapolated : bool
        """
        f = np.asarray(self.fluences, float)
        d = np.asarray(self.resolution_m, float)
        ok = np.asarray(self.all_resolved, bool)
        if not ok.any():
            return math.nan, False, False
        failed = f[~ok]
        if len(failed) and fluence <= failed.max() * (1 + 1e-9) and fluence < f[ok].min():
            return math.nan, False, False
        fr, dr = np.log(f[ok]), np.log(d[ok])
        x = math.log(fluence)
        inside = fr[0] - 1e-9 <= x <= fr[-1] + 1e-9
        if len(fr) == 1:
            return float(d[ok][0]), True, not math.isclose(fluence, f[ok][0], rel_tol=1e-6)
        if inside:
            return float(np.exp(np.interp(x, fr, dr))), True, False
        i = (0, 1) if x < fr[0] else (-2, -1)
        slope = (dr[i[1]] - dr[i[0]]) / (fr[i[1]] - fr[i[0]])
        return float(np.exp(dr[i[0]] + slope * (x - fr[i[0]]))), True, True



def _law_at(cal: VolumeCalibration, values, f: float, resolved=None) -> float | None:
    """``cal``'s law with the resolutions ``values`` (metres, one per calibration point; with
    ``resolved``, its own flags of every seed resolving) read at fluence ``f`` (photons/m²);
    None when ``values`` is empty, holds a NaN (not measured), or the reading is not finite."""
    if not len(values) or not np.all(np.isfinite(values)):
        return None
    change = {"resolution_m": list(values)}
    if resolved is not None:
        change["all_resolved"] = list(resolved)
    v = VolumeCalibration(**{**asdict(cal), **change}).at(f)[0]
    return v if math.isfinite(v) else None


#: :class:`VolumeCalibration`'s fields that hold one value per measured fluence.
_PER_POINT = ("fluences", "resolution_m", "resolution_std_m", "split_m", "all_resolved", "seeds",
              "pcc", "fire_xz_split_m", "fire_xz_split_biop_m", "along_m", "along_resolved",
              "across_m", "across_resolved", "worst_m", "worst_resolved", "cones_unresolved",
              "worst_azimuth_deg", "split_resolved")


def _points_with(cal: VolumeCalibration, column: str) -> VolumeCalibration | None:
    """``cal``'s points whose ``column`` (a per-point field) is finite; None where none is."""
    values = np.asarray(getattr(cal, column), float)
    keep = np.flatnonzero(np.isfinite(values)) if values.size else np.array([], int)
    if not keep.size:
        return None
    d = asdict(cal)
    d.update({k: [d[k][i] for i in keep] for k in _PER_POINT if len(d[k])})
    return VolumeCalibration(**d)


def axial_points(cal: VolumeCalibration) -> VolumeCalibration | None:
    """``cal``'s points whose volumes were scored along and across the rotation axis, as a
    calibration whose ``resolution_m`` and ``all_resolved`` are the FSC across the axis; None
    where no point was (points scored before the split are left out, not failed: their
    arrays were not kept).

    Parameters
    ----------
    cal : VolumeCalibration
    """
    axial = _points_with(cal, "across_m")
    if axial is None:
        return None
    return VolumeCalibration(**{**asdict(axial), "resolution_m": list(axial.across_m),
                                "all_resolved": list(axial.across_resolved)})


def _convention(axial: bool) -> str:
    """``resolution_3d_convention`` of a measured volume (``axial``: scored across the axis)."""
    split = ("resolution_3d_split_m: the whole shells' FSC between the volumes of the even and "
             "the odd projections, seed 000's split (null where the halves do not resolve)")
    if axial:
        return ("half period 1/(2f) at the half-bit crossing of the FSC of a simulated "
                "sub-volume against the twin's truth across the rotation axis: the band within "
                f"{AXIAL_HALF_ANGLE_DEG:g}° of the plane perpendicular to it, what the "
                "tomography reconstructs from the angles (along the axis every projection holds "
                "the frequencies whole, and the 2D figure applies); resolution_3d_shell_m: "
                "over whole shells, which weigh each direction by the sample's power and "
                f"count the reconstruction's errors where the sample has none; {split}")
    return ("half period 1/(2f) at the half-bit crossing of the FSC of a simulated sub-volume "
            "against the twin's truth over whole shells (resolution_3d_shell_m, the same); "
            + split)


def _axial_words(cal: VolumeCalibration, axial: VolumeCalibration | None, along,
                 across, worst=None) -> str:
    """What ``resolution_3d_along_axis_m``, ``resolution_3d_across_axis_m`` and
    ``resolution_3d_worst_m`` hold (``axial``: :func:`axial_points` of ``cal``)."""
    if axial is None:
        return ("; along/across the rotation axis: not scored on this calibration's volumes "
                "(scored before the split existed)")
    worst_name = (f"worst of the {CONE_HALF_ANGLE_DEG:g}° cones every {CONE_STEP_DEG:g}° "
                  "across it (resolution_3d_worst_m)")
    named = [("along the axis", along), ("across it", across)]
    if len(axial.worst_m) and np.any(np.isfinite(axial.worst_m)):
        named.append((worst_name, worst))
    words = [f"{name}: {'unresolved' if v is None else f'{v * 1e9:.0f} nm'}"
             for name, v in named]
    part = ("" if len(axial.fluences) == len(cal.fluences) else
            f" (read from the {len(axial.fluences)} of {len(cal.fluences)} fluences whose "
            "volumes were scored so; the others predate the split)")
    return (f"; split by direction (a cone and a band of {AXIAL_HALF_ANGLE_DEG:g}° around the "
            f"rotation axis and the plane across it, same threshold){part}: "
            + ", ".join(words))


def _volume_keys(cal: VolumeCalibration, source: str) -> dict:
    """The forecast keys that describe what was measured (``source``: whose points)."""
    return {
        "simulated_volume_width_m": cal.sub_volume_m,
        "simulated_volume_projections": cal.n_angles,
        "simulated_volume_seeds": max(cal.seeds),
        "simulated_volume_fluences_photons_per_um2": [x * 1e-12 for x in cal.fluences],
        "simulated_volume_alignment_residual_m": cal.alignment_residual_m,
        "resolution_3d_calibration": f"from {source} (its points at this fluence)" if source
        else "own",
    }


def _limited_by(resolved: bool, axial: bool, cones: str = "",
                stage_m: float = math.nan) -> str:
    """``resolution_3d_limited_by`` of a measured volume (``resolved``: its figure across the
    axis, or over shells, resolves; ``axial``: read across the axis; ``cones``: the directions
    across it that do not resolve, in words, where some do not; ``stage_m``: RMS of the
    simulated stage motion, 0 for a perfect stage)."""
    if not resolved:
        return ("unresolved: the simulated sub-volume's FSC against the truth "
                f"{'across the rotation axis ' if axial else ''}never reaches the half-bit "
                "threshold at this fluence per projection")
    if cones:
        return ("unresolved in some directions: " + cones + "; a volume is resolved only "
                "where every direction across the rotation axis is (the band's figure across "
                "the axis, resolution_3d_across_axis_m, is carried by the directions that "
                "resolve)")
    stage = ("a perfect stage: the scenario states no wobble or misalignment" if stage_m == 0
             else "the scenario's wobble and misalignment aligned by twin")
    return ("measured: the FSC of a simulated sub-volume at this fluence per projection and "
            f"angular density, with {stage}")


def _cones_failed(cones: VolumeCalibration | None, worst: float | None, f: float) -> str:
    """Where ``cones`` (the points scored cone by cone across the axis) has a worst cone that
    does not resolve at fluence ``f`` (``worst`` None): how many cones did not, in words;
    else empty."""
    if cones is None or worst is not None:
        return ""
    i = int(np.argmin(np.abs(np.log(np.asarray(cones.fluences, float) / f))))
    n = cones.cones_unresolved[i] if len(cones.cones_unresolved) else -1
    az = cones.worst_azimuth_deg[i] if len(cones.worst_azimuth_deg) else math.nan
    count = (f"{n} of the {cones.cones} {CONE_HALF_ANGLE_DEG:g}° cones across the rotation axis"
             if n > 0 and cones.cones else "a cone across the rotation axis")
    where = ("" if not math.isfinite(az) else
             f" (among them azimuth {az:g}°)" if n > 1 else f" (at azimuth {az:g}°)")
    return (f"{count}{where} never reach the half-bit threshold against the truth at the "
            "nearest simulated fluence")


#: Forecast keys only a measured volume fills (None where none was measured).
VOLUME_ONLY_KEYS = ("resolution_3d_along_axis_m", "resolution_3d_across_axis_m",
                    "resolution_3d_shell_m",
                    "resolution_3d_calibration", "resolution_3d_convention",
                    "resolution_3d_resolved", "resolution_3d_split_m",
                    "resolution_3d_split_xz_fire_m", "resolution_3d_split_xz_biop_fire_m",
                    "simulated_volume_alignment_residual_m",
                    "simulated_volume_fluences_photons_per_um2", "simulated_volume_projections",
                    "simulated_volume_seeds", "simulated_volume_width_m")
#: ``resolution_3d_convention`` where no volume was measured and a bound stands.
BOUND_CONVENTION = ("half period of the bound named in resolution_3d_method (Crowther's "
                    "πD/(2N), the 2D law at all projections' fluence, the voxel), no FSC; "
                    "resolution_3d_forecast_fire_m is twice it")


def _split_keys(cal: VolumeCalibration, f: float, shell_ok: bool) -> dict:
    """The even/odd split's keys at fluence ``f``: None unless the shells resolve there
    (``shell_ok``), and ``resolution_3d_split_m`` None where the halves do not resolve."""
    split = _law_at(cal, cal.split_m, f, cal.split_resolved or None) if shell_ok else None
    fire, biop = (_law_at(cal, v, f) if shell_ok else None
                  for v in (cal.fire_xz_split_m, cal.fire_xz_split_biop_m))
    return {"resolution_3d_split_m": split, "resolution_3d_split_xz_fire_m": fire,
            "resolution_3d_split_xz_biop_fire_m": biop}


def _directions_at(axial: VolumeCalibration | None, f: float) -> tuple:
    """(along, across, coned, worst) at fluence ``f`` from ``axial`` (:func:`axial_points`):
    the laws along and across the axis and of the worst cone (metres, None where unresolved or
    not scored), and ``coned``, the points scored cone by cone (the others predate the cones)."""
    if axial is None:
        return None, None, None, None
    along, across = (_law_at(axial, v, f, ok) for v, ok in (
        (axial.along_m, axial.along_resolved), (axial.across_m, axial.across_resolved)))
    coned = _points_with(axial, "worst_m")
    worst = None if coned is None else _law_at(coned, coned.worst_m, f, coned.worst_resolved)
    return along, across, coned, worst


def forecast_keys(cal: VolumeCalibration, f: float, source: str = "",
                  bound_m: float | None = None) -> dict:
    """The forecast's 3D keys at fluence per projection ``f`` (photons/m²) from ``cal``:
    ``resolution_3d_forecast_m`` is the FSC against the truth (``resolution_3d_method``
    "fsc_simulated_volume") across the rotation axis, read from the points whose volumes were
    scored so (:func:`axial_points`), else over whole shells (``resolution_3d_shell_m`` either
    way). Where the volumes were scored cone by cone across the axis, the figure stands only
    where every cone resolves: a volume with a direction that does not is unresolved
    (``resolution_3d_resolved`` false, no headline; the band's, the shells' and the cones'
    figures stay beside it).

    Parameters
    ----------
    cal : VolumeCalibration
        The simulated sub-volumes' resolutions.
    f : float
        Fluence per projection, photons/m².
    source : str
        Name of the scenario whose calibration this is; empty for the scenario's own.
    bound_m : float, optional
        The analytic 3D bound it replaces, metres (kept as ``resolution_3d_bound_m``).

    Returns
    -------
    dict
        Forecast keys: half periods in ``*_m`` keys (``resolution_3d_forecast_fire_m`` is the
        full period 2d), None where unresolved; ``resolution_extrapolated`` only when
        extrapolated.
    """
    shell, shell_ok, _ = cal.at(f)
    axial = axial_points(cal)
    along, across, coned, worst = _directions_at(axial, f)
    d, band_ok, extrapolated = (axial or cal).at(f)
    # a volume is resolved where every direction across the axis is: a band's FSC weighs the
    # directions by the sample's power, so a plate resolves across the axis by its normal
    # alone while its own plane does not (the 21-angle IC)
    cones = _cones_failed(coned, worst, f)
    resolved = band_ok and not cones
    out = {
        "resolution_3d_bound_m": bound_m,
        "resolution_3d_forecast_m": d if resolved else None,
        "resolution_3d_forecast_fire_m": 2 * d if resolved else None,
        "resolution_3d_shell_m": shell if shell_ok else None,
        **_split_keys(cal, f, shell_ok),
        "resolution_3d_resolved": bool(resolved),
        "resolution_3d_method": METHOD,
        "resolution_3d_worst_m": worst,
        "resolution_3d_along_axis_m": along,
        "resolution_3d_across_axis_m": across,
        "resolution_3d_convention": (_convention(axial is not None)
                                     + _axial_words(cal, axial, along, across, worst)),
        **_volume_keys(cal, source),
        "resolution_3d_limited_by": _limited_by(band_ok, axial is not None, cones,
                                                cal.misalignment_rms_m),
    }
    if extrapolated:
        out["resolution_extrapolated"] = True
    return out
