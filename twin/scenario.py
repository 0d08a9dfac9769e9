"""The scenario schema: one typed source of truth for every parameter of an experiment.

A scenario is a TOML file whose tables mirror the path of the photons: ``[sample]``,
``[beam]``, ``[optics]``, ``[scan]``, ``[detector]``, ``[tomography]``, ``[reconstruction]``,
``[resolution]``, then ``[beamtime]`` (overheads and feasibility limits) and an optional
``[sweep]``. Units are in the field names. Unknown keys, wrong types, NaN/inf and out-of-range
values are rejected when the file is loaded, with the field's dotted path in the message.
"""

from __future__ import annotations

import functools
import math
import tomllib
import types
import typing
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (AfterValidator, BaseModel, ConfigDict, Field, TypeAdapter,
                      ValidationError, field_validator, model_serializer, model_validator)

from twin.acquisition import detector as _detector
from twin.sample import materials as _materials
from twin.core.errors import TwinInputError
from twin.recon.options import Algorithm, PositionCorrection, field_info

PosFloat = Annotated[float, Field(gt=0)]
NonNegFloat = Annotated[float, Field(ge=0)]
Fraction = Annotated[float, Field(gt=0, le=1)]


def _text_for_number(annotation, value) -> bool:
    """Whether ``value`` is text (or a bool) where ``annotation`` wants numbers: pydantic's lax
    mode would read the string "8.0" as 8.0, and a scenario should say what it means."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is Annotated:
        return _text_for_number(args[0], value)
    if origin in (typing.Union, types.UnionType):
        arms = [a for a in args if a is not type(None)]
        return bool(arms) and all(_text_for_number(a, value) for a in arms)
    if origin in (tuple, list) and isinstance(value, (list, tuple)):
        items = [a for a in args if a is not Ellipsis] or [Any]
        return any(_text_for_number(items[min(i, len(items) - 1)], v)
                   for i, v in enumerate(value))
    return annotation in (int, float) and isinstance(value, (str, bool))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False,
                              validate_default=True, use_attribute_docstrings=True)

    @field_validator("*", mode="before")
    @classmethod
    def _numbers_are_numbers(cls, value, info):
        if _text_for_number(cls.model_fields[info.field_name].annotation, value):
            raise ValueError(f"not a number: write numbers without quotes (e.g. "
                             f"{info.field_name} = 8.0, not \"8.0\")")
        return value


def _known_material(name: str) -> str:
    if name.strip().lower() not in _materials.library() and not _materials.is_compound(name):
        raise ValueError(
            "allowed: a chemical formula such as 'C6H10O2', an xraylib NIST compound name, or "
            f"one of the named materials {sorted({m.name for m in _materials.library().values()})}")
    return name


MaterialName = Annotated[str, AfterValidator(_known_material)]


def _known_medium(name: str) -> str:
    if name.strip().lower() == "vacuum":
        return name
    try:
        return _known_material(name)
    except ValueError as exc:
        raise ValueError(f'{exc}, or "vacuum"') from None


MediumName = Annotated[str, AfterValidator(_known_medium)]
"""A material name, or "vacuum" (δ = β = 0)."""


def _same_medium(a: str, b: str) -> bool:
    """Whether two medium names are the same material (names, aliases and case ignored)."""
    a, b = a.strip().lower(), b.strip().lower()
    if a == b:
        return True
    lib = _materials.library()
    return a in lib and b in lib and lib[a] == lib[b]


def _drop_defaults(data: dict, model, names) -> dict:
    """``data`` less the fields ``names`` of ``model`` whose value is their default: fields
    added after calibrations were shipped leave the scenario's dump (and so the calibration
    keys of twin.workflows.simres) unchanged until a scenario sets them."""
    for name in names:
        if name in data and getattr(model, name) == type(model).model_fields[name].default:
            del data[name]
    return data


# ----------------------------------------------------------------------------- sample


class FibreBundle(_Strict):
    """Axon-mimicking bundle of coaxially electrospun hollow PCL microfibres (seed 000 §2.1)."""

    fibre_material: MaterialName = "polycaprolactone"
    """Material of the hollow fibres' walls."""
    matrix_material: MaterialName = "water"
    """Material filling the space between and inside the fibres."""
    outer_diameter_um_mean: PosFloat = 6.0
    """Mean outer diameter of a fibre."""
    outer_diameter_um_sd: NonNegFloat = 1.5
    """Standard deviation of the outer diameter."""
    inner_diameter_um_mean: PosFloat = 3.0
    """Mean inner (lumen) diameter of a fibre."""
    inner_diameter_um_sd: NonNegFloat = 1.0
    """Standard deviation of the inner diameter."""
    orientation_dispersion_deg: Annotated[float, Field(ge=0, le=90)] = 10.0
    """Spread of the fibres' directions about the bundle axis."""
    packing_fraction: Annotated[float, Field(gt=0, lt=0.9)] = 0.5
    """Fraction of the cross-section the fibres fill."""

    @model_validator(mode="after")
    def _inner_inside_outer(self):
        if self.inner_diameter_um_mean >= self.outer_diameter_um_mean:
            raise ValueError(f"inner_diameter_um_mean ({self.inner_diameter_um_mean}) must be "
                             f"smaller than outer_diameter_um_mean "
                             f"({self.outer_diameter_um_mean})")
        return self


class IntegratedCircuit(_Strict):
    """Layered integrated circuit (seed 002 §2: 13 layers, 3.92 µm thick)."""

    n_layers: Annotated[int, Field(ge=1, le=100)] = 13
    """Metal and via layers stacked along the beam."""
    wire_material: MaterialName = "cu"
    """Material of the wires."""
    via_material: MaterialName = "w"
    """Material of the vias between layers."""
    dielectric_material: MaterialName = "sio2"
    """Insulator between the wires."""
    substrate_material: MaterialName = "si"
    """Material of the substrate under the layers."""
    substrate_thickness_um: NonNegFloat = 0.5
    """Thickness of the substrate kept under the layers."""
    min_pitch_nm: PosFloat = 64.0
    """Finest wire pitch (the lowest layers)."""
    max_pitch_nm: PosFloat = 1000.0
    """Coarsest wire pitch (the top layers)."""

    @model_validator(mode="after")
    def _pitches(self):
        if self.min_pitch_nm > self.max_pitch_nm:
            raise ValueError("min_pitch_nm must not exceed max_pitch_nm")
        return self


class SiemensStar(_Strict):
    """Siemens star of heavy-metal spokes on a membrane, a 2D resolution target."""

    spokes: Annotated[int, Field(ge=4, le=720)] = 36
    """Number of spokes (each a dark and a light sector)."""
    spoke_material: MaterialName = "ta"
    """Material of the spokes."""
    spoke_thickness_um: PosFloat = 0.5
    """Thickness of the spokes along the beam."""
    membrane_material: MaterialName = "si3n4"
    """Material of the supporting membrane."""
    membrane_thickness_um: NonNegFloat = 1.0
    """Thickness of the membrane."""
    sidewall_angle_deg: Annotated[float, Field(ge=45, le=90)] = 90.0
    """Angle of the spokes' sidewalls to the membrane (90 = vertical, ideal): the projected
    thickness ramps from 0 to the full thickness over ``spoke_thickness·cot(angle)`` across
    every edge, centred on the nominal edge."""
    edge_roughness_nm: NonNegFloat = 0.0
    """Rms line-edge roughness of the spokes: a random displacement of each edge along its
    normal (0 = ideal edges)."""
    edge_correlation_nm: PosFloat = 30.0
    """Correlation length of the edge displacement along the edge (Gaussian correlation)."""

    @model_serializer(mode="wrap")
    def _dump(self, handler):
        return _drop_defaults(handler(self), self, _STAR_REALISM)


_STAR_REALISM = ("sidewall_angle_deg", "edge_roughness_nm", "edge_correlation_nm")


class Sample(_Strict):
    """The sample: its outer shape and bulk material (for dose) and the phantom inside it.

    The rotation axis is vertical (along y, the slow scan axis); ``width_um`` runs along x,
    ``depth_um`` along the beam at 0°.
    """

    phantom: Literal["fibre_bundle", "integrated_circuit", "siemens_star", "uniform"] = "uniform"
    """The structure inside the sample; its table ([sample.fibres], [sample.circuit],
    [sample.star]) sets it up."""
    shape: Literal["cylinder", "box"] = "cylinder"
    """Outer shape: a vertical cylinder or a box."""
    diameter_um: PosFloat | None = None
    """Cylinder diameter (shape = 'cylinder')."""
    width_um: PosFloat | None = None
    """Box extent along x (shape = 'box')."""
    depth_um: PosFloat | None = None
    """Box extent along the beam at 0° (shape = 'box')."""
    height_um: PosFloat
    """Extent along the rotation axis (y)."""
    material: MaterialName = "water"
    """Bulk material, for the dose: a formula, an xraylib NIST name or a named material."""
    density_g_per_cm3: PosFloat | None = None
    """Bulk density (default: the named material's or NIST's)."""
    medium: MediumName | None = None
    """Embedding medium: what fills the sample around the phantom's structures — between and
    inside the fibres (fibre_bundle), between the wires and vias (integrated_circuit: its
    dielectric), between the spokes (siemens_star). A material name or "vacuum". Default: the
    phantom's own medium; when set it overrides ``fibres.matrix_material`` or
    ``circuit.dielectric_material`` (a star's own is vacuum). Not used by the uniform
    phantom."""
    fibres: FibreBundle = FibreBundle()
    circuit: IntegratedCircuit = IntegratedCircuit()
    star: SiemensStar = SiemensStar()

    @property
    def medium_material(self) -> str | None:
        """The embedding medium in effect: ``medium`` or the phantom's own (None for the
        uniform phantom)."""
        return self.medium if self.medium is not None else self._own_medium()

    def _own_medium(self) -> str | None:
        return {"fibre_bundle": self.fibres.matrix_material,
                "integrated_circuit": self.circuit.dielectric_material,
                "siemens_star": "vacuum"}.get(self.phantom)

    @model_serializer(mode="wrap")
    def _dump(self, handler):
        # a medium equal to the phantom's own changes nothing: it leaves the dump (and the
        # shipped calibration keys) as they were before the field existed
        data = handler(self)
        own = self._own_medium()
        if self.medium is None or (own is not None and _same_medium(self.medium, own)):
            data.pop("medium", None)
        return data

    @model_validator(mode="after")
    def _medium(self):
        if self.medium is None:
            return self
        if self.phantom == "uniform":
            raise ValueError(f"medium = {self.medium!r}: the uniform phantom has no embedding "
                             f"medium (its material is 'material'); leave medium out")
        own = {"fibre_bundle": ("fibres", "matrix_material"),
               "integrated_circuit": ("circuit", "dielectric_material")}.get(self.phantom)
        if own is not None:
            table, name = own
            sub = getattr(self, table)
            if name in sub.model_fields_set and not _same_medium(getattr(sub, name),
                                                                  self.medium):
                raise ValueError(f"medium = {self.medium!r} contradicts {table}.{name} = "
                                 f"{getattr(sub, name)!r}; set only one of them")
        return self

    @model_validator(mode="after")
    def _shape(self):
        if self.shape == "cylinder" and self.diameter_um is None:
            raise ValueError("shape = 'cylinder' needs diameter_um")
        if self.shape == "box" and (self.width_um is None or self.depth_um is None):
            raise ValueError("shape = 'box' needs width_um and depth_um")
        try:
            _materials.resolve(self.material, self.density_g_per_cm3, field="material")
        except TwinInputError as exc:
            raise ValueError(f"material {self.material!r}: {exc.allowed}") from None
        return self

    @property
    def cross_section_um(self) -> tuple[float, float]:
        """(extent along x, extent along the beam) at 0°."""
        if self.shape == "cylinder":
            return self.diameter_um, self.diameter_um
        return self.width_um, self.depth_um


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


# ----------------------------------------------------------------------------- scenario

SweepValue = float | int | str | bool


class Scenario(_Strict):
    name: str = "scenario"
    """Name of the scenario (reports, file names)."""
    description: str = ""
    """One line on what the scenario is."""
    seed: Annotated[int, Field(ge=0)] = 0
    """Random seed: same scenario and seed give the same bytes."""
    sample: Sample
    beam: Beam
    optics: Optics
    scan: Scan
    detector: Detector
    tomography: Tomography = Tomography()
    reconstruction: Reconstruction = Reconstruction()
    resolution: Resolution = Resolution()
    run: Run = Run()
    simulation: Simulation = Simulation()
    beamtime: Beamtime = Beamtime()
    sweep: dict[str, Annotated[list[SweepValue], Field(min_length=1)]] = {}
    """Grid of field values to sweep: dotted field path = list of values."""

    @field_validator("sweep")
    @classmethod
    def _sweep_paths(cls, value):
        for path in value:
            if path.startswith("sweep") or not _path_exists(path):
                raise ValueError(f"sweep key {path!r} is not a scenario field; use a dotted "
                                 f"path such as 'beam.flux_photons_per_s'")
            annotation, adapter = _field_adapter(path)
            for v in value[path]:                  # each value against its field's own schema
                problem = ("is not a number" if _text_for_number(annotation, v) else None)
                if problem is None:
                    try:
                        adapter.validate_python(v)
                    except ValidationError as exc:
                        problem = "; ".join(e["msg"].removeprefix("Value error, ")
                                            for e in exc.errors())
                if problem:
                    raise ValueError(f"sweep value {v!r} of {path!r}: {problem} (the value "
                                     f"must be valid for {path} itself)")
        return value

    @model_validator(mode="after")
    def _detector_can_do_it(self):
        det = self.detector.resolved()
        if self.scan.frame_rate_hz > det.max_frame_rate_hz:
            raise ValueError(
                f"scan.frame_rate_hz = {self.scan.frame_rate_hz:g} exceeds the "
                f"{det.preset} {det.mode} mode's maximum of {det.max_frame_rate_hz:g} Hz")
        if det.readout_dead_time_s > 0 and self.scan.exposure_s is not None:
            longest = 1.0 / self.scan.frame_rate_hz - det.readout_dead_time_s
            if self.scan.exposure_s > longest:
                raise ValueError(
                    f"scan.exposure_s = {self.scan.exposure_s:g} leaves no time for the "
                    f"{det.readout_dead_time_s:g} s readout gap of the "
                    f"{det.preset} {det.mode} mode; at most {longest:g} s at this frame rate")
        if self.exposure_s <= 0:
            raise ValueError("the frame period is shorter than the detector's readout time")
        return self

    @property
    def exposure_s(self) -> float:
        if self.scan.exposure_s is not None:
            return self.scan.exposure_s
        det = self.detector.resolved()
        dead = det.readout_dead_time_s     # the mode's duty cycle (detectors.toml)
        return 1.0 / self.scan.frame_rate_hz - dead

    @property
    def is_3d(self) -> bool:
        return self.tomography.n_projections != 0

    def with_values(self, values: dict[str, Any], keep_sweep: bool = False) -> "Scenario":
        """A new, validated scenario with dotted-path fields replaced (the sweep removed
        unless ``keep_sweep``)."""
        data = self.model_dump(exclude_unset=True)  # a fresh dict: safe to modify
        if not keep_sweep:
            data.pop("sweep", None)
        for path, v in values.items():
            node = data
            parts = path.split(".")
            for p in parts[:-1]:
                node = node.setdefault(p, {})
            node[parts[-1]] = v
        try:
            return Scenario.model_validate(data)
        except ValidationError as exc:
            where = ", ".join(f"{k} = {v!r}" for k, v in values.items())
            raise TwinInputError("scenario", values, "invalid",
                                 message=format_validation_error(exc, f"with {where}")) from None


def field_path_exists(path: str) -> bool:
    """Whether ``path`` (dotted, as in ``[sweep]``: ``"beam.flux_photons_per_s"``) names a
    scenario field that holds a value (not a table)."""
    return _path_exists(path)


@functools.lru_cache(maxsize=None)
def _field_adapter(path: str) -> tuple[Any, TypeAdapter]:
    """(annotation, validator) of the scenario field at a dotted path: its type and its
    constraints (bounds, allowed values), without the checks across fields."""
    model: Any = Scenario
    parts = path.split(".")
    for part in parts[:-1]:
        model = model.model_fields[part].annotation
    field = model.model_fields[parts[-1]]
    typ = (Annotated[(field.annotation, *field.metadata)] if field.metadata
           else field.annotation)
    return field.annotation, TypeAdapter(typ)


def _path_exists(path: str) -> bool:
    model: Any = Scenario
    for part in path.split("."):
        fields = getattr(model, "model_fields", None)
        if fields is None or part not in fields:
            return False
        ann = fields[part].annotation
        model = ann if isinstance(ann, type) and issubclass(ann, BaseModel) else None
    return model is None


# ----------------------------------------------------------------------------- loading


def format_validation_error(exc: ValidationError, source: str) -> str:
    """One paragraph naming each bad field (dotted path), its value and what is allowed."""
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            parts.append(f"unknown key '{loc}' (not a scenario field; check the spelling)")
        elif err["type"] == "missing":
            parts.append(f"missing required field '{loc}'")
        elif loc and not isinstance(err.get("input"), dict):
            parts.append(f"field '{loc}' = {err.get('input')!r}: {msg}")
        elif loc:
            parts.append(f"table [{loc}]: {msg}")
        else:
            parts.append(msg)
    return f"{source}: invalid scenario: " + "; ".join(parts) + "."


def load(path: str | Path) -> Scenario:
    """Read and validate a scenario TOML file.

    Raises :class:`TwinInputError` (a missing file, malformed TOML or any invalid field).
    """
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise TwinInputError("scenario", str(path), "the file does not exist") from None
    except (IsADirectoryError, PermissionError, UnicodeDecodeError) as exc:
        raise TwinInputError("scenario", str(path), f"cannot be read as text ({exc})") from None
    return loads(text, source=str(path))


def loads(text: str, source: str = "<scenario>") -> Scenario:
    """Validate a scenario from TOML text; see :func:`load`."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise TwinInputError("scenario", source, f"is not valid TOML ({exc})") from None
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        raise TwinInputError("scenario", source, "invalid",
                             message=format_validation_error(exc, source)) from None


def crowther_projections(width_m: float, voxel_m: float) -> int:
    """Crowther criterion: ⌈π/2 × width in voxels⌉ projections over 180°."""
    return math.ceil(math.pi / 2 * math.ceil(width_m / voxel_m * (1 - 1e-6)))
