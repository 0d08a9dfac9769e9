"""Acquisition forecast: time, dose, data volume, count rates and resolution of a scenario.

The forecast is split in two so that sweeps of thousands of points stay fast:

* :func:`~twin.workflows.forecast_params.physical_parameters` turns one validated
  :class:`~twin.scenario.Scenario` into typed column arrays,
  :class:`~twin.workflows.forecast_params.ForecastInputs` (this is where xraylib, the detector
  preset and the sample geometry are consulted, all cached);
* :func:`evaluate` computes every forecast key from the inputs of many points at once (the
  resolution terms in :mod:`twin.workflows.forecast_resolution`, the laws they read in
  :mod:`twin.analysis.laws`).

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

import numpy as np

from twin.acquisition import detector as _detector
from twin.beam import optics as _optics
from twin.sample import dose as _dose
from twin.scenario import Scenario
from twin.workflows import calibrate
from twin.workflows import forecast_resolution as _res
from twin.workflows import forecast_words as _words
from twin.workflows.forecast_params import (ForecastInputs, Limit3D, ProjectionCount,
                                            ResolutionModel, ScanMode, Shutter,
                                            physical_parameters, stack)
from twin.workflows.forecast_resolution import ResolutionLaw

__all__ = ["FLAG_KEYS", "Forecast", "SHIFT_S", "UNITS", "evaluate", "flag_message", "flags",
           "forecast", "physical_parameters", "stack"]

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
    "resolution_3d_along_axis_m": "m", "resolution_3d_across_axis_m": "m",
    "resolution_3d_shell_m": "m",
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
    values): a list of flag names per point, empty where the point is feasible.

    Parameters
    ----------
    values : dict
        Holds every key of :data:`FLAG_KEYS`' values, each a scalar or an (n,) array, taken as
        bool (None: not raised).

    Returns
    -------
    list of list of str
        One list of :data:`FLAG_KEYS` names per point, in their order.
    """
    cols = {name: np.atleast_1d(np.asarray(values[key], dtype=bool))
            for name, key in FLAG_KEYS.items()}
    n = len(next(iter(cols.values())))
    return [[name for name, col in cols.items() if col[i]] for i in range(n)]


def flag_message(name: str, v: dict) -> str:
    """One line saying why flag ``name`` is raised, from one forecast's values.

    Parameters
    ----------
    name : str
        A :data:`FLAG_KEYS` name; any name not handled before gets the data-rate line.
    v : dict
        One forecast's values (scalars: counts/s, ph/µm², Gy, B/s as their keys say).
    """
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



def _ceil(x):
    """Ceiling that forgives the rounding of steps written with a few decimals (1e-6 relative)."""
    return np.ceil(np.asarray(x) * (1 - 1e-6))


def evaluate(p: ForecastInputs) -> dict[str, np.ndarray]:
    """Every forecast key from column arrays of physical parameters (vectorised).

    Parameters
    ----------
    p : ForecastInputs
        The inputs of n points: :func:`physical_parameters` of one scenario, or :func:`stack`
        of many.

    Returns
    -------
    dict of str to (n,) ndarray
        Every key of :data:`UNITS` (and the flags' boolean keys), one element per point.
    """
    t = _timing(p)
    t.update(_photons(p, t))
    t.update(_detector_terms(p))
    # Fluence per projection: photons per unit area of one projection.
    t["fluence"] = (p.flux_photons_per_s * t["frames"] * p.exposure_s
                    / (p.fov_x_m * p.fov_y_m))
    t.update(_resolution_terms(p, t))
    return {**_time_keys(p, t), **_calibration_keys(p, t), **_resolution_keys(p, t),
            **_detector_keys(p, t)}


def _timing(p: ForecastInputs) -> dict:
    """Frames, scan and projection times, projections and total time."""
    frames_per_line = p.frames_per_line      # counted once, in twin.geometry
    lines = p.lines_per_beam
    frames = frames_per_line * lines
    period = 1.0 / p.frame_rate_hz
    settle = np.where(p.scan_mode == ScanMode.STEP, p.step_settle_s, 0.0)
    scan_time = frames * (period + settle)
    projection_time = (scan_time + (lines - 1) * p.line_turnaround_s
                       + p.projection_overhead_s)
    pixel = p.object_pixel_m
    voxel = np.where(np.isnan(p.tomo_voxel_m), pixel, p.tomo_voxel_m)
    width_px = _ceil(p.fov_x_m / voxel)
    crowther = np.ceil(np.pi / 2 * width_px)
    is_3d = p.projections != ProjectionCount.TWO_D
    n_proj = np.where(p.projections == ProjectionCount.CROWTHER, crowther,
                      np.where(is_3d, p.n_projections_requested, 1.0))
    # once per sample: alignment and sample change (scenario [beamtime]); no beam on the sample
    total_time = n_proj * projection_time + p.sample_overhead_s
    return {"frames": frames, "lines": lines, "scan_time": scan_time,
            "projection_time": projection_time,
            "scan_rate_m2": p.fov_x_m * p.fov_y_m / scan_time, "pixel": pixel,
            "voxel": voxel, "crowther": crowther, "is_3d": is_3d, "n_proj": n_proj,
            "total_time": total_time,
            "volume": np.where(is_3d, p.fov_x_m ** 2 * p.fov_y_m, np.nan)}


def _photons(p: ForecastInputs, t: dict) -> dict:
    """Beam-on time, photons, energy deposited and the peak local dose."""
    frames, scan_time, n_proj = t["frames"], t["scan_time"], t["n_proj"]
    projection_time = t["projection_time"]
    # beam-on time per projection: everything unless a shutter closes (scenario scan.shutter)
    shutter = p.shutter
    beam_on = np.where(shutter == Shutter.NONE, projection_time,
                       np.where(shutter == Shutter.PER_LINE, scan_time, frames * p.exposure_s))
    # photons that reach the sample: the raster's, plus (no shutter) the turnarounds' and the
    # overheads' where the field's edges lie inside the sample (narrower than it)
    raster_on = np.where(shutter == Shutter.PER_FRAME, frames * p.exposure_s, scan_time)
    # the parked beam sits at the field's edges: on the sample where the field is no wider
    inside = p.fov_x_m <= p.sample_width_m * (1 + 1e-9)
    parked_time = np.where((shutter == Shutter.NONE) & inside, projection_time - scan_time, 0.0)
    photons_on_sample = p.flux_photons_per_s * n_proj * (raster_on + parked_time)
    energy = _dose.energy_deposited_j(photons_on_sample, p.energy_kev, p.mu_en_over_mu,
                                      p.absorbed_fraction)
    return {"beam_on": beam_on, "photons": p.flux_photons_per_s * n_proj * beam_on,
            "energy": energy, "dose_gy": _dose.dose_gy(energy, p.mass_kg),
            "peak_dose": _peak_dose(p, t, raster_on, inside)}


def _peak_dose(p: ForecastInputs, t: dict, raster_on, inside):
    """Peak local dose: the fluence at the most irradiated point times E·μ_en/ρ.

    The raster spreads the line time evenly; with no shutter each turnaround parks the beam at a
    line's end (every other line on each side, beam_d/(2Δy) of them overlapping one spot),
    inside the sample only where the field is narrower than the sample. In 3D every projection
    covers a voxel inside the field; a parked spot on the field's edge (radius W/2) moves by
    (W/2)·Δθ per projection, so min(N, beam_d / ((W/2)·Δθ)) parked spots fall on one voxel.
    """
    n_proj, is_3d, shutter = t["n_proj"], t["is_3d"], p.shutter
    area = p.fov_x_m * p.fov_y_m
    beam_area = np.pi / 4 * p.beam_diameter_m ** 2
    per_spot = np.maximum(1.0, p.beam_diameter_m / (2 * p.slow_step_m
                                                       * p.overlap_relaxation))
    parked = np.where((shutter == Shutter.NONE) & inside,
                      p.flux_photons_per_s * p.line_turnaround_s * per_spot / beam_area,
                      0.0)
    dtheta = np.deg2rad(p.angular_range_deg) / np.maximum(n_proj, 1)
    hits = np.where(is_3d, np.minimum(n_proj, np.maximum(
        1.0, p.beam_diameter_m / (0.5 * p.fov_x_m * dtheta))), 1.0)
    local_fluence = n_proj * p.flux_photons_per_s * raster_on / area + hits * parked
    e_photon = p.energy_kev * 1e3 * 1.602176634e-19
    return local_fluence * e_photon * p.mu_en_over_rho_m2_per_kg


def _detector_terms(p: ForecastInputs) -> dict:
    """Frame size, and the count rate on the most illuminated pixel."""
    peak_rate = p.flux_photons_per_s / p.disc_pixels
    frame_bytes = p.n_crop ** 2 * p.bytes_per_pixel
    return {"frame_bytes": frame_bytes, "data_rate": frame_bytes * p.frame_rate_hz,
            "peak_rate": peak_rate,
            "recorded": _detector.binned_recorded_rate(peak_rate, p.dead_time_s,
                                                       p.binning),
            "peak_counts": peak_rate * p.exposure_s}


def _resolution_terms(p: ForecastInputs, t: dict) -> dict:
    """2D and 3D resolution (:mod:`twin.workflows.forecast_resolution`)."""
    law = ResolutionLaw.from_inputs(p)
    fluence, n_proj = t["fluence"], t["n_proj"]
    per_projection, penalty, unresolved, resolution = _res.resolution_2d(
        law, fluence, p.sim_f_cliff_per_m2)
    three = _res.resolution_3d(law, fluence, n_proj, penalty, t["voxel"],
                               p.angular_range_deg, p.sample_width_m)
    resolution_3d = np.where(t["is_3d"] & ~unresolved, three["best_3d"] * three["wedge"] ** (1 / 3),
                             np.nan)
    # projection approximation: thickness within the depth of field 5.2·d²/λ at the forecast
    # resolution (Tsai et al. 2016); beyond it a multislice model is needed
    dof = 5.2 * resolution ** 2 / p.wavelength_m
    at_f0 = ((law.model == ResolutionModel.SIMULATED)
             & np.isclose(fluence, p.sim_f0_per_m2, rtol=1e-9))
    return {"per_projection": per_projection, "unresolved": unresolved,
            "resolution": resolution, "resolution_3d": resolution_3d, "dof": dof,
            "at_f0": at_f0, **three}


def _time_keys(p: ForecastInputs, t: dict) -> dict:
    """Time, data volume, photons and dose of the acquisition."""
    frames, lines, scan_rate_m2 = t["frames"], t["lines"], t["scan_rate_m2"]
    scan_time, projection_time, n_proj = t["scan_time"], t["projection_time"], t["n_proj"]
    crowther, total_time, volume = t["crowther"], t["total_time"], t["volume"]
    frame_bytes, photons, beam_on = t["frame_bytes"], t["photons"], t["beam_on"]
    peak_dose = t["peak_dose"]
    lam = p.wavelength_m
    data_rate = t["data_rate"]
    return {
        "energy_kev": p.energy_kev,
        "wavelength_m": lam,
        "frame_rate_hz": p.frame_rate_hz,
        "exposure_s": p.exposure_s,
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
        "sample_overhead_s": p.sample_overhead_s,
        "imaged_volume_um3": volume * 1e18,
        "volume_rate_um3_per_s": volume * 1e18 / total_time,
        "frame_bytes": frame_bytes,
        "data_volume_bytes": frame_bytes * frames * n_proj,
        "data_rate_bytes_per_s": data_rate,
        "photons_total": photons,
        "flux_photons_per_s": p.flux_photons_per_s,
        "beam_on_time_s": n_proj * beam_on,
        "peak_local_dose_gy": peak_dose,
        "data_volume_full_frame_bytes": p.full_frame_pixels * p.bytes_per_pixel * frames
        * n_proj,
        "compression_ratio": p.compression_ratio,
        "data_volume_compressed_bytes": frame_bytes * frames * n_proj / p.compression_ratio,
    }


def outside_law(fluence, p: ForecastInputs):
    """Where the fluence per projection ``fluence`` (photons/m²) lies outside the fluences the
    simulated law d(F) rests on (its resolved points): reading it there extrapolates.

    Parameters
    ----------
    fluence : float or ndarray
        Fluence per projection, photons/m².
    p : ForecastInputs
        The forecast's inputs (``sim_f_min_per_m2``, ``sim_f_max_per_m2``).

    Returns
    -------
    bool ndarray
    """
    return ((fluence < p.sim_f_min_per_m2 * (1 - 1e-9))
            | (fluence > p.sim_f_max_per_m2 * (1 + 1e-9)))


def _calibration_keys(p: ForecastInputs, t: dict) -> dict:
    """The simulated calibration's own figures at this fluence."""
    n_proj, at_f0, per_projection = t["n_proj"], t["at_f0"], t["per_projection"]
    fluence, is_3d, unresolved = t["fluence"], t["is_3d"], t["unresolved"]
    simulated = p.resolution_model == ResolutionModel.SIMULATED
    uncalibrated = simulated & ~np.isfinite(p.sim_d0_m)
    cliff = p.sim_f_cliff_per_m2
    return {
        # measured values exist only at the calibration's own fluence F0
        "resolution_simulated_m": np.where(at_f0, per_projection, np.nan),
        # (the fit's standard error belongs to the dose-limited side)
        "resolution_simulated_std_m": np.where(at_f0 & (fluence <= p.sim_f_turn_per_m2),
                                               p.sim_d0_std_m, np.nan),
        "resolution_exponent_k": np.where(simulated, p.sim_k, np.nan),
        "resolution_exponent_k_std": np.where(simulated, p.sim_k_std, np.nan),
        "resolution_exponent_k_detector": np.where(simulated, p.sim_k_high, np.nan),
        # the simulated curve used outside the fluences the twin simulated: at this fluence,
        # or (3D dose fractionation) at the total fluence of all projections
        "resolution_extrapolated": np.where(uncalibrated, None, simulated & (
            outside_law(fluence, p)
            | (is_3d & (fluence * n_proj > p.sim_f_max_per_m2 * (1 + 1e-9))))),
        # unknown (None, an object array) where no calibration says whether it resolves
        "resolution_resolved": np.where(uncalibrated, None, ~unresolved),
        "resolution_unresolved": np.where(uncalibrated, None, unresolved),
        "resolution_uncalibrated": uncalibrated,
        "resolution_cliff_fluence_photons_per_um2": np.where(simulated, cliff * 1e-12, np.nan),
        "resolution_seeds": np.where(simulated, p.sim_seeds, np.nan),
        # the patch the calibration simulates (or, uncalibrated, would simulate)
        "resolution_patch_frames": p.patch_frames,
        "resolution_patch_fluence_ratio": p.patch_fluence_ratio,
        "resolution_turnover_fluence_photons_per_um2": np.where(
            simulated & np.isfinite(p.sim_f_turn_per_m2),
            p.sim_f_turn_per_m2 * 1e-12, np.nan),
    }


def _resolution_keys(p: ForecastInputs, t: dict) -> dict:
    """Resolution (2D and 3D), dose, fluence and the cost of simulating it all."""
    frames, n_proj, fluence, is_3d = t["frames"], t["n_proj"], t["fluence"], t["is_3d"]
    best_3d, wedge, limited_3d, dof = t["best_3d"], t["wedge"], t["limited_3d"], t["dof"]
    energy, pixel, resolution = t["energy"], t["pixel"], t["resolution"]
    resolution_3d, crowther_d, dose_3d = t["resolution_3d"], t["crowther_d"], t["dose_3d"]
    lam = p.wavelength_m
    dose_gy = t["dose_gy"]
    return {
        "resolution_3d_worst_m": np.where(is_3d, best_3d * wedge, np.nan),
        "missing_wedge_elongation": np.where(is_3d, wedge, np.nan),
        "resolution_3d_limited_by_code": np.where(is_3d, limited_3d, np.nan),
        "depth_of_field_m": dof,
        "projection_approximation_ok": p.sample_thickness_m <= dof,
        "energy_deposited_j": energy,
        "dose_gy": dose_gy,
        "fluence_photons_per_um2": fluence * 1e-12,
        "pixel_size_m": pixel,
        "resolution_limit_m": lam * p.distance_m / p.active_width_m,
        "resolution_forecast_m": resolution,
        "resolution_3d_forecast_m": resolution_3d,
        # what simulating and reconstructing every frame of the acquisition would take
        "simulation_core_hours": n_proj * frames * p.sim_core_s_per_frame / 3600,
        "simulation_gpu_hours": n_proj * frames * p.sim_gpu_s_per_frame / 3600,
        "reconstruction_core_hours": n_proj * frames * p.rec_iterations
        * p.rec_core_s_per_frame_iteration / 3600,
        "reconstruction_gpu_hours": n_proj * frames * p.rec_iterations
        * p.rec_gpu_s_per_frame_iteration / 3600,
        # the same crossings as full periods 1/f (the FIRE number, Nieuwenhuizen et al. 2013)
        "resolution_forecast_fire_m": 2 * resolution,
        "resolution_3d_forecast_fire_m": 2 * resolution_3d,
        "crowther_resolution_m": np.where(is_3d, crowther_d, np.nan),
        "dose_limited_3d_resolution_m": np.where(is_3d, dose_3d, np.nan),
    }


def _detector_keys(p: ForecastInputs, t: dict) -> dict:
    """Count rates, limits and the optics' figures."""
    peak_rate, recorded, peak_counts = t["peak_rate"], t["recorded"], t["peak_counts"]
    lam = p.wavelength_m
    beam_d = p.beam_diameter_m
    data_rate = t["data_rate"]
    dose_gy = t["dose_gy"]
    saturated = (t["peak_rate"] > p.max_count_rate_hz) | (t["peak_counts"] > p.max_counts)
    return {
        "peak_count_rate_per_pixel_hz": peak_rate,
        "peak_recorded_rate_per_pixel_hz": recorded,
        "count_rate_loss_fraction": 1 - recorded / peak_rate,
        "detector_max_count_rate_per_pixel_hz": p.max_count_rate_hz,
        "peak_counts_per_frame": peak_counts,
        "detector_max_counts": p.max_counts,
        "saturated": saturated,
        "dose_limit_gy": p.dose_limit_gy,
        "dose_limit_exceeded": dose_gy > p.dose_limit_gy,
        "data_rate_limit_bytes_per_s": p.data_rate_limit_bytes_per_s,
        "data_rate_exceeded": data_rate > p.data_rate_limit_bytes_per_s,
        "zone_plate_focal_length_m": p.zone_plate_focal_length_m,
        "beam_diameter_m": beam_d,
        "defocus_m": p.defocus_m,
        "depth_of_focus_m": _optics.depth_of_focus_m(p.zone_plate_outermost_zone_m, lam),
        "overlap_fast": 1 - p.fast_step_m / beam_d,
        "overlap_slow": 1 - p.slow_step_m * p.overlap_relaxation / beam_d,
        "position_interpolation_factor": np.maximum(
            1.0, p.frame_rate_hz / p.position_capture_rate_hz),
    }


_INT_KEYS = {"frames_per_projection", "lines_per_projection", "n_projections",
             "n_projections_crowther", "frame_bytes", "data_volume_bytes",
             "data_volume_full_frame_bytes", "resolution_seeds", "resolution_patch_frames"}
#: ``resolution_model`` of each :class:`~twin.workflows.forecast_params.ResolutionModel`.
_MODEL_NAMES = {
    ResolutionModel.PIXEL: "pixel size (no dose model)",
    ResolutionModel.HOWELLS: "Howells et al. 2009: d = d_ref (F/F_ref)^(-1/4), F fluence per "
                             "projection",
    ResolutionModel.ROSE: "Rose criterion: d = (snr^2 / (4 F k^2 |dn|^2))^(1/4), F fluence per "
                          "projection",
    ResolutionModel.SIMULATED: "simulated: d = d0 (F/F0)^(-k) fitted to FRC half-bit resolutions "
                               "twin measured on its own simulated, reconstructed patches (no "
                               "paper anchor); above a turnover, where the points get worse "
                               "with flux, d follows them instead"}


@dataclass(frozen=True)
class Forecast:
    """The forecast of one scenario: :attr:`values` holds every key of :data:`UNITS`."""

    scenario: str
    values: dict

    def as_dict(self) -> dict:
        """``scenario`` (the name) followed by every key of :attr:`values`."""
        return {"scenario": self.scenario, **self.values}


def _scalar(key: str, v):
    v = v.item() if hasattr(v, "item") else v
    if v is None:                       # unknown (resolution_resolved, uncalibrated)
        return None
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


def _conventions(s: Scenario, p: ForecastInputs, cal_from: str) -> dict:
    """The convention every resolution key is in: threshold, method, the simulated patch, and
    whose calibration it reads (``cal_from``: another scenario's name, or "" for its own);
    ``p``: the scenario's :func:`physical_parameters`."""
    simulated = s.resolution.model == "simulated"
    out = {
        "resolution_threshold": "half-bit" if simulated else None,
        "resolution_convention": (
            "half period 1/(2f) at the FRC's half-bit crossing against the twin's ground "
            "truth (keys ending _fire_m: the full period 1/f, the FIRE number)" if simulated
            else "half period 1/(2f) of the model named in resolution_model (no FRC)"),
        "resolution_patch_size_m": ([float(p.patch_x_m[0]), float(p.patch_y_m[0])]
                                    if simulated else None),
    }
    out["resolution_3d_method"] = BOUND_3D if s.is_3d else None
    if not simulated:
        out["resolution_calibration"] = None
    elif not math.isfinite(p.sim_d0_m[0]):
        base = s.model_copy(update={"sweep": {}})
        out["resolution_calibration"] = calibrate.missing_message(s, calibrate.estimate(base))
    else:
        out["resolution_calibration"] = (f"from {cal_from} (its d(F) at this fluence)"
                                         if cal_from else "own")
    return out


def forecast(s: Scenario, sim=None) -> Forecast:
    """Forecast of one scenario.

    Parameters
    ----------
    s : Scenario
        A validated scenario.
    sim : twin.analysis.laws.Calibration, optional
        ``resolution.model = "simulated"``: a calibration to use instead of the scenario's own
        (:func:`twin.workflows.calibrate.calibration`, which reads what is shipped or cached);
        the planner passes one so that it never starts a simulation.

    Returns
    -------
    Forecast
        Every key of :data:`UNITS`, the flags, and what limits the resolution.
    """
    from twin.workflows import simvol

    if s.resolution.model == "simulated" and sim is None:
        sim = calibrate.calibration(s)
    p = physical_parameters(s, sim)
    if s.resolution.model == "simulated":       # frames are simulated anyway
        p = dataclasses.replace(p, compression_ratio=(float(sim.compression_ratio)
                                                      if sim is not None
                                                      else calibrate.compression_ratio(s)))
    out = evaluate(p)
    values = {k: _scalar(k, v[0]) for k, v in out.items()}
    values["flags"] = flags(out)[0]
    values.pop("resolution_unresolved", None)       # said by resolution_resolved and flags
    values.pop("resolution_uncalibrated", None)     # said by flags
    values["resolution_model"] = _MODEL_NAMES[ResolutionModel(int(p.resolution_model[0]))]
    values.update(_conventions(s, p, getattr(sim, "source", "")))
    code = values.pop("resolution_3d_limited_by_code", None)
    if code is not None:
        values["resolution_3d_limited_by"] = _words.limited_by_3d(s, values, Limit3D(int(code)))
    values["resolution_limited_by"] = _words.limited_by(s, values)
    volume = simvol.forecast_values(s, values)
    measured = volume.get("resolution_3d_method") == simvol.METHOD
    if measured and values.get("resolution_extrapolated") is not None:
        # a measured volume replaces the dose-fractionation term, so that term no longer
        # extrapolates: the 2D law's range and the volume's own decide
        law = bool(outside_law(values["fluence_photons_per_um2"] * 1e12, p)[0])
        volume["resolution_extrapolated"] = law or bool(volume.get("resolution_extrapolated"))
    values.update(volume)
    return Forecast(s.name, values)
