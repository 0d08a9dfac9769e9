"""The tables along the beam before the data file: ``[beam]``, ``[optics]`` (the zone plate),
``[scan]`` and ``[detector]`` (a preset of ``twin/acquisition/detectors.toml``)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from twin.acquisition import detector as _detector
from twin.core.errors import TwinInputError
from twin.scenario._base import Fraction, NonNegFloat, PosFloat, _Strict

__all__ = ["Beam", "Optics", "Scan", "Detector"]


# ----------------------------------------------------------------------------- beam, optics


class Beam(_Strict):
    energy_kev: Annotated[float, Field(ge=1, le=200)]
    """Photon energy."""
    flux_photons_per_s: PosFloat
    """Coherent photon flux at the sample, all beams together."""
    coherent_fraction: Fraction = 1.0
    """Power in the first coherent mode; the rest goes into further probe modes."""
    coherent_modes: Annotated[int, Field(ge=1, le=32)] = 4
    """Most orthogonal probe modes the simulation keeps for the partial coherence."""
    source_size_um: tuple[NonNegFloat, NonNegFloat] | None = None
    """rms size (horizontal, vertical) of the (effective, slit-defined) source seen by the zone
    plate. With ``source_distance_m`` it sets the partial coherence (probe modes) and replaces
    ``coherent_fraction``; default None: ``coherent_fraction`` is used."""
    source_distance_m: PosFloat | None = None
    """Distance from that source to the zone plate."""

    @model_validator(mode="after")
    def _source_pair(self):
        if (self.source_size_um is None) != (self.source_distance_m is None):
            raise ValueError("give both source_size_um and source_distance_m, or neither")
        return self


class Optics(_Strict):
    """Fresnel zone plate; give either ``defocus_mm`` or ``beam_diameter_um``."""

    zone_plate_diameter_um: PosFloat
    """Zone-plate diameter."""
    outermost_zone_nm: PosFloat
    """Width of the outermost zone (sets the focal length and the far-field cone)."""
    central_stop_diameter_um: NonNegFloat = 0.0
    """Diameter of the central stop on the zone plate."""
    osa_diameter_um: PosFloat | None = None
    """Order-sorting aperture diameter (none: no aperture)."""
    defocus_mm: float | None = None
    """Sample distance downstream of the focus (or give beam_diameter_um)."""
    beam_diameter_um: PosFloat | None = None
    """Beam diameter at the sample; the defocus follows from it (or give defocus_mm)."""
    diffuser: bool = False
    """Spread the direct beam evenly over the cropped detector (seed 000 §3's remedy for
    count-rate limits)."""

    @model_validator(mode="after")
    def _one_of(self):
        if (self.defocus_mm is None) == (self.beam_diameter_um is None):
            raise ValueError("give exactly one of defocus_mm or beam_diameter_um")
        if self.central_stop_diameter_um >= self.zone_plate_diameter_um:
            raise ValueError("central_stop_diameter_um must be smaller than "
                             "zone_plate_diameter_um")
        return self


# ----------------------------------------------------------------------------- scan


class Scan(_Strict):
    """2D raster of one projection. x is the fast axis, y the slow axis (the rotation axis)."""

    mode: Literal["fly", "step"] = "fly"
    """Fly scan (continuous motion, frames on the fly) or step scan (stop at each point)."""
    fov_x_um: PosFloat
    """Field of view along x (the fast axis)."""
    fov_y_um: PosFloat
    """Field of view along y (the slow axis, the rotation axis)."""
    fast_step_um: PosFloat
    """Distance between frames along a line."""
    slow_step_um: PosFloat
    """Distance between lines."""
    frame_rate_hz: PosFloat
    """Detector frame rate (one frame per scan point)."""
    exposure_s: PosFloat | None = None
    """Default: the frame period less the detector's readout dead time."""
    line_turnaround_s: NonNegFloat = 0.0
    """Time to turn round at the end of each line."""
    projection_overhead_s: NonNegFloat = 0.0
    """Per-projection time outside the raster: rotation, settling, file handling."""
    step_settle_s: NonNegFloat = 0.0
    """Step scans only: move and settle time per point."""
    n_beams: Annotated[int, Field(ge=1, le=1000)] = 1
    """Beams scanning in parallel; the lines are shared among them."""
    overlap_relaxation: Annotated[float, Field(ge=1, le=100)] = 1.0
    """Factor by which joint ptycho-tomography relaxes the slow-axis step (Gürsoy 2017)."""
    position_capture_rate_hz: PosFloat = 10_000.0
    """PandA position-capture limit (seed 000 §2.1: 10 kHz)."""
    encoder_resolution_nm: NonNegFloat = 1.0
    """Resolution of the position encoders."""
    capture_jitter_s: NonNegFloat = 0.0
    """rms timing jitter of a position capture."""
    stage_vibration_nm: NonNegFloat = 0.0
    """rms stage vibration on each axis (fly scans), which interpolated positions miss."""
    stage_vibration_hz: NonNegFloat = 0.0
    """Frequency of the stage vibration."""
    shutter: Literal["none", "per_line", "per_frame"] = "none"
    """When a fast shutter closes: "none" (the beam stays on through turnarounds and overheads,
    and they count towards the dose), "per_line" (closed during turnarounds and overheads) or
    "per_frame" (open only while a frame is exposed)."""
    encoder_noise_nm: NonNegFloat = 0.0
    """rms noise of an encoder reading (on top of the quantisation to encoder_resolution_nm)."""
    drift_nm_per_s: tuple[float, float] = (0.0, 0.0)
    """Drift (x, y) of the sample relative to the encoders (thermal): the positions a PandA
    records miss it."""
    capture_latency_s: float = 0.0
    """Fixed delay of the PandA capture after the frame's mid-exposure (uncorrected)."""
    blur_samples: Annotated[int, Field(ge=1, le=64)] | None = None
    """Sub-positions per exposure for motion blur (default: one per half object pixel of
    travel, at most 16; 1 for step scans)."""

    @model_validator(mode="after")
    def _steps_fit(self):
        if self.fast_step_um > self.fov_x_um:
            raise ValueError(f"fast_step_um ({self.fast_step_um}) is larger than fov_x_um "
                             f"({self.fov_x_um})")
        if self.slow_step_um > self.fov_y_um:
            raise ValueError(f"slow_step_um ({self.slow_step_um}) is larger than fov_y_um "
                             f"({self.fov_y_um})")
        if self.exposure_s is not None and self.exposure_s > 1.0 / self.frame_rate_hz:
            raise ValueError(f"exposure_s ({self.exposure_s}) exceeds the frame period "
                             f"1/frame_rate_hz = {1.0 / self.frame_rate_hz:.6g} s")
        return self


# ----------------------------------------------------------------------------- detector


class Detector(_Strict):
    """A preset of ``twin/acquisition/detectors.toml`` in one of its modes, with overrides."""

    preset: str = "eiger_500k"
    """Detector preset in twin/acquisition/detectors.toml (eiger_500k, selun, ideal, ...)."""
    mode: str | None = None
    """The preset's mode (counter depth, binning); default: the preset's first."""
    distance_m: PosFloat
    """Sample–detector distance."""
    crop: Annotated[int, Field(ge=8)] | None = None
    """Square crop (effective pixels, after binning) kept for storage and reconstruction."""
    pixels_x: Annotated[int, Field(ge=8)] | None = None
    """Override: native pixels along x."""
    pixels_y: Annotated[int, Field(ge=8)] | None = None
    """Override: native pixels along y."""
    pixel_size_m: PosFloat | None = None
    """Override: native pixel size."""
    counter_bits: Annotated[int, Field(ge=1, le=32)] | None = None
    """Override: counter depth."""
    bytes_per_pixel: Annotated[int, Field(ge=1, le=8)] | None = None
    """Override: bytes stored per pixel."""
    max_frame_rate_hz: PosFloat | None = None
    """Override: highest frame rate of the mode."""
    max_count_rate_per_pixel_hz: PosFloat | None = None
    """Override: count-rate limit per pixel."""
    dead_time_s: NonNegFloat | None = None
    """Override: dead time after each counted photon."""
    readout_dead_time_s: NonNegFloat | None = None
    """Override: time per frame the counters are read out and blind."""
    dead_time_model: Literal["nonparalyzable", "paralyzable"] | None = None
    """Default: the preset mode's (EIGER paralyzable, SELUN non-paralyzable)."""
    overflow: Literal["saturate", "wrap"] = "saturate"
    """What a counter does above 2**bits − 1: hold at the maximum, or roll over."""

    @model_validator(mode="after")
    def _resolve(self):
        try:
            det = self.resolved()
        except TwinInputError as exc:
            raise ValueError(f"{exc.field} = {exc.value!r}: {exc.allowed}") from None
        ny, nx = det.effective_shape
        if self.crop is not None and self.crop > min(ny, nx):
            raise ValueError(f"crop ({self.crop}) is larger than the detector's "
                             f"{ny}×{nx} (effective) pixels in mode {det.mode}")
        return self

    def resolved(self) -> _detector.DetectorMode:
        """The preset in this table's mode (its default if none), overrides applied."""
        return _detector.preset_mode(
            self.preset, self.mode, pixels_x=self.pixels_x, pixels_y=self.pixels_y,
            pixel_size_m=self.pixel_size_m, counter_bits=self.counter_bits,
            bytes_per_pixel=self.bytes_per_pixel, max_frame_rate_hz=self.max_frame_rate_hz,
            max_count_rate_per_pixel_hz=self.max_count_rate_per_pixel_hz,
            dead_time_s=self.dead_time_s, readout_dead_time_s=self.readout_dead_time_s,
            dead_time_model=self.dead_time_model)

    @property
    def n_crop(self) -> int:
        ny, nx = self.resolved().effective_shape
        return self.crop if self.crop is not None else min(ny, nx)
