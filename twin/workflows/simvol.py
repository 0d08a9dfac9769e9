"""The 3D resolution measured on a simulated ptycho-tomography sub-volume.

A 3D forecast quotes what the beamtime will measure on its volume: a Fourier shell correlation.
So twin measures it the same way, on a volume it simulates, instead of pushing the 2D law
through a dose-fractionation argument (Hegerl & Hoppe assume a voxel-thick object; the 2D law is
measured on projections of a thick one). :func:`measure_volume`:

1. **The sub-volume** (:func:`sub_volume`): the scenario's beam, detector, scan steps and
   fluence per projection on a square field of at least three beam diameters; the sample is the
   scenario's phantom (its materials, medium and fibre sizes unchanged) cut to a cylinder (or
   box) of 80 % of the field, imaged at the scenario's *angular density*: projections per
   π/2 × width in voxels, so a sample 12 × narrower gets 12 × fewer projections.
2. **The experiment's errors**: each projection's sample is displaced by the rotation axis's
   wobble and a per-projection misalignment (``[tomography] wobble_um``, ``misalignment_um``),
   in the simulation itself (the sample moves, the recorded positions do not).
3. **The beamline's processing**: every projection is simulated and reconstructed with the
   scenario's options (one Dask task per projection), its phase unwrapped and its background
   removed; twin's reprojection alignment (Gürsoy et al. 2017, as seed 000 did) aligns them;
   the scenario's method (``[tomography] method``) reconstructs δ.
4. **Two scores**: the FSC against the truth (the phantom's δ from exact projections at twice
   Crowther's count, the same reconstruction geometry, registered by a 3D sub-pixel
   translation), and the FSC between the volumes of the even and the odd projections, the
   paper's split. Half-bit threshold; half periods 1/(2f), with the full period 1/f beside.

Each volume costs one ptychographic reconstruction per projection: tens of core-minutes for the
brain's 10.5 µm sub-volume (:func:`cost_estimate`). Results are cached and shipped like the 2D
points (:mod:`twin.workflows.simres`). The steps, one projection or one volume at a time, are
in :mod:`twin.workflows.simvol_steps` (re-exported here).
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass

import numpy as np

from twin.analysis.volume import METHOD, VolumeCalibration  # noqa: F401  (re-exported)
from twin.core.errors import TwinInputError
from twin.scenario import Scenario
from twin.workflows.simvol_score import (  # noqa: F401  (re-exported)
    AXIAL_HALF_ANGLE_DEG, TRUTH_OVERSAMPLING, Projections, _arrays_path, _axial_columns,
    _store_arrays, score_volume, truth_volume)
from twin.workflows.simvol_steps import (  # noqa: F401  (re-exported)
    SHIFT_STREAM, _gauge_residual, _xz_split, one_projection, projection_angles,
    projection_shifts, register_volume, tomography, truth_projections)

#: The sub-volume's field spans at least this many beam diameters (issue 21: area for the
#: overlap constraint and the FSC's shells).
MIN_BEAM_DIAMETERS = 3.0
#: The sample's width as a fraction of the field (air on both sides for the phase background).
SAMPLE_FILL = 0.8
#: Version of the volume measurement (in its cache key).
VERSION = 1


@dataclass(frozen=True)
class SubVolume:
    """What :func:`measure_volume` simulates for a 3D scenario.

    Attributes
    ----------
    scenario : Scenario
        The sub-volume's scenario (field, sample and projection count changed).
    field_m : float
        Side of the square scan field, metres.
    sample_width_m : float
        Width of the sub-volume's sample, metres.
    n_angles : int
        Projections of the sub-volume (even: the even/odd split has equal halves).
    angular_density : float
        Projections per π/2 × width in voxels, the scenario's (1: Crowther's count).
    voxel_m : float
        Voxel (the reconstruction's pixel), metres.
    frames_per_projection : int
        Scan points per projection.
    fluence_ratio : float
        Photons per unit area at the field's centre over those at the full scan's centre.
    beam_diameter_m : float
        The scenario's beam diameter.
    fluence_per_m2 : float
        The scenario's fluence per projection (the forecast's F).
    """

    scenario: Scenario
    field_m: float
    sample_width_m: float
    n_angles: int
    angular_density: float
    voxel_m: float
    frames_per_projection: int
    fluence_ratio: float
    beam_diameter_m: float = math.nan
    fluence_per_m2: float = math.nan


def _projections(s: Scenario, g) -> float:
    """The scenario's projection count (Crowther's π/2 × field width for ``"crowther"``)."""
    n = s.tomography.n_projections
    if n == "crowther":
        return math.ceil(math.pi / 2 * math.ceil(g.fov_x_m / g.object_pixel_m))
    return float(n)


def sub_volume(s: Scenario, g=None) -> SubVolume:
    """The sub-volume that :func:`measure_volume` simulates for 3D scenario ``s``.

    Parameters
    ----------
    s : Scenario
        A 3D scenario (a projection count ≥ 2, or ``"crowther"``).
    g : Geometry or None
        ``Geometry.from_scenario(s)`` where the caller has it (None: resolved here).

    Raises
    ------
    TwinInputError
        ``s`` is not a 3D scenario, or its phantom is a 2D one (the Siemens star).
    """
    from twin.geometry import Geometry
    from twin.workflows.patch import _disc_count

    n_full = s.tomography.n_projections
    if n_full == 0 or (isinstance(n_full, int) and n_full < 2):
        raise TwinInputError("tomography.n_projections", n_full,
                             "a simulated volume needs a 3D scenario (2 or more projections)")
    if s.sample.phantom == "siemens_star":
        raise TwinInputError("sample.phantom", "siemens_star",
                             "a Siemens star is 2D: a simulated volume needs a 3D phantom")
    g = g or Geometry.from_scenario(s)
    dx = g.object_pixel_m
    field = max(MIN_BEAM_DIAMETERS * g.beam_diameter_m, (s.run.chain_fov_um or 0.0) * 1e-6)
    field = math.ceil(field / g.slow_step_m) * g.slow_step_m
    width = SAMPLE_FILL * field
    full_width = s.sample.cross_section_um[0] * 1e-6
    density = _projections(s, g) / (math.pi / 2 * full_width / dx)
    n = max(4, math.ceil(density * math.pi / 2 * width / dx))
    n += n % 2
    sv = s.with_values(_sub_changes(s, field, width, full_width, n))
    gs = Geometry.from_scenario(sv)
    r = g.beam_diameter_m / 2

    def at_centre(geo) -> int:
        """Scan points (every beam's lines) within a beam radius of the field's centre.

        Parameters
        ----------
        geo : Geometry
            The full scan's or the sub-volume's.
        """
        return _disc_count(geo.frames_per_line, geo.lines_per_beam * geo.n_beams,
                           geo.fast_step_m, geo.slow_step_m, r)

    full = at_centre(g)
    return SubVolume(sv, float(gs.fov_x_m), float(width), int(n), float(density), float(dx),
                     int(gs.frames_per_projection),
                     float(at_centre(gs) / full) if full else math.nan,
                     float(g.beam_diameter_m), float(g.fluence_per_m2))


def _sub_changes(s: Scenario, field: float, width: float, full_width: float, n: int) -> dict:
    """The sub-volume's scenario changes: a square scan field ``field`` (m) wide, the sample
    ``width`` (m) wide (a box's depth scaled by ``width / full_width``) and twice the field
    tall, ``n`` projections."""
    k = width / full_width
    changes = {"scan.fov_x_um": field * 1e6, "scan.fov_y_um": field * 1e6,
               "sample.height_um": 2 * field * 1e6, "tomography.n_projections": n}
    if s.sample.shape == "cylinder":
        changes["sample.diameter_um"] = width * 1e6
    else:
        changes["sample.width_um"] = width * 1e6
        changes["sample.depth_um"] = s.sample.depth_um * k
    return changes


@dataclass(frozen=True)
class VolumeMeasurement:
    """One simulated sub-volume, scored (:func:`measure_volume`).

    Half periods 1/(2f) at the half-bit crossing; the full period (FIRE) is twice each.

    Attributes
    ----------
    resolution_truth_m : float
        FSC against the truth, half-bit (Rosenthal & Henderson's √(2T/(1+T)) against a
        noise-free reference); where ``unresolved``, the bound at the first searched shell.
    unresolved : bool
        The FSC against the truth is below the threshold from the first searched shell on.
    resolution_split_m : float
        FSC between the volumes of the even and the odd projections (the paper's split).
    split_unresolved : bool
    pcc : float
        Pearson correlation of the registered volume with the truth inside the sample.
    alignment_residual_x_m, alignment_residual_y_m : float
        RMS shift the alignment left across and along the rotation axis (true + found, less
        the volume's free translation). Along the axis, a phantom whose fibres run along it
        barely shows a shift, and a shift barely matters.
    misalignment_rms_m : float
        RMS of the simulated shifts (wobble + misalignment) before alignment.
    n_angles : int
    fire_xz_split_m : float
        Seed 000's procedure with a standard FRC: the central slice across the rotation axis
        (an xz slice) of the even and the odd projections' volumes, their FRC's first crossing
        of 1/7 as a full period 1/f (the FIRE number, Nieuwenhuizen et al. 2013).
    fire_xz_split_biop_m : float
        The same two slices through the BIOP plugin's computation (:mod:`twin.analysis.biop`),
        what seed 000 ran (not a correlation; NaN where it finds no crossing).
    fluence_photons_per_m2 : float
        Fluence per projection.
    voxel_m, field_m, sample_width_m : float
    seconds : float
        Wall time of the measurement.
    resolution_truth_along_m, resolution_truth_across_m : float
        The FSC against the truth in the cone within :data:`AXIAL_HALF_ANGLE_DEG` of the
        rotation axis (what each projection holds whole: the 2D resolution) and in the band
        within it of the plane across the axis (what the tomography fills in from the angles);
        NaN in an entry scored before they existed.
    resolution_split_across_m : float
        The even/odd FSC in the band across the axis.
    truth_along_unresolved, truth_across_unresolved, split_across_unresolved : bool or None
        The curve never reaches the threshold (None: not scored).
    resolution_truth_worst_across_m, truth_worst_across_unresolved, worst_across_azimuth_deg
        The worst of the cones across the axis against the truth (an unresolved one before any
        resolved; its bound where unresolved) and its azimuth (degrees from the volume's second
        axis); NaN / None where not scored.
    cones_unresolved, cones : int or None
        How many of the cones are unresolved, of how many.
    """

    resolution_truth_m: float
    unresolved: bool
    resolution_split_m: float
    split_unresolved: bool
    pcc: float
    alignment_residual_x_m: float
    alignment_residual_y_m: float
    misalignment_rms_m: float
    n_angles: int
    fire_xz_split_m: float
    fire_xz_split_biop_m: float
    fluence_photons_per_m2: float
    voxel_m: float
    field_m: float
    sample_width_m: float
    seconds: float
    resolution_truth_along_m: float = math.nan
    truth_along_unresolved: bool | None = None
    resolution_truth_across_m: float = math.nan
    truth_across_unresolved: bool | None = None
    resolution_split_across_m: float = math.nan
    split_across_unresolved: bool | None = None
    resolution_truth_worst_across_m: float = math.nan
    truth_worst_across_unresolved: bool | None = None
    worst_across_azimuth_deg: float = math.nan
    cones_unresolved: int | None = None
    cones: int | None = None


def _key(sv: Scenario, seed: int, iterations: int | None) -> str:
    from twin.workflows import simres

    return f"vol{VERSION}-" + simres._key(sv.model_copy(update={"seed": int(seed)}), seed,
                                           iterations, volume=True)


def _region(sub: SubVolume) -> tuple[int, int]:
    """Rows and columns of each projection that the volume keeps: the whole field across, and
    the rows more than a beam radius inside the scanned band (full fluence)."""
    w = int(math.floor(sub.field_m / sub.voxel_m)) // 2 * 2
    h = int(math.floor((sub.field_m - sub.beam_diameter_m) / sub.voxel_m)) // 2 * 2
    return max(h, 8), w


def simulate_projections(s: Scenario, seed: int = 0, iterations: int | None = None,
                         scheduler: str | None = None, n_workers: int | None = None,
                         progress: bool = False) -> Projections:
    """Every projection of the sub-volume of ``s``, simulated and reconstructed (one Dask task
    each; ``n_workers=0`` and no scheduler: in this process).

    The angles run from 0 over ``tomography.angular_range_deg`` (the end included only below
    180°); the sample is displaced by :func:`projection_shifts` at each.

    Parameters
    ----------
    s : Scenario
        A 3D scenario (:func:`sub_volume` raises TwinInputError otherwise).
    seed : int
        Seed of the simulation (phantom, noise, shifts).
    iterations : int or None
        Ptychographic iterations (None: the scenario's).
    scheduler : str or None
        A Dask scheduler's address (None: a local cluster).
    n_workers : int or None
        Local workers (None: :func:`twin.workflows.cluster.map_ordered`'s default).
    progress : bool
        Show a progress bar.
    """
    from twin.workflows.cluster import map_ordered

    sub = sub_volume(s)
    sv = sub.scenario.model_copy(update={"seed": int(seed)})
    n = sub.n_angles
    angles = projection_angles(sv, n)
    shifts = projection_shifts(sv, angles, seed)
    shape = _region(sub)
    args = (list(range(n)), list(angles), list(shifts), [shape] * n, [iterations] * n)
    if n_workers == 0 and not scheduler:
        proj = [one_projection(sv, *a) for a in zip(*args)]
    else:
        proj = map_ordered(one_projection, [sv] * n, *args, scheduler=scheduler,
                           n_workers=n_workers, progress=progress, desc="projections",
                           unit="proj")
    return Projections(sub, sv, angles, shifts, shape, np.stack(proj))


def measure_volume(s: Scenario, seed: int = 0, iterations: int | None = None,
                   scheduler: str | None = None, n_workers: int | None = None,
                   use_cache: bool = True, progress: bool = False) -> VolumeMeasurement:
    """Simulate, reconstruct, align and score the sub-volume of 3D scenario ``s`` (module doc).

    Parameters
    ----------
    s : Scenario
        A 3D scenario; its sub-volume is :func:`sub_volume`.
    seed : int
        Seed of the simulation (phantom, noise, shifts).
    iterations : int, optional
        Ptychographic iterations (default: the scenario's, as the 2D calibration).
    scheduler, n_workers
        Where the projections run (one Dask task each); ``n_workers=0`` and no scheduler: in
        this process.
    use_cache : bool
        Reuse (and store) the result (:func:`twin.workflows.simres.cache_dir`).
    progress : bool
        Show a progress bar of the projections.
    """
    from twin.workflows import simres

    sub = sub_volume(s)
    key = _key(sub.scenario, seed, iterations)
    hit = simres._cached(key, VolumeMeasurement) if use_cache else None
    if hit is not None:
        return hit
    t0 = time.perf_counter()
    pr = simulate_projections(s, seed, iterations, scheduler, n_workers, progress)
    truth = truth_volume(pr)
    if use_cache:
        _store_arrays(key, pr, truth)
    scores = score_volume(pr, s.tomography.method, truth)
    result = VolumeMeasurement(
        **scores, fluence_photons_per_m2=sub.fluence_per_m2,
        voxel_m=sub.voxel_m, field_m=sub.field_m, sample_width_m=sub.sample_width_m,
        seconds=time.perf_counter() - t0)
    if use_cache:
        simres._store(simres.cache_dir() / f"{key}.json", asdict(result))
    return result


def rescore_volume(s: Scenario, seed: int = 0,
                   iterations: int | None = None) -> VolumeMeasurement | None:
    """Score again the cached sub-volume of ``s`` from its kept arrays (:func:`_store_arrays`)
    with this version's :func:`score_volume`, and store the new entry; its ``seconds`` stay
    the simulation's. None (with a warning where they exist) where the arrays were not kept
    or cannot be read.

    Parameters
    ----------
    s : Scenario
        A 3D scenario, as given to :func:`measure_volume`.
    seed : int
        Seed of the volume.
    iterations : int, optional
        As :func:`measure_volume`'s.
    """
    from twin.workflows import simres

    sub = sub_volume(s)
    key = _key(sub.scenario, seed, iterations)
    path = _arrays_path(key)
    if not path.exists():
        return None
    import zipfile

    try:
        with np.load(path) as z:
            sv = sub.scenario.model_copy(update={"seed": int(seed)})
            pr = Projections(sub, sv, z["angles"], z["shifts"], tuple(z["proj"].shape[1:]),
                             z["proj"])
            truth = z["truth"]
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        import warnings

        warnings.warn(f"the kept arrays {path} cannot be read ({exc}); measure the volume "
                      "again", stacklevel=2)
        return None
    old = simres._lookup(key) or {}
    scores = score_volume(pr, s.tomography.method, truth)
    result = VolumeMeasurement(
        **scores, fluence_photons_per_m2=sub.fluence_per_m2, voxel_m=sub.voxel_m,
        field_m=sub.field_m, sample_width_m=sub.sample_width_m,
        seconds=float(old.get("seconds", math.nan)))
    simres._store(simres.cache_dir() / f"{key}.json", asdict(result))
    return result


# ----------------------------------------------------------------------------- calibration


#: Fluence factors around the scenario's at which :func:`calibrate_volume` simulates volumes.
VOLUME_FACTORS = (0.5, 1.0, 2.0)


def _at(s: Scenario, factor: float) -> Scenario:
    return (s if factor == 1.0 else
            s.with_values({"beam.flux_photons_per_s": s.beam.flux_photons_per_s * factor}))


def volume_points_missing(s: Scenario, seeds: int, factors=VOLUME_FACTORS) -> list:
    """(factor, seed) of :func:`calibrate_volume`'s points that are neither cached nor
    shipped.

    Parameters
    ----------
    s : Scenario
        A 3D scenario.
    seeds : int
        Seeds per factor: the scenario's seed + 0 … ``seeds − 1``.
    factors : sequence of float
        Flux factors.

    Returns
    -------
    list of (float, int)
    """
    from twin.workflows import simres

    out = []
    for f in factors:
        sv = sub_volume(_at(s, f)).scenario
        for k in range(seeds):
            if simres._lookup(_key(sv, s.seed + k, None)) is None:
                out.append((f, s.seed + k))
    return out


def calibrate_volume(s: Scenario, seeds: int = 1, factors=VOLUME_FACTORS,
                     scheduler: str | None = None, n_workers: int | None = None,
                     simulate: bool = True, progress: bool = False) -> VolumeCalibration | None:
    """Measure (or read) the sub-volume of ``s`` at ``factors`` × its fluence and ``seeds``
    seeds. With ``simulate`` false, only the cached or shipped points count, and None is
    returned where none is.

    Parameters
    ----------
    s : Scenario
        A 3D scenario; its fluence per projection F₀ (photons/m²) anchors the points.
    seeds : int
        Seeds per factor: the scenario's seed + 0 … ``seeds − 1``.
    factors : sequence of float
        Flux factors (visited in ascending order; a factor with no point is left out).
    scheduler, n_workers, progress
        As :func:`measure_volume`'s.
    simulate : bool
        Measure the points that are not cached (False: read only).

    Returns
    -------
    VolumeCalibration or None
        Per factor the means over its seeds (sample std of the resolution, NaN for one seed).
    """
    from twin.geometry import Geometry

    f0 = Geometry.from_scenario(s).fluence_per_m2
    rows = _volume_points(s, seeds, factors, f0, simulate, scheduler, n_workers, progress)
    if not rows:
        return None
    ms_all = [m for _, ms in rows for m in ms]

    def mean(ms, name):
        """Mean of :class:`VolumeMeasurement` field ``name`` over ``ms``.

        Parameters
        ----------
        ms : list of VolumeMeasurement
        name : str
        """
        return float(np.mean([getattr(m, name) for m in ms]))

    return VolumeCalibration(
        float(f0), [f for f, _ in rows], [mean(ms, "resolution_truth_m") for _, ms in rows],
        [float(np.std([m.resolution_truth_m for m in ms], ddof=1)) if len(ms) > 1
         else math.nan for _, ms in rows],
        [mean(ms, "resolution_split_m") for _, ms in rows],
        [not any(m.unresolved for m in ms) for _, ms in rows], [len(ms) for _, ms in rows],
        [mean(ms, "pcc") for _, ms in rows], int(ms_all[0].n_angles),
        float(ms_all[0].sample_width_m), mean(ms_all, "alignment_residual_x_m"),
        [mean(ms, "fire_xz_split_m") for _, ms in rows],
        [mean(ms, "fire_xz_split_biop_m") for _, ms in rows],
        **_axial_columns(rows), misalignment_rms_m=mean(ms_all, "misalignment_rms_m"))


def _volume_points(s: Scenario, seeds: int, factors, f0: float, simulate: bool,
                   scheduler: str | None, n_workers: int | None, progress: bool) -> list:
    """(fluence f0 × factor, its measurements) of :func:`calibrate_volume`, ascending, for each
    factor with at least one: measured (or read) with ``simulate``, else cached ones only."""
    from twin.workflows import simres

    rows = []
    for f in sorted(factors):
        ms = []
        for k in range(seeds):
            if simulate:
                ms.append(measure_volume(_at(s, f), s.seed + k, scheduler=scheduler,
                                         n_workers=n_workers, progress=progress))
            else:
                hit = simres._cached(_key(sub_volume(_at(s, f)).scenario, s.seed + k, None),
                                     VolumeMeasurement)
                if hit is not None:
                    ms.append(hit)
        if ms:
            rows.append((f0 * f, ms))
    return rows


# ----------------------------------------------------------------------------- forecast

_VOLUME_CALIBRATIONS: dict = {}


def volume_calibration(s: Scenario) -> tuple[VolumeCalibration | None, str]:
    """The shipped or cached sub-volume points of ``s`` (never simulated here), else those of a
    shipped scenario that is ``s`` but for its flux or seed (its points read at ``s``'s
    fluence); remembered for the process.

    Parameters
    ----------
    s : Scenario
        A 3D scenario.

    Returns
    -------
    (VolumeCalibration or None, str)
        The calibration, and the other scenario's name ("" for ``s``'s own or none).
    """
    from twin.scenario import load
    from twin.workflows.simres import FAMILY_EXCLUDE, SCENARIOS

    key = s.model_dump_json(exclude={"name", "description", "sweep", "beamtime"})
    if key not in _VOLUME_CALIBRATIONS:
        found = (calibrate_volume(s, s.resolution.calibration_seeds, simulate=False), "")
        if found[0] is None:
            # the family: same experiment, other flux or seed (tomography counts here)
            excl = {k: v for k, v in FAMILY_EXCLUDE.items() if k != "tomography"}
            fam = s.model_dump_json(exclude=excl)
            for path in sorted(SCENARIOS.glob("*.toml")):
                other = load(path)
                if other.is_3d and other.model_dump_json(exclude=excl) == fam:
                    cal = calibrate_volume(other, other.resolution.calibration_seeds,
                                           simulate=False)
                    if cal is not None:
                        found = (cal, other.name)
                        break
        _VOLUME_CALIBRATIONS[key] = found
    return _VOLUME_CALIBRATIONS[key]


def forecast_values(s: Scenario, values: dict) -> dict:
    """The forecast's 3D keys from a measured sub-volume, where one is shipped or cached
    (:func:`twin.analysis.volume.forecast_keys`); where none was (or ``resolution.model`` is
    not ``"simulated"``) the same keys, None, with the bound kept as ``resolution_3d_bound_m``;
    empty for a 2D scenario.

    Parameters
    ----------
    s : Scenario
        The scenario forecast.
    values : dict
        The forecast's values so far; its ``resolution_3d_forecast_m`` (metres, the analytic
        bound) is kept as ``resolution_3d_bound_m``.
    """
    if not s.is_3d:
        return {}
    cal, source = (volume_calibration(s) if s.resolution.model == "simulated"
                   else (None, ""))
    if cal is None:
        # the same keys with or without a measured volume (a plan's points beside the
        # forecast of its base): none measured, the bound stands
        from twin.analysis.volume import BOUND_CONVENTION, VOLUME_ONLY_KEYS

        return {**dict.fromkeys(VOLUME_ONLY_KEYS), "resolution_3d_convention": BOUND_CONVENTION,
                "resolution_3d_bound_m": values.get("resolution_3d_forecast_m")}
    from twin.analysis.volume import forecast_keys
    from twin.geometry import Geometry

    return forecast_keys(cal, Geometry.from_scenario(s).fluence_per_m2, source,
                         values.get("resolution_3d_forecast_m"))
