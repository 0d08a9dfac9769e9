"""The forecast's inputs: one scenario as typed column arrays (:class:`ForecastInputs`).

:func:`physical_parameters` is where xraylib, the detector preset, the sample's geometry, the
resolution model's calibration and the measured cost model are consulted (all cached), so that
:func:`twin.workflows.forecast.evaluate` can compute every forecast key of thousands of sweep
points at once from the column arrays of many points (:func:`stack`). Every field is one
(n,) array, SI units unless its name says otherwise; categories are named by the enums
:class:`ScanMode`, :class:`Shutter`, :class:`ProjectionCount` and :class:`ResolutionModel`
(:class:`Limit3D` names what limits a 3D forecast).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from enum import IntEnum
from functools import lru_cache

import numpy as np

from twin.beam import optics as _optics
from twin.sample import dose as _dose
from twin.sample import materials as _materials
from twin.scenario import Scenario
from twin.workflows import calibrate


class _Named(IntEnum):
    """An enum whose members are a scenario's lower-case choices (``"per_frame"``)."""

    @classmethod
    def of(cls, choice: str) -> _Named:
        """The member named by a scenario's choice ``choice`` (case-insensitive).

        Parameters
        ----------
        choice : str
            The scenario's value (``"fly"``, ``"per_line"``, ``"simulated"`` ...); one that
            names no member raises KeyError (the schema lets no such value through).
        """
        return cls[choice.upper()]


class ScanMode(_Named):
    """``scan.mode``: a fly scan, or a step scan that settles at every point."""

    FLY = 0
    STEP = 1


class Shutter(_Named):
    """``scan.shutter``: when the beam is off the sample."""

    NONE = 0          #: always open: turnarounds and overheads irradiate too
    PER_LINE = 1      #: closed outside the lines
    PER_FRAME = 2     #: open only while a frame is exposed


class ProjectionCount(IntEnum):
    """``tomography.n_projections``: a 2D scan, a given count, or Crowther's count."""

    TWO_D = 0         #: one projection (``n_projections = 0``)
    GIVEN = 1         #: the count in ``n_projections_requested``
    CROWTHER = 2      #: ⌈π/2 × the projection's width in voxels⌉

    @classmethod
    def of(cls, n_projections: int | str) -> ProjectionCount:
        """The kind of a scenario's ``tomography.n_projections``.

        Parameters
        ----------
        n_projections : int or str
            ``"crowther"``: :attr:`CROWTHER`; a non-zero count: :attr:`GIVEN`; 0: :attr:`TWO_D`.
        """
        if n_projections == "crowther":
            return cls.CROWTHER
        return cls.GIVEN if n_projections else cls.TWO_D


class ResolutionModel(_Named):
    """``resolution.model`` (:class:`twin.scenario.Resolution`)."""

    PIXEL = 0
    HOWELLS = 1
    ROSE = 2
    SIMULATED = 3


class Limit3D(IntEnum):
    """What limits a 3D resolution: the dose of all projections, Crowther's criterion (the
    projection count) or the voxel."""

    DOSE = 0
    CROWTHER = 1
    VOXEL = 2


#: The categorical fields of :class:`ForecastInputs` and their enums.
CATEGORIES: dict[str, type[IntEnum]] = {"scan_mode": ScanMode, "projections": ProjectionCount,
                                        "resolution_model": ResolutionModel, "shutter": Shutter}


@dataclass(frozen=True)
class ForecastInputs:
    """Everything :func:`twin.workflows.forecast.evaluate` reads, for n points at once.

    Every field is an (n,) array, one element per point: float64 in the units its name says
    (SI otherwise), or, for the fields of :data:`CATEGORIES`, integer members of their enum
    (``p.shutter == Shutter.PER_FRAME``). NaN marks a number a point's model does not use
    (``sim_*`` outside ``resolution.model = "simulated"``), infinity a limit that is not set.
    Built from one scenario by :func:`physical_parameters`, from many by :func:`stack`.
    """

    # --- beam, frame timing and the raster ----------------------------------------------------
    energy_kev: np.ndarray
    """Photon energy, keV."""
    wavelength_m: np.ndarray
    """X-ray wavelength."""
    flux_photons_per_s: np.ndarray
    """Photon flux at the sample, all beams together."""
    frame_rate_hz: np.ndarray
    """Detector frame rate."""
    exposure_s: np.ndarray
    """Exposure of one frame."""
    scan_mode: np.ndarray
    """:class:`ScanMode`."""
    step_settle_s: np.ndarray
    """Settle time per scan point of a step scan."""
    fov_x_m: np.ndarray
    """Field of view across the lines (along x)."""
    fov_y_m: np.ndarray
    """Field of view along y."""
    fast_step_m: np.ndarray
    """Step between frames along a line."""
    slow_step_m: np.ndarray
    """Step between lines, before the overlap relaxation."""
    frames_per_line: np.ndarray
    """Frames in one line."""
    lines_per_beam: np.ndarray
    """Lines each beam scans in one projection."""
    object_pixel_m: np.ndarray
    """Reconstructed pixel λz / (N_crop · p_eff)."""
    n_beams: np.ndarray
    """Beams scanning at once."""
    overlap_relaxation: np.ndarray
    """Factor r by which the lines are spread."""
    line_turnaround_s: np.ndarray
    """Time between two lines."""
    projection_overhead_s: np.ndarray
    """Fixed time per projection."""
    position_capture_rate_hz: np.ndarray
    """Rate at which the stage positions are captured."""
    # --- projections, distance and the detector mode ------------------------------------------
    projections: np.ndarray
    """:class:`ProjectionCount`."""
    n_projections_requested: np.ndarray
    """The scenario's count where :attr:`projections` is ``GIVEN`` (NaN for Crowther's, 0 in
    2D)."""
    tomo_voxel_m: np.ndarray
    """``tomography.voxel_size_m`` (NaN: the reconstructed pixel)."""
    angular_range_deg: np.ndarray
    """Angular range of the projections, degrees."""
    distance_m: np.ndarray
    """Sample–detector distance."""
    pixel_eff_m: np.ndarray
    """Stored detector pixel (after binning)."""
    n_crop: np.ndarray
    """Stored frame side, pixels."""
    active_width_m: np.ndarray
    """The detector's active width (its shorter side)."""
    bytes_per_pixel: np.ndarray
    """Bytes per stored pixel."""
    binning: np.ndarray
    """Detector binning factor."""
    max_count_rate_hz: np.ndarray
    """The detector mode's count-rate limit per pixel."""
    max_counts: np.ndarray
    """The detector mode's largest count per frame and pixel."""
    dead_time_s: np.ndarray
    """Counter dead time."""
    # --- dose ----------------------------------------------------------------------------------
    mu_en_over_mu: np.ndarray
    """Energy-absorption over attenuation coefficient of the sample's material."""
    absorbed_fraction: np.ndarray
    """Mean absorbed fraction over rays and angles."""
    mass_kg: np.ndarray
    """Irradiated mass, kg."""
    # --- optics --------------------------------------------------------------------------------
    zone_plate_focal_length_m: np.ndarray
    """Zone-plate focal length."""
    zone_plate_outermost_zone_m: np.ndarray
    """Zone-plate outermost zone width."""
    defocus_m: np.ndarray
    """Sample distance from the focus."""
    beam_diameter_m: np.ndarray
    """Beam diameter at the sample."""
    disc_pixels: np.ndarray
    """Detector pixels the direct beam's disc covers (the whole frame with a diffuser)."""
    # --- the resolution model and its paper anchors --------------------------------------------
    resolution_model: np.ndarray
    """:class:`ResolutionModel`."""
    reference_resolution_m: np.ndarray
    """Howells: the paper's resolution (NaN if none)."""
    reference_fluence_per_m2: np.ndarray
    """Howells: the paper's fluence, photons/m² (NaN for other models)."""
    rose_contrast2: np.ndarray
    """Rose: |Δn|² of feature against background (NaN for other models)."""
    rose_snr: np.ndarray
    """Rose: the signal-to-noise ratio asked for."""
    # --- the simulated calibration (NaN without one; twin.analysis.laws.Calibration) -----------
    sim_d0_m: np.ndarray
    """Resolution at the calibration's fluence F0."""
    sim_d0_std_m: np.ndarray
    """Its standard error."""
    sim_k: np.ndarray
    """Fitted exponent k of d = d0 (F/F0)^(-k)."""
    sim_k_std: np.ndarray
    """Its standard error."""
    sim_f0_per_m2: np.ndarray
    """F0, photons/m²."""
    sim_f_turn_per_m2: np.ndarray
    """Turnover fluence above which d follows the detector-limited points (∞: none)."""
    sim_k_high: np.ndarray
    """Exponent above the turnover."""
    sim_f_min_per_m2: np.ndarray
    """Lowest fluence at which every seed resolved (the law holds from here)."""
    sim_f_max_per_m2: np.ndarray
    """Highest fluence at which a seed resolved."""
    sim_f_cliff_per_m2: np.ndarray
    """Cliff: below it the reconstructions fail (NaN: none)."""
    sim_seeds: np.ndarray
    """Seeds per fluence."""
    # --- the calibration's simulated patch (NaN unless simulated) ------------------------------
    patch_x_m: np.ndarray
    """Patch width."""
    patch_y_m: np.ndarray
    """Patch height."""
    patch_frames: np.ndarray
    """Frames of the patch."""
    patch_fluence_ratio: np.ndarray
    """The patch's fluence per scan point over the full scan's."""
    # --- the measured cost model (twin.workflows.calibrate.cost_params) -------------------------
    sim_core_s_per_frame: np.ndarray
    """Seconds to simulate one frame on a CPU core."""
    sim_gpu_s_per_frame: np.ndarray
    """Seconds to simulate one frame on a GPU."""
    rec_core_s_per_frame_iteration: np.ndarray
    """Seconds per frame and iteration of the reconstruction on a CPU core."""
    rec_gpu_s_per_frame_iteration: np.ndarray
    """Seconds per frame and iteration of the reconstruction on a GPU."""
    rec_iterations: np.ndarray
    """Reconstruction iterations."""
    # --- shutter, the sample's extent, full frames, beamtime limits -----------------------------
    shutter: np.ndarray
    """:class:`Shutter`."""
    sample_width_m: np.ndarray
    """The sample's widest extent across the beam over the rotation (Crowther's D)."""
    sample_thickness_m: np.ndarray
    """The sample's thickness along the beam."""
    full_frame_pixels: np.ndarray
    """Pixels of an uncropped (binned) frame."""
    compression_ratio: np.ndarray
    """Measured compression ratio of the frames (NaN: not measured)."""
    mu_en_over_rho_m2_per_kg: np.ndarray
    """Mass energy-absorption coefficient of the sample, m²/kg."""
    sample_overhead_s: np.ndarray
    """Alignment and sample change, once per sample."""
    dose_limit_gy: np.ndarray
    """``beamtime.dose_limit_gy`` (∞: none)."""
    data_rate_limit_bytes_per_s: np.ndarray
    """``beamtime.data_rate_limit_bytes_per_s`` (∞: none)."""

    def __post_init__(self):
        n = None
        for f in dataclasses.fields(self):
            enum = CATEGORIES.get(f.name)
            col = np.atleast_1d(np.asarray(getattr(self, f.name),
                                           dtype=np.int64 if enum else np.float64))
            if col.ndim != 1 or (n is not None and len(col) != n):
                raise ValueError(f"ForecastInputs.{f.name}: shape {col.shape}, not ({n},) as "
                                 "the fields before it")
            if enum and not np.isin(col, list(enum)).all():
                raise ValueError(f"ForecastInputs.{f.name}: {sorted(set(col.tolist()))} holds "
                                 f"a value outside {enum.__name__} {[int(m) for m in enum]}")
            n = len(col)
            object.__setattr__(self, f.name, col)

    def __len__(self) -> int:
        return len(self.energy_kev)

    def repeat(self, n: int) -> ForecastInputs:
        """Every point ``n`` times in a row (the planner then sets columns on the copies).

        Parameters
        ----------
        n : int
            Copies of each point: point i becomes points i·n … i·n + n − 1.

        Returns
        -------
        ForecastInputs
            n × ``len(self)`` points.
        """
        return ForecastInputs(**{f.name: np.repeat(getattr(self, f.name), n)
                                 for f in dataclasses.fields(self)})


def stack(inputs: list[ForecastInputs]) -> ForecastInputs:
    """The points of many :class:`ForecastInputs` (e.g. one per sweep point) in one.

    Parameters
    ----------
    inputs : list of ForecastInputs
        At least one; their points in order.

    Returns
    -------
    ForecastInputs
        Every field the concatenation of the inputs' columns.
    """
    return ForecastInputs(**{f.name: np.concatenate([getattr(p, f.name) for p in inputs])
                             for f in dataclasses.fields(ForecastInputs)})


@lru_cache(maxsize=1024)
def _absorbed(shape: str, size_x_m: float, size_z_m: float, fov_width_m: float,
              angular_range_deg: float, is_3d: bool, mu_per_m: float) -> float:
    angles = (np.deg2rad(np.linspace(0, angular_range_deg, 64, endpoint=False))
              if is_3d else np.zeros(1))
    return _dose.field_absorbed_fraction(mu_per_m, shape, size_x_m, size_z_m, fov_width_m,
                                         angles)


def physical_parameters(s: Scenario, sim=None) -> ForecastInputs:
    """The inputs of :func:`twin.workflows.forecast.evaluate` for one scenario.

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
    ForecastInputs
        One point: every field a (1,) array.
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
    return ForecastInputs(**_scan_params(s, g), **_detector_params(s, g),
                          **_dose_params(s, g, bulk), **_optics_params(s, g),
                          **_resolution_params(s, g, sim),
                          **_patch_params(s, g, s.resolution.model == "simulated"),
                          **calibrate.cost_params(s, g),
                          **_sample_params(s, g, bulk))


def _scan_params(s: Scenario, g) -> dict[str, float]:
    """Beam, frame timing and the raster."""
    return {
        "energy_kev": s.beam.energy_kev,
        "wavelength_m": g.wavelength_m,
        "flux_photons_per_s": s.beam.flux_photons_per_s,
        "frame_rate_hz": s.scan.frame_rate_hz,
        "exposure_s": s.exposure_s,
        "scan_mode": ScanMode.of(s.scan.mode),
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
    kind = ProjectionCount.of(n_proj)
    return {
        "projections": kind,
        "n_projections_requested": math.nan if kind == ProjectionCount.CROWTHER else float(n_proj),
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
    """The resolution model, its paper anchors, and the calibration ``sim``."""
    res = s.resolution
    contrast2 = math.nan
    if res.model == "rose":
        a = _materials.lookup(res.feature_material, s.beam.energy_kev)
        b = _materials.lookup(res.background_material, s.beam.energy_kev)
        contrast2 = (a.delta - b.delta) ** 2 + (a.beta - b.beta) ** 2
    ref_fluence = (res.reference_flux_photons_per_s / (res.reference_scan_rate_um2_per_s * 1e-12)
                   if res.model == "howells" else math.nan)
    return {
        "resolution_model": ResolutionModel.of(res.model),
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
    """The calibration patch's size, frames and fluence ratio (NaN unless simulated): the
    patch the calibration simulates, known from the scenario alone (calibrated or not)."""
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
        "shutter": Shutter.of(s.scan.shutter),
        "sample_width_m": width_across,
        "sample_thickness_m": thickness,
        "full_frame_pixels": float(full_px),
        "compression_ratio": math.nan,     # filled by forecast() / the sweep from a simulation
        "mu_en_over_rho_m2_per_kg": bulk.mu_en_per_m / (bulk.material.density_g_per_cm3 * 1e3),
        "sample_overhead_s": s.beamtime.alignment_overhead_s + s.beamtime.sample_change_overhead_s,
        "dose_limit_gy": s.beamtime.dose_limit_gy or math.inf,
        "data_rate_limit_bytes_per_s": s.beamtime.data_rate_limit_bytes_per_s or math.inf,
    }
