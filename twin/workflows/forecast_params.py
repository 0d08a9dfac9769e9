"""The forecast's inputs: one scenario as a flat dict of SI numbers (:func:`physical_parameters`).

This is where xraylib, the detector preset, the sample's geometry, the resolution model's
calibration and the measured cost model are consulted (all cached), so that
:func:`twin.workflows.forecast.evaluate` can compute every forecast key of thousands of sweep
points at once from column arrays (:func:`stack`). Categories are coded as floats:
``step_mode`` (1: step scan), ``shutter`` (0 none, 1 per line, 2 per frame),
``resolution_model`` (:data:`MODEL_CODES`), ``n_projections_requested`` (−1: Crowther's count).
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from twin.beam import optics as _optics
from twin.sample import dose as _dose
from twin.sample import materials as _materials
from twin.scenario import Scenario
from twin.workflows import calibrate

#: ``resolution.model`` as the float code of the ``resolution_model`` column.
MODEL_CODES = {"pixel": 0, "howells": 1, "rose": 2, "simulated": 3}
#: ``scan.shutter`` as the float code of the ``shutter`` column.
SHUTTER_CODES = {"none": 0.0, "per_line": 1.0, "per_frame": 2.0}


@lru_cache(maxsize=1024)
def _absorbed(shape: str, size_x_m: float, size_z_m: float, fov_width_m: float,
              angular_range_deg: float, is_3d: bool, mu_per_m: float) -> float:
    angles = (np.deg2rad(np.linspace(0, angular_range_deg, 64, endpoint=False))
              if is_3d else np.zeros(1))
    return _dose.field_absorbed_fraction(mu_per_m, shape, size_x_m, size_z_m, fov_width_m,
                                         angles)


def physical_parameters(s: Scenario, sim=None) -> dict[str, float]:
    """Flat SI parameters of one scenario for :func:`twin.workflows.forecast.evaluate`.

    Parameters
    ----------
    s : Scenario
        A validated scenario.
    sim : twin.analysis.laws.Calibration, optional
        ``resolution.model = "simulated"``: the calibration to read at this scenario's fluence
        (a sweep passes its base scenario's); default: the scenario's own
        (:func:`twin.workflows.calibrate.calibration`). Ignored for the other models.

    Returns
    -------
    dict of str to float
        One number per parameter, SI units (categories coded as floats).
    """
    from twin.geometry import Geometry

    g = Geometry.from_scenario(s)
    bulk = _materials.lookup(s.sample.material, s.beam.energy_kev, s.sample.density_g_per_cm3)
    # a sweep passes its base scenario's calibration: d(F) of that point, evaluated at each
    # point's fluence (``twin sweep --simulate`` measures every point instead)
    if s.resolution.model != "simulated":
        sim = None
    elif sim is None:
        sim = calibrate.calibration(s)
    return {**_scan_params(s, g), **_detector_params(s, g), **_dose_params(s, g, bulk),
            **_optics_params(s, g), **_resolution_params(s, g, sim),
            **_patch_params(s, g, sim is not None), **calibrate.cost_params(s, g),
            **_sample_params(s, g, bulk)}


def _scan_params(s: Scenario, g) -> dict[str, float]:
    """Beam, frame timing and the raster."""
    return {
        "energy_kev": s.beam.energy_kev,
        "wavelength_m": g.wavelength_m,
        "flux_photons_per_s": s.beam.flux_photons_per_s,
        "frame_rate_hz": s.scan.frame_rate_hz,
        "exposure_s": s.exposure_s,
        "step_mode": 1.0 if s.scan.mode == "step" else 0.0,
        "step_settle_s": s.scan.step_settle_s,
        "fov_x_m": g.fov_x_m,
        "fov_y_m": g.fov_y_m,
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
    }


def _detector_params(s: Scenario, g) -> dict[str, float]:
    """Projections, distance and the detector mode."""
    det = g.detector
    n_proj = s.tomography.n_projections
    return {
        "n_projections_requested": (-1.0 if n_proj == "crowther" else float(n_proj)),
        "tomo_voxel_m": s.tomography.voxel_size_m or math.nan,
        "angular_range_deg": s.tomography.angular_range_deg,
        "distance_m": s.detector.distance_m,
        "pixel_eff_m": g.pixel_stored_m,
        "n_crop": float(g.n_stored),
        "active_width_m": det.active_width_m,
        "bytes_per_pixel": float(det.bytes_per_pixel),
        "binning": float(det.binning),
        "max_count_rate_hz": det.max_count_rate_per_pixel_hz,
        "max_counts": float(det.max_counts),
        "dead_time_s": det.dead_time_s,
    }


def _dose_params(s: Scenario, g, bulk) -> dict[str, float]:
    """Absorbed fraction and irradiated mass of the sample (``bulk``: its material)."""
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
    return {"mu_en_over_mu": bulk.mu_en_per_m / bulk.mu_per_m, "absorbed_fraction": f_abs,
            "mass_kg": mass}


def _optics_params(s: Scenario, g) -> dict[str, float]:
    """Zone plate, beam, and the detector pixels the direct beam's disc covers."""
    lam, p_eff, n_crop = g.wavelength_m, g.pixel_stored_m, g.n_stored
    disc = float(_optics.far_field_disc_diameter_m(g.outermost_zone_m, lam, g.distance_m))
    stop = (g.central_stop_m / g.zone_plate_diameter_m) ** 2
    disc_pixels = (n_crop ** 2 if s.optics.diffuser
                   else max(1.0, math.pi / 4 * (disc / p_eff) ** 2 * (1 - stop)))
    return {
        "zone_plate_focal_length_m": g.focal_length_m,
        "zone_plate_outermost_zone_m": g.outermost_zone_m,
        "defocus_m": g.defocus_m,
        "beam_diameter_m": g.beam_diameter_m,
        "disc_pixels": disc_pixels,
    }


def _resolution_params(s: Scenario, g, sim) -> dict[str, float]:
    """The resolution model: its code, its paper anchors, and the calibration ``sim``."""
    res = s.resolution
    contrast2 = math.nan
    if res.model == "rose":
        a = _materials.lookup(res.feature_material, s.beam.energy_kev)
        b = _materials.lookup(res.background_material, s.beam.energy_kev)
        contrast2 = (a.delta - b.delta) ** 2 + (a.beta - b.beta) ** 2
    ref_fluence = (res.reference_flux_photons_per_s / (res.reference_scan_rate_um2_per_s * 1e-12)
                   if res.model == "howells" else math.nan)
    return {
        "resolution_model": float(MODEL_CODES[res.model]),
        "reference_resolution_m": res.reference_resolution_m or math.nan,
        "reference_fluence_per_m2": ref_fluence,
        "rose_contrast2": contrast2,
        "rose_snr": res.snr,
        **_calibration_params(sim),
    }


def _calibration_params(sim) -> dict[str, float]:
    """The simulated law's parameters (NaN without a calibration ``sim``)."""
    return {
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
    }


def _patch_params(s: Scenario, g, simulated: bool) -> dict[str, float]:
    """The calibration patch's size, frames and fluence ratio (NaN unless simulated)."""
    if not simulated:
        return {"patch_x_m": math.nan, "patch_y_m": math.nan, "patch_frames": math.nan,
                "patch_fluence_ratio": math.nan}
    from twin.workflows.patch import patch_summary

    ps = patch_summary(s, g)
    return {"patch_x_m": ps.size_m[0], "patch_y_m": ps.size_m[1],
            "patch_frames": float(ps.frames), "patch_fluence_ratio": ps.fluence_ratio}


def _sample_params(s: Scenario, g, bulk) -> dict[str, float]:
    """Shutter, the sample's extent across and along the beam, full frames, beamtime limits."""
    ext = g.sample_extent
    size_x, size_z = ext.width_m, ext.depth_m
    is_3d = s.is_3d
    det = g.detector
    # the sample's widest extent across the beam over the rotation (Crowther's D), and its
    # thickness along the beam (projection approximation)
    if s.sample.shape == "cylinder":
        width_across = size_x
    else:
        width_across = math.hypot(size_x, size_z) if is_3d else size_x
    thickness = max(size_x, size_z) if is_3d else size_z
    full_px = det.pixels_x * det.pixels_y / det.binning ** 2
    return {
        "shutter": SHUTTER_CODES[s.scan.shutter],
        "sample_width_m": width_across,
        "sample_thickness_m": thickness,
        "full_frame_pixels": float(full_px),
        "compression_ratio": math.nan,     # filled by forecast() / the sweep from a simulation
        "mu_en_over_rho_m2_per_kg": bulk.mu_en_per_m / (bulk.material.density_g_per_cm3 * 1e3),
        "sample_overhead_s": s.beamtime.alignment_overhead_s + s.beamtime.sample_change_overhead_s,
        "dose_limit_gy": s.beamtime.dose_limit_gy or math.inf,
        "data_rate_limit_bytes_per_s": s.beamtime.data_rate_limit_bytes_per_s or math.inf,
    }


def stack(params: list[dict[str, float]]) -> dict[str, np.ndarray]:
    """Column arrays from a list of :func:`physical_parameters` dicts.

    Returns
    -------
    dict of str to (n,) float ndarray
    """
    keys = params[0].keys()
    return {k: np.array([p[k] for p in params], dtype=float) for k in keys}
