"""Acquisition forecast: time, dose, data volume, count rates and resolution of a scenario.

The forecast is split in two so that sweeps of thousands of points stay fast:

* :func:`physical_parameters` turns one validated :class:`~twin.scenario.Scenario` into a flat
  dict of SI numbers (this is where xraylib, the detector preset and the sample geometry are
  consulted, all cached);
* :func:`evaluate` computes every forecast key from such dicts of NumPy arrays at once.

Model (each step is a closed form; see the book's *Forecast model* chapter):

* frames: ⌈fov_x/Δx⌉ frames per line; ⌈fov_y/(Δy·r)⌉ lines shared among the B beams
  (r: overlap relaxation); a projection is the raster plus (lines − 1) turnarounds plus a fixed
  per-projection overhead;
* projections: the scenario's count, or Crowther's ⌈π/2·n⌉ for n voxels across the width;
* data: crop² × bytes per pixel per frame;
* dose: photons × E × (μ_en/μ) × mean absorbed fraction over rays and angles, per irradiated
  mass; photons only while frames are taken;
* count rate: the direct beam fills a disc of diameter zλ/Δr on the detector (the zone plate's
  cone, less the central stop); all beams overlap there;
* resolution: see :class:`twin.scenario.Resolution`; in 3D, also no finer than the voxel at
  which the projection count meets Crowther's criterion, π·W/(2N) (180°, scaled by the
  angular range).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from twin.acquisition import detector as _detector
from twin.sample import dose as _dose
from twin.sample import materials as _materials
from twin.beam import optics as _optics
from twin.workflows.simres import simulated_law
from twin.scenario import Scenario

#: Units of every forecast key, for tables and plots.
UNITS: dict[str, str] = {
    "energy_kev": "keV", "wavelength_m": "m", "frame_rate_hz": "Hz", "exposure_s": "s",
    "frames_per_projection": "", "lines_per_projection": "", "scan_rate_um2_per_s": "µm²/s",
    "scan_time_s": "s", "projection_time_s": "s", "n_projections": "",
    "n_projections_crowther": "", "total_time_s": "s", "total_time_h": "h",
    "total_time_days": "d", "imaged_volume_um3": "µm³", "volume_rate_um3_per_s": "µm³/s",
    "frame_bytes": "B", "data_volume_bytes": "B", "data_rate_bytes_per_s": "B/s",
    "dose_gy": "Gy", "energy_deposited_j": "J", "photons_total": "",
    "fluence_photons_per_um2": "ph/µm²", "pixel_size_m": "m", "resolution_limit_m": "m",
    "resolution_forecast_m": "m", "resolution_3d_forecast_m": "m",
    "crowther_resolution_m": "m", "peak_count_rate_per_pixel_hz": "Hz",
    "peak_recorded_rate_per_pixel_hz": "Hz", "count_rate_loss_fraction": "",
    "detector_max_count_rate_per_pixel_hz": "Hz", "peak_counts_per_frame": "",
    "detector_max_counts": "", "saturated": "", "zone_plate_focal_length_m": "m",
    "beam_diameter_m": "m", "defocus_m": "m", "depth_of_focus_m": "m",
    "overlap_fast": "", "overlap_slow": "", "position_interpolation_factor": "",
    "flux_photons_per_s": "ph/s", "beam_on_time_s": "s", "peak_local_dose_gy": "Gy",
    "data_volume_full_frame_bytes": "B", "compression_ratio": "",
    "data_volume_compressed_bytes": "B", "resolution_simulated_m": "m",
    "resolution_simulated_std_m": "m", "resolution_exponent_k": "",
    "resolution_exponent_k_std": "", "resolution_exponent_k_detector": "",
    "resolution_turnover_fluence_photons_per_um2": "ph/µm²", "resolution_extrapolated": "",
    "resolution_3d_worst_m": "m",
    "missing_wedge_elongation": "", "depth_of_field_m": "m",
    "projection_approximation_ok": "", "dose_limited_3d_resolution_m": "m",
    "resolution_forecast_fire_m": "m", "resolution_3d_forecast_fire_m": "m",
    "resolution_resolved": "", "resolution_cliff_fluence_photons_per_um2": "ph/µm²",
    "resolution_seeds": "", "resolution_patch_frames": "", "resolution_patch_fluence_ratio": "",
    "simulation_core_hours": "core·h", "simulation_gpu_hours": "GPU·h",
    "reconstruction_core_hours": "core·h", "reconstruction_gpu_hours": "GPU·h",
    "shifts": "shifts", "sample_overhead_s": "s", "dose_limit_gy": "Gy",
    "dose_limit_exceeded": "", "data_rate_limit_bytes_per_s": "B/s", "data_rate_exceeded": "",
    "resolution_3d_bound_m": "m", "resolution_3d_split_m": "m", "resolution_3d_resolved": "",
    "resolution_3d_split_xz_fire_m": "m", "resolution_3d_split_xz_biop_fire_m": "m",
    "simulated_volume_width_m": "m", "simulated_volume_projections": "",
    "simulated_volume_seeds": "", "simulated_volume_alignment_residual_m": "m",
}

#: One shift of beamtime: 8 hours, the unit proposals request time in.
SHIFT_S = 8 * 3600.0
#: The feasibility flags (CONTRACTS §2 ``flags``) and the boolean forecast key behind each.
FLAG_KEYS: dict[str, str] = {"saturated": "saturated", "dose_limit": "dose_limit_exceeded",
                             "data_rate": "data_rate_exceeded",
                             "unresolved": "resolution_unresolved",
                             "uncalibrated": "resolution_uncalibrated"}


def flags(values: dict) -> list[list[str]]:
    """The feasibility flags of every point of :func:`evaluate`'s output (or of one forecast's
    values): a list of flag names per point, empty where the point is feasible."""
    cols = {name: np.atleast_1d(np.asarray(values[key], dtype=bool))
            for name, key in FLAG_KEYS.items()}
    n = len(next(iter(cols.values())))
    return [[name for name, col in cols.items() if col[i]] for i in range(n)]


def flag_message(name: str, v: dict) -> str:
    """One line saying why flag ``name`` is raised, from one forecast's values."""
    if name == "saturated":
        return (f"detector saturated: peak {v['peak_count_rate_per_pixel_hz']:.3g} counts/s "
                f"and {v['peak_counts_per_frame']:.3g} counts per frame on one pixel, against "
                f"the mode's {v['detector_max_count_rate_per_pixel_hz']:.3g} counts/s and "
                f"{v['detector_max_counts']:g} counts")
    if name == "uncalibrated":
        return v["resolution_calibration"]
    if name == "unresolved":
        return (f"unresolved: {v['fluence_photons_per_um2']:.3g} ph/µm² per projection lies "
                f"below the cliff at {v['resolution_cliff_fluence_photons_per_um2']:.3g} "
                "ph/µm², the lowest fluence at which every simulated seed resolved")
    if name == "dose_limit":
        return (f"dose {v['dose_gy']:.3g} Gy exceeds beamtime.dose_limit_gy = "
                f"{v['dose_limit_gy']:.3g} Gy")
    return (f"data rate {v['data_rate_bytes_per_s']:.3g} B/s exceeds "
            f"beamtime.data_rate_limit_bytes_per_s = {v['data_rate_limit_bytes_per_s']:.3g} B/s")


@lru_cache(maxsize=1024)
def _absorbed(shape: str, size_x_m: float, size_z_m: float, fov_width_m: float,
              angular_range_deg: float, is_3d: bool, mu_per_m: float) -> float:
    angles = (np.deg2rad(np.linspace(0, angular_range_deg, 64, endpoint=False))
              if is_3d else np.zeros(1))
    return _dose.field_absorbed_fraction(mu_per_m, shape, size_x_m, size_z_m, fov_width_m,
                                         angles)


def physical_parameters(s: Scenario, sim=None) -> dict[str, float]:
    """Flat SI parameters of one scenario for :func:`evaluate`."""
    from twin.geometry import Geometry

    g = Geometry.from_scenario(s)
    det = g.detector
    lam = g.wavelength_m
    bulk = _materials.lookup(s.sample.material, s.beam.energy_kev, s.sample.density_g_per_cm3)
    fov_x, fov_y = g.fov_x_m, g.fov_y_m
    ext = g.sample_extent
    size_x, size_z = ext.width_m, ext.depth_m
    h_eff = min(ext.height_m, fov_y)
    is_3d = s.is_3d
    f_abs = _absorbed(s.sample.shape, size_x, size_z, fov_x, s.tomography.angular_range_deg,
                      is_3d, bulk.mu_per_m) * h_eff / fov_y
    # Irradiated mass: the part of the sample the rotating (or fixed) field of view crosses.
    if s.sample.shape == "cylinder":
        d = min(size_x, fov_x)
        cross = math.pi / 4 * d * d if (is_3d or size_x <= fov_x) else d * size_z
    else:
        cross = min(size_x, fov_x) * (min(size_z, fov_x) if is_3d else size_z)
    mass = bulk.material.density_g_per_cm3 * 1e3 * cross * h_eff

    zp_d, dr = g.zone_plate_diameter_m, g.outermost_zone_m
    f, defocus, beam_d = g.focal_length_m, g.defocus_m, g.beam_diameter_m
    p_eff = g.pixel_stored_m
    n_crop = g.n_stored
    disc = float(_optics.far_field_disc_diameter_m(dr, lam, g.distance_m))
    stop = (g.central_stop_m / zp_d) ** 2
    disc_pixels = (n_crop ** 2 if s.optics.diffuser
                   else max(1.0, math.pi / 4 * (disc / p_eff) ** 2 * (1 - stop)))

    n_proj = s.tomography.n_projections
    res = s.resolution
    model = {"pixel": 0, "howells": 1, "rose": 2, "simulated": 3}[res.model]
    # a sweep passes its base scenario's calibration: d(F) of that point, evaluated at each
    # point's fluence (``twin sweep --simulate`` measures every point instead)
    if res.model != "simulated":
        sim = None
    elif sim is None:
        sim = calibration(s)
    # the sample's widest extent across the beam over the rotation (Crowther's D), and its
    # thickness along the beam (projection approximation)
    if s.sample.shape == "cylinder":
        width_across = size_x
    else:
        width_across = math.hypot(size_x, size_z) if is_3d else size_x
    thickness = max(size_x, size_z) if is_3d else size_z
    full_px = det.pixels_x * det.pixels_y / det.binning ** 2
    contrast2 = math.nan
    if res.model == "rose":
        a = _materials.lookup(res.feature_material, s.beam.energy_kev)
        b = _materials.lookup(res.background_material, s.beam.energy_kev)
        contrast2 = (a.delta - b.delta) ** 2 + (a.beta - b.beta) ** 2
    ref_fluence = (res.reference_flux_photons_per_s / (res.reference_scan_rate_um2_per_s * 1e-12)
                   if res.model == "howells" else math.nan)
    return {
        "energy_kev": s.beam.energy_kev,
        "wavelength_m": lam,
        "flux_photons_per_s": s.beam.flux_photons_per_s,
        "frame_rate_hz": s.scan.frame_rate_hz,
        "exposure_s": s.exposure_s,
        "step_mode": 1.0 if s.scan.mode == "step" else 0.0,
        "step_settle_s": s.scan.step_settle_s,
        "fov_x_m": fov_x,
        "fov_y_m": fov_y,
        "fast_step_m": g.fast_step_m,
        "slow_step_m": g.slow_step_m / s.scan.overlap_relaxation,
        "frames_per_line": float(g.frames_per_line),
        "lines_per_beam": float(g.lines_per_beam),
        "object_pixel_m": g.object_pixel_m,
        "n_beams": float(s.scan.n_beams),
        "overlap_relaxation": s.scan.overlap_relaxation,
        "line_turnaround_s": s.scan.line_turnaround_s,
        "projection_overhead_s": s.scan.projection_overhead_s,
        "position_capture_rate_hz": s.scan.position_capture_rate_hz,
        "n_projections_requested": (-1.0 if n_proj == "crowther" else float(n_proj)),
        "tomo_voxel_m": s.tomography.voxel_size_m or math.nan,
        "angular_range_deg": s.tomography.angular_range_deg,
        "distance_m": s.detector.distance_m,
        "pixel_eff_m": p_eff,
        "n_crop": float(n_crop),
        "active_width_m": det.active_width_m,
        "bytes_per_pixel": float(det.bytes_per_pixel),
        "binning": float(det.binning),
        "max_count_rate_hz": det.max_count_rate_per_pixel_hz,
        "max_counts": float(det.max_counts),
        "dead_time_s": det.dead_time_s,
        "mu_en_over_mu": bulk.mu_en_per_m / bulk.mu_per_m,
        "absorbed_fraction": f_abs,
        "mass_kg": mass,
        "zone_plate_focal_length_m": f,
        "zone_plate_outermost_zone_m": dr,
        "defocus_m": defocus,
        "beam_diameter_m": beam_d,
        "disc_pixels": disc_pixels,
        "resolution_model": float(model),
        "reference_resolution_m": res.reference_resolution_m or math.nan,
        "reference_fluence_per_m2": ref_fluence,
        "rose_contrast2": contrast2,
        "rose_snr": res.snr,
        "sim_d0_m": sim.d0_m if sim else math.nan,
        "sim_d0_std_m": sim.d0_std_m if sim else math.nan,
        "sim_k": sim.k if sim else math.nan,
        "sim_k_std": sim.k_std if sim else math.nan,
        "sim_f0_per_m2": sim.f0_photons_per_m2 if sim else math.nan,
        "sim_f_turn_per_m2": sim.f_turn_photons_per_m2 if sim else math.inf,
        "sim_k_high": sim.k_high if sim else math.nan,
        # the law holds between the fluences every seed resolved; below the cliff, nothing
        "sim_f_min_per_m2": (min(sim.fully_resolved_fluences(), default=math.nan) if sim
                             else math.nan),
        "sim_f_max_per_m2": max(sim.resolved_fluences(), default=math.nan) if sim else math.nan,
        "sim_f_cliff_per_m2": sim.cliff_fluence() if sim else math.nan,
        "sim_seeds": float(sim.seeds) if sim else math.nan,
        **_patch_params(s, g, sim is not None),
        **_cost_params(s, g),
        "shutter": {"none": 0.0, "per_line": 1.0, "per_frame": 2.0}[s.scan.shutter],
        "sample_width_m": width_across,
        "sample_thickness_m": thickness,
        "full_frame_pixels": float(full_px),
        "compression_ratio": math.nan,     # filled by forecast() / the sweep from a simulation
        "mu_en_over_rho_m2_per_kg": bulk.mu_en_per_m / (bulk.material.density_g_per_cm3 * 1e3),
        "sample_overhead_s": s.beamtime.alignment_overhead_s + s.beamtime.sample_change_overhead_s,
        "dose_limit_gy": s.beamtime.dose_limit_gy or math.inf,
        "data_rate_limit_bytes_per_s": s.beamtime.data_rate_limit_bytes_per_s or math.inf,
    }


def _patch_params(s: Scenario, g, simulated: bool) -> dict[str, float]:
    """The calibration patch's size, frames and fluence ratio (NaN unless simulated)."""
    if not simulated:
        return {"patch_x_m": math.nan, "patch_y_m": math.nan, "patch_frames": math.nan,
                "patch_fluence_ratio": math.nan}
    from twin.workflows.simres import patch_summary

    ps = patch_summary(s, g)
    return {"patch_x_m": ps.size_m[0], "patch_y_m": ps.size_m[1],
            "patch_frames": float(ps.frames), "patch_fluence_ratio": ps.fluence_ratio}


def _cost_params(s: Scenario, g) -> dict[str, float]:
    """Measured seconds per simulated frame and per reconstructed frame-iteration
    (:mod:`twin.analysis.costs`), on a CPU core and on a GPU."""
    from twin.analysis import costs
    from twin.geometry import reconstruction_options

    opts = reconstruction_options(s)
    sim = costs.simulation_work(g.oversampling ** 2 * g.n_native, g.n_beams, g.blur_samples(s),
                                g.simulated_modes(s), g.multislice_slices(s))
    rec = costs.reconstruction_work(g.n_native, g.n_beams,
                                    opts.modes or g.simulated_modes(s), max(opts.slices, 1))
    return {
        "sim_core_s_per_frame": costs.seconds_per_unit(sim, "simulation", "cpu"),
        "sim_gpu_s_per_frame": costs.seconds_per_unit(sim, "simulation", "gpu"),
        "rec_core_s_per_frame_iteration": costs.seconds_per_unit(rec, "reconstruction", "cpu"),
        "rec_gpu_s_per_frame_iteration": costs.seconds_per_unit(rec, "reconstruction", "gpu"),
        "rec_iterations": float(opts.iterations),
    }


def fluence_per_m2(s: Scenario) -> float:
    """Incident photons per unit area of one projection (the forecast's F)."""
    from twin.geometry import Geometry

    return Geometry.from_scenario(s).fluence_per_m2


_CALIBRATIONS: dict = {}
#: Below this fitted exponent k (half of the dose-limited 1/4 of Howells et al. 2009) the
#: simulated resolution is called limited by the reconstruction rather than by the dose.
FLAT_EXPONENT = 0.125


def calibration(s: Scenario, simulate: bool = False, scheduler: str | None = None,
                n_workers: int | None = None, progress: bool = False):
    """The simulated d(F) calibration of scenario ``s`` (``resolution.model = "simulated"``).

    Read from its simulated points, shipped with twin or cached on disk by
    :mod:`twin.workflows.simres`, and kept in memory here. A forecast never simulates: where
    points are missing this raises, naming the scenario, the command that calibrates it
    (``twin calibrate``) and its cost, unless ``simulate`` (the explicit step,
    :func:`twin.workflows.calibrate.run`) computes them, on ``scheduler`` or ``n_workers``
    local workers.

    Raises
    ------
    TwinInputError
        Points are missing and ``simulate`` is false (exit status 2 on the command line).
    """
    from twin.workflows import simres

    key = s.model_dump_json(exclude={"name", "description", "sweep", "beamtime"})
    if key not in _CALIBRATIONS:
        base = s.model_copy(update={"sweep": {}})
        seeds = s.resolution.calibration_seeds
        if not simulate and simres.missing_points(base, seeds):
            # the same experiment at another flux or seed: its shipped d(F), read at this
            # scenario's fluence (as a sweep does); else no resolution, said by a flag
            return family_calibration(s)
        _CALIBRATIONS[key] = simres.calibrate(base, seeds=seeds, scheduler=scheduler,
                                              n_workers=n_workers, progress=progress)
    return _CALIBRATIONS[key]


#: Fields a calibration's d(F) does not depend on beyond the fluence it is read at (the flux),
#: or that only label it (the seed's noise; a 3D scan's projections, which the 2D patch ignores).
FAMILY_EXCLUDE = {"name": True, "description": True, "sweep": True, "beamtime": True,
                  "run": True, "seed": True, "tomography": True,
                  "beam": {"flux_photons_per_s"}}


def family_calibration(s: Scenario):
    """The calibration of a shipped scenario that is ``s`` but for its flux, seed or projections
    (its d(F) is read at ``s``'s own fluence, the fluence range it was simulated over stated by
    ``resolution_extrapolated``), or None where no shipped scenario is."""
    from twin.scenario import load
    from twin.workflows import simres

    key = s.model_dump_json(exclude=FAMILY_EXCLUDE)
    for path in sorted(SCENARIOS.glob("*.toml")):
        other = load(path)
        if (other.resolution.model == "simulated"
                and other.model_dump_json(exclude=FAMILY_EXCLUDE) == key
                and not simres.missing_points(other, other.resolution.calibration_seeds)):
            cal = calibration(other)
            return dataclasses.replace(cal, source=other.name)
    return None


#: The scenarios that ship with twin (their calibrations are in ``twin/data/simulated``).
SCENARIOS = Path(__file__).resolve().parents[1] / "data" / "scenarios"


def compression_ratio(s: Scenario) -> float:
    """Raw/bitshuffle-LZ4 size of the scenario's simulated frames: those of its calibration
    point at its own fluence (``resolution.model = "simulated"``; NaN otherwise)."""
    if s.resolution.model != "simulated":
        return math.nan
    cal = calibration(s)
    return float(cal.compression_ratio) if cal is not None else math.nan


def stack(params: list[dict[str, float]]) -> dict[str, np.ndarray]:
    """Column arrays from a list of :func:`physical_parameters` dicts."""
    keys = params[0].keys()
    return {k: np.array([p[k] for p in params], dtype=float) for k in keys}


def _ceil(x):
    """Ceiling that forgives the rounding of steps written with a few decimals (1e-6 relative)."""
    return np.ceil(np.asarray(x) * (1 - 1e-6))


def evaluate(p: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Every forecast key from column arrays of physical parameters (vectorised)."""
    lam = p["wavelength_m"]
    frames_per_line = p["frames_per_line"]      # counted once, in twin.geometry
    lines = p["lines_per_beam"]
    frames = frames_per_line * lines
    period = 1.0 / p["frame_rate_hz"]
    scan_time = frames * (period + p["step_mode"] * p["step_settle_s"])
    projection_time = (scan_time + (lines - 1) * p["line_turnaround_s"]
                       + p["projection_overhead_s"])
    scan_rate_m2 = p["fov_x_m"] * p["fov_y_m"] / scan_time

    pixel = p["object_pixel_m"]
    voxel = np.where(np.isnan(p["tomo_voxel_m"]), pixel, p["tomo_voxel_m"])
    width_px = _ceil(p["fov_x_m"] / voxel)
    crowther = np.ceil(np.pi / 2 * width_px)
    req = p["n_projections_requested"]
    is_3d = req != 0
    n_proj = np.where(req < 0, crowther, np.where(is_3d, req, 1.0))
    # once per sample: alignment and sample change (scenario [beamtime]); no beam on the sample
    total_time = n_proj * projection_time + p["sample_overhead_s"]
    volume = np.where(is_3d, p["fov_x_m"] ** 2 * p["fov_y_m"], np.nan)

    frame_bytes = p["n_crop"] ** 2 * p["bytes_per_pixel"]
    # beam-on time per projection: everything unless a shutter closes (scenario scan.shutter)
    shutter = p["shutter"]
    beam_on = np.where(shutter == 0, projection_time,
                       np.where(shutter == 1, scan_time, frames * p["exposure_s"]))
    photons = p["flux_photons_per_s"] * n_proj * beam_on
    # photons that reach the sample: the raster's, plus (no shutter) the turnarounds' and the
    # overheads' where the field's edges lie inside the sample (narrower than it)
    raster_on = np.where(shutter == 2, frames * p["exposure_s"], scan_time)
    # the parked beam sits at the field's edges: on the sample where the field is no wider
    inside = p["fov_x_m"] <= p["sample_width_m"] * (1 + 1e-9)
    parked_time = np.where((shutter == 0) & inside, projection_time - scan_time, 0.0)
    photons_on_sample = p["flux_photons_per_s"] * n_proj * (raster_on + parked_time)
    energy = _dose.energy_deposited_j(photons_on_sample, p["energy_kev"], p["mu_en_over_mu"],
                                      p["absorbed_fraction"])
    # peak local dose: the fluence at the most irradiated point times E·μ_en/ρ. The raster
    # spreads the line time evenly; with no shutter each turnaround parks the beam at a line's
    # end (every other line on each side, beam_d/(2Δy) of them overlapping one spot), inside
    # the sample only where the field is narrower than the sample. In 3D every projection
    # covers a voxel inside the field; a parked spot on the field's edge (radius W/2) moves by
    # (W/2)·Δθ per projection, so min(N, beam_d / ((W/2)·Δθ)) parked spots fall on one voxel.
    area = p["fov_x_m"] * p["fov_y_m"]
    beam_area = np.pi / 4 * p["beam_diameter_m"] ** 2
    per_spot = np.maximum(1.0, p["beam_diameter_m"] / (2 * p["slow_step_m"]
                                                       * p["overlap_relaxation"]))
    parked = np.where((shutter == 0) & inside,
                      p["flux_photons_per_s"] * p["line_turnaround_s"] * per_spot / beam_area,
                      0.0)
    dtheta = np.deg2rad(p["angular_range_deg"]) / np.maximum(n_proj, 1)
    hits = np.where(is_3d, np.minimum(n_proj, np.maximum(
        1.0, p["beam_diameter_m"] / (0.5 * p["fov_x_m"] * dtheta))), 1.0)
    local_fluence = n_proj * p["flux_photons_per_s"] * raster_on / area + hits * parked
    e_photon = p["energy_kev"] * 1e3 * 1.602176634e-19
    peak_dose = local_fluence * e_photon * p["mu_en_over_rho_m2_per_kg"]

    peak_rate = p["flux_photons_per_s"] / p["disc_pixels"]
    recorded = _detector.binned_recorded_rate(peak_rate, p["dead_time_s"], p["binning"])
    peak_counts = peak_rate * p["exposure_s"]

    # Fluence per projection: photons per unit area of one projection.
    fluence = p["flux_photons_per_s"] * frames * p["exposure_s"] / (p["fov_x_m"] * p["fov_y_m"])
    k = 2 * np.pi / lam
    model = p["resolution_model"]

    def dose_limited(f, total: bool = False):
        # total: the fluence of all projections (dose fractionation). The simulated curve's
        # detector-limited side (above its turnover, or a negative k) comes from what more flux
        # does to each frame (count-rate losses, counter overflow), which spreading the same
        # flux over more projections does not do: the total dose follows the dose-limited law
        # (k ≥ 0 there), and each projection's detector penalty is applied on top of it below
        if total:
            sim_f = simulated_law(f, p["sim_d0_m"], p["sim_f0_per_m2"],
                                  np.maximum(p["sim_k"], 0.0))
        else:
            sim_f = simulated_law(f, p["sim_d0_m"], p["sim_f0_per_m2"], p["sim_k"],
                                  p["sim_f_turn_per_m2"], p["sim_k_high"])
        with np.errstate(divide="ignore", invalid="ignore"):
            howells_f = p["reference_resolution_m"] * (f / p["reference_fluence_per_m2"]) ** -0.25
            rose_f = (p["rose_snr"] ** 2 / (4 * f * k ** 2 * p["rose_contrast2"])) ** 0.25
        return np.where(model == 1, howells_f, np.where(model == 2, rose_f,
                                                        np.where(model == 3, sim_f, pixel)))

    # what the detector costs each projection at its own fluence F: the simulated curve over
    # the dose-limited law at F (1 below the turnover); frames that lose counts stay as bad
    # however the dose is fractionated, so the 3D dose limit carries the same factor
    per_projection = dose_limited(fluence)
    with np.errstate(divide="ignore", invalid="ignore"):
        detector_penalty = np.where(model == 3, np.maximum(
            1.0, per_projection / dose_limited(fluence, total=True)), 1.0)
    detector_penalty = np.where(np.isfinite(detector_penalty), detector_penalty, 1.0)

    # below the cliff (the lowest fluence at which every simulated seed resolved, above one at
    # which some seed failed) the twin's points say the reconstruction fails: no number
    cliff = p["sim_f_cliff_per_m2"]
    unresolved = (model == 3) & np.isfinite(cliff) & (fluence < cliff * (1 - 1e-9))
    resolution = np.where(unresolved, np.nan, np.maximum(per_projection, pixel))
    at_f0 = (model == 3) & np.isclose(fluence, p["sim_f0_per_m2"], rtol=1e-9)

    # 3D. Dose fractionation (Hegerl & Hoppe 1976): the 3D reconstruction from N projections of
    # fluence F each reaches the resolution one projection of fluence N·F would, so the total
    # fluence sets the dose limit. Crowther: N projections over the angular range Θ resolve
    # d = D·Δθ/2, Δθ = Θ/N, D the sample's widest extent across the beam (π·D/(2N) over 180°).
    # A missing wedge (Θ < 180°) elongates the resolution along the beam direction by
    # e = √((α + sin α cos α)/(α − sin α cos α)), α = Θ/2 (Radermacher 1988); more projections
    # over the same range do not remove it. resolution_3d_forecast_m is the directional mean
    # d·e^(1/3) (what a Fourier shell correlation averages), resolution_3d_worst_m is d·e.
    voxel_3d = np.maximum(voxel, pixel)
    dose_3d = np.maximum(dose_limited(fluence * n_proj, total=True) * detector_penalty, pixel)
    theta = np.deg2rad(np.minimum(p["angular_range_deg"], 360.0))
    crowther_d = p["sample_width_m"] * (theta / np.maximum(n_proj, 1)) / 2
    alpha = np.minimum(theta, np.pi) / 2
    sc = np.sin(alpha) * np.cos(alpha)
    with np.errstate(divide="ignore", invalid="ignore"):
        wedge = np.where(theta >= np.pi, 1.0, np.sqrt((alpha + sc) / (alpha - sc)))
    best_3d = np.maximum(np.maximum(dose_3d, crowther_d), voxel_3d)
    resolution_3d = np.where(is_3d & ~unresolved, best_3d * wedge ** (1 / 3), np.nan)
    limited_3d = np.where(np.isnan(dose_3d), np.nan,
                          np.where(dose_3d >= np.maximum(crowther_d, voxel_3d), 0.0,
                                   np.where(crowther_d >= voxel_3d, 1.0, 2.0)))
    # projection approximation: thickness within the depth of field 5.2·d²/λ at the forecast
    # resolution (Tsai et al. 2016); beyond it a multislice model is needed
    dof = 5.2 * resolution ** 2 / lam
    dose_gy = _dose.dose_gy(energy, p["mass_kg"])
    data_rate = frame_bytes * p["frame_rate_hz"]
    saturated = (peak_rate > p["max_count_rate_hz"]) | (peak_counts > p["max_counts"])
    beam_d = p["beam_diameter_m"]
    return {
        "energy_kev": p["energy_kev"],
        "wavelength_m": lam,
        "frame_rate_hz": p["frame_rate_hz"],
        "exposure_s": p["exposure_s"],
        "frames_per_projection": frames,
        "lines_per_projection": lines,
        "scan_rate_um2_per_s": scan_rate_m2 * 1e12,
        "scan_time_s": scan_time,
        "projection_time_s": projection_time,
        "n_projections": n_proj,
        "n_projections_crowther": crowther,
        "total_time_s": total_time,
        "total_time_h": total_time / 3600,
        "total_time_days": total_time / 86400,
        "shifts": total_time / SHIFT_S,
        "sample_overhead_s": p["sample_overhead_s"],
        "imaged_volume_um3": volume * 1e18,
        "volume_rate_um3_per_s": volume * 1e18 / total_time,
        "frame_bytes": frame_bytes,
        "data_volume_bytes": frame_bytes * frames * n_proj,
        "data_rate_bytes_per_s": data_rate,
        "photons_total": photons,
        "flux_photons_per_s": p["flux_photons_per_s"],
        "beam_on_time_s": n_proj * beam_on,
        "peak_local_dose_gy": peak_dose,
        "data_volume_full_frame_bytes": p["full_frame_pixels"] * p["bytes_per_pixel"] * frames
        * n_proj,
        "compression_ratio": p["compression_ratio"],
        "data_volume_compressed_bytes": frame_bytes * frames * n_proj / p["compression_ratio"],
        # measured values exist only at the calibration's own fluence F0
        "resolution_simulated_m": np.where(at_f0, per_projection, np.nan),
        # (the fit's standard error belongs to the dose-limited side)
        "resolution_simulated_std_m": np.where(at_f0 & (fluence <= p["sim_f_turn_per_m2"]),
                                               p["sim_d0_std_m"], np.nan),
        "resolution_exponent_k": np.where(model == 3, p["sim_k"], np.nan),
        "resolution_exponent_k_std": np.where(model == 3, p["sim_k_std"], np.nan),
        "resolution_exponent_k_detector": np.where(model == 3, p["sim_k_high"], np.nan),
        # the simulated curve used outside the fluences the twin simulated: at this fluence,
        # or (3D dose fractionation) at the total fluence of all projections
        "resolution_extrapolated": (model == 3) & (
            (fluence < p["sim_f_min_per_m2"] * (1 - 1e-9))
            | (fluence > p["sim_f_max_per_m2"] * (1 + 1e-9))
            | (is_3d & (fluence * n_proj > p["sim_f_max_per_m2"] * (1 + 1e-9)))),
        "resolution_resolved": ~unresolved,
        "resolution_unresolved": unresolved,
        "resolution_uncalibrated": (model == 3) & ~np.isfinite(p["sim_d0_m"]),
        "resolution_cliff_fluence_photons_per_um2": np.where(model == 3, cliff * 1e-12, np.nan),
        "resolution_seeds": np.where(model == 3, p["sim_seeds"], np.nan),
        "resolution_patch_frames": p["patch_frames"],
        "resolution_patch_fluence_ratio": p["patch_fluence_ratio"],
        "resolution_turnover_fluence_photons_per_um2": np.where(
            (model == 3) & np.isfinite(p["sim_f_turn_per_m2"]),
            p["sim_f_turn_per_m2"] * 1e-12, np.nan),
        "resolution_3d_worst_m": np.where(is_3d, best_3d * wedge, np.nan),
        "missing_wedge_elongation": np.where(is_3d, wedge, np.nan),
        "resolution_3d_limited_by_code": np.where(is_3d, limited_3d, np.nan),
        "depth_of_field_m": dof,
        "projection_approximation_ok": p["sample_thickness_m"] <= dof,
        "energy_deposited_j": energy,
        "dose_gy": dose_gy,
        "fluence_photons_per_um2": fluence * 1e-12,
        "pixel_size_m": pixel,
        "resolution_limit_m": lam * p["distance_m"] / p["active_width_m"],
        "resolution_forecast_m": resolution,
        "resolution_3d_forecast_m": resolution_3d,
        # what simulating and reconstructing every frame of the acquisition would take
        "simulation_core_hours": n_proj * frames * p["sim_core_s_per_frame"] / 3600,
        "simulation_gpu_hours": n_proj * frames * p["sim_gpu_s_per_frame"] / 3600,
        "reconstruction_core_hours": n_proj * frames * p["rec_iterations"]
        * p["rec_core_s_per_frame_iteration"] / 3600,
        "reconstruction_gpu_hours": n_proj * frames * p["rec_iterations"]
        * p["rec_gpu_s_per_frame_iteration"] / 3600,
        # the same crossings as full periods 1/f (the FIRE number, Nieuwenhuizen et al. 2013)
        "resolution_forecast_fire_m": 2 * resolution,
        "resolution_3d_forecast_fire_m": 2 * resolution_3d,
        "crowther_resolution_m": np.where(is_3d, crowther_d, np.nan),
        "dose_limited_3d_resolution_m": np.where(is_3d, dose_3d, np.nan),
        "peak_count_rate_per_pixel_hz": peak_rate,
        "peak_recorded_rate_per_pixel_hz": recorded,
        "count_rate_loss_fraction": 1 - recorded / peak_rate,
        "detector_max_count_rate_per_pixel_hz": p["max_count_rate_hz"],
        "peak_counts_per_frame": peak_counts,
        "detector_max_counts": p["max_counts"],
        "saturated": saturated,
        "dose_limit_gy": p["dose_limit_gy"],
        "dose_limit_exceeded": dose_gy > p["dose_limit_gy"],
        "data_rate_limit_bytes_per_s": p["data_rate_limit_bytes_per_s"],
        "data_rate_exceeded": data_rate > p["data_rate_limit_bytes_per_s"],
        "zone_plate_focal_length_m": p["zone_plate_focal_length_m"],
        "beam_diameter_m": beam_d,
        "defocus_m": p["defocus_m"],
        "depth_of_focus_m": _optics.depth_of_focus_m(p["zone_plate_outermost_zone_m"], lam),
        "overlap_fast": 1 - p["fast_step_m"] / beam_d,
        "overlap_slow": 1 - p["slow_step_m"] * p["overlap_relaxation"] / beam_d,
        "position_interpolation_factor": np.maximum(
            1.0, p["frame_rate_hz"] / p["position_capture_rate_hz"]),
    }


_INT_KEYS = {"frames_per_projection", "lines_per_projection", "n_projections",
             "n_projections_crowther", "frame_bytes", "data_volume_bytes",
             "data_volume_full_frame_bytes", "resolution_seeds", "resolution_patch_frames"}
_MODEL_NAMES = {0: "pixel size (no dose model)",
                1: "Howells et al. 2009: d = d_ref (F/F_ref)^(-1/4), F fluence per projection",
                2: "Rose criterion: d = (snr^2 / (4 F k^2 |dn|^2))^(1/4), F fluence per "
                   "projection",
                3: "simulated: d = d0 (F/F0)^(-k) fitted to FRC half-bit resolutions twin "
                   "measured on its own simulated, reconstructed patches (no paper anchor); "
                   "above a turnover, where the points get worse with flux, d follows them "
                   "instead"}


@dataclass(frozen=True)
class Forecast:
    """The forecast of one scenario: :attr:`values` holds every key of :data:`UNITS`."""

    scenario: str
    values: dict

    def as_dict(self) -> dict:
        return {"scenario": self.scenario, **self.values}


def _scalar(key: str, v):
    v = v.item() if hasattr(v, "item") else v
    if key in ("saturated", "projection_approximation_ok", "resolution_extrapolated",
               "resolution_resolved", "dose_limit_exceeded", "data_rate_exceeded"):
        return bool(v)
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if key in _INT_KEYS:
        return int(v)
    return float(v)


#: What a 3D figure is, where no simulated volume measured it (``resolution_3d_method``).
BOUND_3D = "bound: max(Crowther, dose fractionation of the 2D law, voxel) x missing wedge"


def _conventions(s: Scenario, p: dict, cal_from: str) -> dict:
    """The convention every resolution key is in: threshold, method, the simulated patch, and
    whose calibration it reads (``cal_from``: another scenario's name, or "" for its own)."""
    simulated = s.resolution.model == "simulated"
    out = {
        "resolution_threshold": "half-bit" if simulated else None,
        "resolution_convention": (
            "half period 1/(2f) at the FRC's half-bit crossing against the twin's ground "
            "truth (keys ending _fire_m: the full period 1/f, the FIRE number)" if simulated
            else "half period 1/(2f) of the model named in resolution_model (no FRC)"),
        "resolution_patch_size_m": ([float(p["patch_x_m"]), float(p["patch_y_m"])]
                                    if simulated else None),
    }
    out["resolution_3d_method"] = BOUND_3D if s.is_3d else None
    if not simulated:
        out["resolution_calibration"] = None
    elif not math.isfinite(p["sim_d0_m"]):
        from twin.workflows import calibrate

        base = s.model_copy(update={"sweep": {}})
        out["resolution_calibration"] = calibrate.missing_message(s, calibrate.estimate(base))
    else:
        out["resolution_calibration"] = (f"from {cal_from} (its d(F) at this fluence)"
                                         if cal_from else "own")
    return out


def forecast(s: Scenario, sim=None) -> Forecast:
    """Forecast of one scenario.

    ``sim``: ``resolution.model = "simulated"``: a calibration to use instead of the
    scenario's own (:func:`calibration`, which simulates what is not cached); the planner
    passes one so that it never starts a simulation.
    """
    if s.resolution.model == "simulated" and sim is None:
        sim = calibration(s)
    p = physical_parameters(s, sim)
    if s.resolution.model == "simulated":       # frames are simulated anyway
        p["compression_ratio"] = (float(sim.compression_ratio) if sim is not None
                                  else compression_ratio(s))
    out = evaluate(stack([p]))
    values = {k: _scalar(k, v[0]) for k, v in out.items()}
    values["flags"] = flags(out)[0]
    values.pop("resolution_unresolved", None)       # said by resolution_resolved and flags
    values.pop("resolution_uncalibrated", None)     # said by flags
    values["resolution_model"] = _MODEL_NAMES[int(p["resolution_model"])]
    values.update(_conventions(s, p, getattr(sim, "source", "")))
    code = values.pop("resolution_3d_limited_by_code", None)
    if code is not None:
        values["resolution_3d_limited_by"] = ("dose (all projections)", "Crowther (projection "
                                              "count)", "voxel size")[int(code)]
        k3 = values.get("resolution_exponent_k")
        if int(code) == 0 and s.resolution.model == "simulated" and k3 is not None and k3 <= 0:
            values["resolution_3d_limited_by"] = (
                "each projection's reconstruction (the simulated resolution does not improve "
                "with dose, so neither does the total dose)")
    k = values.get("resolution_exponent_k")
    f_turn = values.get("resolution_turnover_fluence_photons_per_um2")
    k_hi = values.get("resolution_exponent_k_detector")
    worse = ("no longer improves" if k_hi is None or k_hi > -0.005 else
             f"gets worse with flux (d ∝ F^{-k_hi:+.2f}: count-rate losses and saturation, or a reconstruction that no longer converges)")
    turn = "" if f_turn is None else (
        f"; above {f_turn:.3g} ph/µm² per projection the twin's simulated resolution {worse}")
    cliff = values.get("resolution_cliff_fluence_photons_per_um2")
    if values["resolution_forecast_m"] is None and "uncalibrated" in values["flags"]:
        values["resolution_limited_by"] = "uncalibrated (see flags)"
    elif not values["resolution_resolved"]:
        values["resolution_limited_by"] = (
            f"unresolved: below {cliff:.3g} ph/µm² per projection, the lowest fluence at which "
            "every simulated seed resolved, the twin's reconstructions fail (a cliff, not a "
            "plateau); raise the fluence per projection")
    elif values["resolution_forecast_m"] <= values["pixel_size_m"] * (1 + 1e-12):
        values["resolution_limited_by"] = "pixel size"
    elif f_turn is not None and values["fluence_photons_per_um2"] > f_turn * (1 + 1e-9):
        values["resolution_limited_by"] = (
            f"detector, not dose (the twin's simulated resolution turns over at {f_turn:.3g} "
            f"ph/µm² per projection and {worse} above it"
            f"{'; the detector saturates at this flux' if values['saturated'] else ''}"
            "; lower the flux per beam or spread it over more beams)")
    elif s.resolution.model == "simulated" and k is not None and k < -FLAT_EXPONENT / 2:
        sat = "; the detector saturates at this flux" if values["saturated"] else ""
        values["resolution_limited_by"] = (
            f"detector, not dose (simulated d ∝ F^(−k) with k = {k:.2f}: more photons per "
            f"frame make it worse{sat}"
            "; spread the beam or lower the flux)")
    elif s.resolution.model == "simulated" and k is not None and k < FLAT_EXPONENT:
        # the twin's own points say more photons barely help: not the dose
        values["resolution_limited_by"] = (
            f"reconstruction, not dose (simulated d ∝ F^(−k) with k = {k:.2f}: more photons "
            f"barely help; probe, position errors, partial coherence and the pixel set it{turn})")
    elif turn:
        values["resolution_limited_by"] = "dose" + turn
    else:
        values["resolution_limited_by"] = "dose"
    from twin.workflows import simvol

    values.update(simvol.forecast_values(s, values))
    return Forecast(s.name, values)
