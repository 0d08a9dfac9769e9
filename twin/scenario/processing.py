"""The tables after the data: ``[tomography]``, ``[reconstruction]``, ``[resolution]``, and how
twin runs and counts the experiment: ``[simulation]``, ``[run]``, ``[beamtime]``."""

from __future__ import annotations

import math
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from twin.recon.options import Algorithm, PositionCorrection, field_info
from twin.scenario._base import MaterialName, NonNegFloat, PosFloat, _Strict

__all__ = ["Tomography", "Reconstruction", "Resolution", "Simulation", "Run", "Beamtime",
           "crowther_projections"]


# ----------------------------------------------------------------------------- 3D, recon


class Tomography(_Strict):
    """``n_projections``: a count, "crowther" (π/2 × width in voxels), or 0 for a 2D scan."""

    n_projections: Annotated[int, Field(ge=0)] | Literal["crowther"] = 0
    """Projections: a count, "crowther" (π/2 × width in voxels), or 0 for a 2D scan."""
    angular_range_deg: Annotated[float, Field(gt=0, le=360)] = 180.0
    """Angular range of the projections."""
    voxel_size_m: PosFloat | None = None
    """Tomographic voxel; default the ptychographic pixel size."""
    method: Literal["fbp", "sirt", "sart", "tv"] = "fbp"
    """Tomographic reconstruction of the aligned projections (seed 000 §2.1: gridrec, an FBP)."""
    wobble_um: NonNegFloat = 0.0
    """RMS of the rotation axis's asynchronous error motion (runout), as a per-projection
    shift of the sample that varies smoothly with the angle (harmonics 2–5 of a turn; the
    synchronous once-per-turn part only moves the rotation centre). Gürsoy et al. (Sci. Rep. 7,
    11818, 2017; seed 000's ref. 35) give ~15 nm for the best stages."""
    misalignment_um: NonNegFloat = 0.0
    """RMS of independent per-projection shifts of the sample (x and y): drift between
    projections, stage repositioning. Aligned by twin's reprojection alignment before the
    volume is reconstructed."""


class Reconstruction(_Strict):
    """The reconstruction a run makes. Each field is the engine option of the same name,
    defined once in :class:`twin.recon.options.Options` (type, default, bounds, description);
    ``auto`` leaves the choices to the data."""

    algorithm: Algorithm = field_info("algorithm")
    iterations: int = field_info("iterations")
    modes: int = field_info("modes")
    position_correction: PositionCorrection = field_info("position_correction")
    slices: int = field_info("slices")
    auto: bool = True
    """Let the reconstruction choose the engine, the probe modes and position correction from
    the data and refine the starting probe (``twin.recon.auto.auto_options``, as
    ``twin reconstruct`` does with no options); false: use the fields above as written."""

    @field_validator("position_correction", mode="before")
    @classmethod
    def _switch(cls, value):
        # ``position_correction = true`` (the former switch) is the gradient method
        if isinstance(value, bool):
            return PositionCorrection.GRADIENT if value else PositionCorrection.NONE
        return value


class Resolution(_Strict):
    """How the achievable resolution is forecast.

    ``howells``: d = d_ref·(F/F_ref)^(−1/4), the dose–resolution scaling of Howells et al.
    (2009), F the fluence per projection (photons per unit area of one projection), anchored on a
    measured reference. ``rose``: the smallest feature of the given contrast that reaches the Rose
    criterion (SNR = ``snr``) at fluence F, d = (snr²/(4F·k²·|Δn|²))^(1/4). ``pixel``: the
    reconstructed pixel size. ``simulated``: no anchor; d = d₀·(F/F₀)^(−k) fitted to the
    resolution that twin measures (FRC half-bit against its ground truth) on its own simulated
    and reconstructed patches at fluences around the scenario's (cached by scenario hash);
    where those points get worse with more flux (a detector limit), the curve turns over and
    follows them above the turnover. Every model is bounded below by the reconstructed pixel
    size.
    """

    model: Literal["howells", "rose", "pixel", "simulated"] = "pixel"
    calibration_seeds: Annotated[int, Field(ge=1, le=16)] = 1
    """``simulated``: seeds simulated at each calibration fluence (their spread at the
    scenario's fluence bounds the error bar from below; with one seed the ± is a lower bound)."""
    patch: Literal["points", "scan"] = "points"
    """``simulated``: the patch each calibration point simulates. ``"points"``: about 16 × 16
    scan points at the scan's centre, whatever the steps (cheap, but with a fine fast step a
    sliver whose centre gets a fraction of the scan's fluence). ``"scan"``: the scan's own steps
    and overlap over four beam diameters in each direction (each beam's band, with several) —
    three diameters dosed as the scan is, the area the FRC needs for its lowest searched ring
    at the beam's period, plus half a diameter of dose fall-off on each side; the field must
    be at least three beam diameters (``twin calibrate`` prints what it costs)."""
    reference_resolution_m: PosFloat | None = None
    """``howells``: resolution measured at the reference."""
    reference_flux_photons_per_s: PosFloat | None = None
    """``howells``: flux of the reference measurement."""
    reference_scan_rate_um2_per_s: PosFloat | None = None
    """``howells``: scan rate of the reference measurement."""
    feature_material: MaterialName | None = None
    """``rose``: material of the feature to resolve."""
    background_material: MaterialName | None = None
    """``rose``: material around the feature."""
    snr: PosFloat = 5.0
    """``rose``: signal-to-noise ratio the feature must reach."""

    @model_validator(mode="after")
    def _needs(self):
        if self.model == "howells" and None in (self.reference_resolution_m,
                                                self.reference_flux_photons_per_s,
                                                self.reference_scan_rate_um2_per_s):
            raise ValueError("model = 'howells' needs reference_resolution_m, "
                             "reference_flux_photons_per_s and reference_scan_rate_um2_per_s")
        if self.model == "rose":
            if self.feature_material is None or self.background_material is None:
                raise ValueError("model = 'rose' needs feature_material and "
                                 "background_material")
        return self


class Simulation(_Strict):
    """How ``twin simulate`` makes data as hard as a real experiment (issue 10 §1)."""

    oversampling: Annotated[int, Field(ge=1, le=4)] = 2
    """The object and probe are simulated on a grid this many times finer than the
    reconstruction pixel, and each detector pixel integrates the far field over its area
    (1: the reconstruction's own grid and point-sampled pixels, the "inverse crime")."""
    multislice: Literal["auto", "on", "off"] = "auto"
    """"auto": multislice whenever the path through the sample exceeds the depth of field
    2·dx²/λ of the reconstruction pixel dx."""
    slices: Annotated[int, Field(ge=1, le=256)] | None = None
    """Slices of a multislice simulation (default ⌈path / depth of field⌉)."""
    detector_response: bool = True
    """Quantum efficiency, charge sharing and flat-field gain of the detector preset (off: an
    ideal counter apart from dead time and counter depth)."""


class Run(_Strict):
    """What ``twin run`` does beyond the forecast (sizes for a laptop)."""

    frames: Annotated[int, Field(ge=1)] | None = 2000
    """Frames simulated and reconstructed for the 2D chain (None: the whole scan)."""
    fov_um: PosFloat | None = None
    """A square sub-field at the scan's centre for the 2D chain (same steps and rates), instead
    of the scan's whole field."""
    iterations: Annotated[int, Field(ge=1, le=10_000)] | None = None
    """Reconstruction iterations (default: the [reconstruction] table's)."""
    modes: Annotated[int, Field(ge=1, le=64)] | None = None
    """Probe modes for the run's reconstruction (default: the [reconstruction] table's)."""
    chain_projections: Annotated[int, Field(ge=2, le=2000)] = 16
    """3D scenarios: angles of the preview ptycho-tomography chain."""
    chain_fov_um: PosFloat = 6.0
    """3D scenarios: field of the preview chain (the sample is scaled to fit)."""
    chain_iterations: Annotated[int, Field(ge=1)] = 15
    """3D scenarios: reconstruction iterations of the preview chain."""


class Beamtime(_Strict):
    """What a proposal counts beyond the scans: once-per-sample overheads and the limits that
    make a plan infeasible (the forecast's ``flags``). Beamtime is requested in 8-hour shifts
    (the unit of the APS, ESRF and Diamond user programmes); the forecast's ``shifts`` is
    ``total_time_s`` / 8 h.

    The total time of one sample is ``n_projections × projection_time_s`` (each projection with
    its turnarounds and ``scan.projection_overhead_s``) plus ``alignment_overhead_s`` plus
    ``sample_change_overhead_s``. Neither per-sample overhead puts beam on the imaged volume
    (the sample is absent during a change; alignment is taken to use the attenuated beam or the
    on-axis visible-light microscope), so they add time, not dose.
    """

    alignment_overhead_s: NonNegFloat = 0.0
    """Once per sample: centring it on the rotation axis and finding the region of interest
    before the first projection. No paper value in the seeds: take the beamline's own figure
    (its feasibility statement in the proposal); default 0 keeps the scan-only times of
    seed 000 §3 (whose 170 s per mm² and 19.2 days count scanning only)."""
    sample_change_overhead_s: NonNegFloat = 0.0
    """Once per sample: unmounting the previous sample and mounting this one (hutch search
    and interlock, or a robot's cycle). No paper value in the seeds: the beamline's figure;
    default 0 as for ``alignment_overhead_s``."""
    dose_limit_gy: PosFloat | None = None
    """Dose (``dose_gy``, the imaged volume's) above which the forecast flags ``dose_limit``.
    Source for a value: Howells et al., J. Electron Spectrosc. Relat. Phenom. 170, 4–12
    (2009), whose survey of radiation-damage studies puts the maximum tolerable dose for
    imaging at resolution d at about 10⁸ Gy per nm of d (10¹⁰ Gy at 100 nm for frozen-hydrated
    biological matter; room-temperature, unfixed tissue tolerates less). Default None: no
    limit."""
    data_rate_limit_bytes_per_s: PosFloat | None = None
    """Sustained rate at which the storage (or the detector's data link to it) writes stored
    frames; the forecast flags ``data_rate`` where ``data_rate_bytes_per_s`` (cropped frames ×
    bytes per pixel × frame rate, before compression) exceeds it. The detector's own readout
    limit is its mode's ``max_frame_rate_hz``, which the scenario enforces. Default None: no
    limit."""


def crowther_projections(width_m: float, voxel_m: float) -> int:
    """Crowther criterion: ⌈π/2 × width in voxels⌉ projections over 180°.

    Parameters
    ----------
    width_m : float
        Width of the reconstructed field across the rotation axis (m).
    voxel_m : float
        Tomographic voxel size (m).

    Returns
    -------
    int
        Projections over 180°. The width in voxels is rounded up, but a width at most 1 ppm
        over a whole number of voxels (rounding in ``width_m / voxel_m``) counts as that
        number.
    """
    return math.ceil(math.pi / 2 * math.ceil(width_m / voxel_m * (1 - 1e-6)))
