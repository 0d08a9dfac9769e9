"""The scenario resolved once: the derived geometry every stage needs, in SI units.

A :class:`Geometry` is built from a :class:`~twin.scenario.Scenario` by
:meth:`Geometry.from_scenario`; simulate, forecast, the ptycho-tomography chain, the figures and
the report read it instead of converting the scenario's units themselves. The scenario's fields
carry their units in their names (``fov_x_um``, ``outermost_zone_nm``); here everything is in
metres, seconds and photons.

Examples
--------
>>> from twin import scenario
>>> from twin.geometry import Geometry
>>> g = Geometry.from_scenario(scenario.load("scenarios/quickstart.toml"))
>>> round(g.object_pixel_m * 1e9, 1) > 0
True
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from twin.acquisition.detector import DetectorMode
from twin.beam import optics, probe
from twin.sample import phantoms
from twin.core.constants import wavelength_m as _wavelength_m
from twin.operators.propagation import farfield_pixel_m
from twin.scenario import Scenario


#: The object pixel λz/(N·p): :func:`twin.operators.propagation.farfield_pixel_m`.
object_pixel_m = farfield_pixel_m


def depth_of_field_m(pixel_m: float, wavelength_m: float) -> float:
    """Thickness up to which the projection approximation holds for a pixel ``pixel_m``.

    The highest angle a frame records is θ = λ/(2·dx); over a thickness T a ray at that angle
    moves T·θ sideways. Keeping that within one pixel gives T ≤ 2·dx²/λ (twin's criterion,
    the classical depth of field 2δ²/λ at δ = dx).

    Parameters
    ----------
    pixel_m : float
        Object (reconstruction) pixel dx, metres.
    wavelength_m : float
        X-ray wavelength λ, metres.

    Returns
    -------
    float
        The thickness 2·dx²/λ, metres.
    """
    return 2.0 * pixel_m ** 2 / wavelength_m


def _ceil(x: float) -> int:
    """Ceiling that forgives the rounding of steps written with a few decimals (1e-6 relative)."""
    return math.ceil(x * (1 - 1e-6))


@dataclass(frozen=True)
class Geometry:
    """Derived geometry of one scenario (SI units; see the module docstring).

    Attributes
    ----------
    detector : DetectorMode
        The detector preset in the scenario's mode, with its overrides.
    wavelength_m, energy_kev, distance_m : float
    binning, n_stored, n_native : int
        On-chip binning; stored (cropped, binned) frame side; simulated native frame side
        ``n_stored · binning``.
    pixel_stored_m : float
        Effective pixel after binning.
    object_pixel_m : float
        λz/(n_stored · pixel_stored_m) = λz/(n_native · native pixel).
    zone_plate_diameter_m, outermost_zone_m, central_stop_m, focal_length_m : float
    defocus_m, beam_diameter_m : float
        Defocus of the sample from the focus, and the geometric beam diameter there.
    fov_x_m, fov_y_m, fast_step_m, slow_step_m : float
        Scan field and steps; ``slow_step_m`` includes the overlap relaxation.
    n_beams, frames_per_line, lines_total, lines_per_beam, frames_per_projection : int
    frame_period_s, exposure_s : float
    photons_per_frame : float
        Incident photons per frame and beam.
    sample_extent : twin.sample.phantoms.Extent
        The sample's outer shape in metres.
    oversampling : int
        ``simulation.oversampling``: the simulation's grid is this many times finer.
    fine_pixel_m : float
        The simulation's object pixel, ``object_pixel_m / oversampling``.
    depth_of_field_m : float
        :func:`depth_of_field_m` of the reconstruction pixel: thicker samples need multislice.
    source_sigma_focus_m : (σ_y, σ_x) or None
        rms size of the source's image at the focus (partial coherence), where the scenario
        gives the source.
    """

    detector: DetectorMode
    energy_kev: float
    wavelength_m: float
    distance_m: float
    binning: int
    n_stored: int
    n_native: int
    pixel_stored_m: float
    object_pixel_m: float
    zone_plate_diameter_m: float
    outermost_zone_m: float
    central_stop_m: float
    focal_length_m: float
    defocus_m: float
    beam_diameter_m: float
    fov_x_m: float
    fov_y_m: float
    fast_step_m: float
    slow_step_m: float
    n_beams: int
    frames_per_line: int
    lines_total: int
    lines_per_beam: int
    frames_per_projection: int
    frame_period_s: float
    exposure_s: float
    photons_per_frame: float
    sample_extent: "phantoms.Extent | None" = None
    oversampling: int = 1
    fine_pixel_m: float = 0.0
    depth_of_field_m: float = 0.0
    source_sigma_focus_m: tuple[float, float] | None = None

    @property
    def fluence_per_m2(self) -> float:
        """Incident photons per unit area of one projection (the forecast's F): every beam's
        photons of every frame over the field."""
        return (self.photons_per_frame * self.n_beams * self.frames_per_projection
                / (self.fov_x_m * self.fov_y_m))

    def path_through_sample_m(self, angle_deg: float = 0.0) -> float:
        """Longest path through the sample along the beam at ``angle_deg``, metres.

        Parameters
        ----------
        angle_deg : float
            Tomographic rotation angle, degrees (0: the beam along the sample's depth).
        """
        return self.sample_extent.path_m(angle_deg)

    def blur_samples(self, s: Scenario) -> int:
        """Positions per exposure over which a fly scan's motion blur is averaged: the scan's
        ``blur_samples``, else one per half object pixel travelled during the exposure (at most
        16); 1 for a step scan.

        Parameters
        ----------
        s : Scenario
            The scenario this geometry was resolved from (its ``[scan]`` table).
        """
        if s.scan.blur_samples is not None:
            return s.scan.blur_samples
        if s.scan.mode != "fly":
            return 1
        travel = self.fast_step_m * s.scan.frame_rate_hz * self.exposure_s
        return int(min(16, max(1, math.ceil(travel / (self.object_pixel_m / 2)))))

    def simulated_modes(self, s: Scenario) -> int:
        """Probe modes the simulation propagates: the beam's ``coherent_modes`` where the
        source is partially coherent (a source size, or ``coherent_fraction`` < 1), else 1.

        Parameters
        ----------
        s : Scenario
            The scenario this geometry was resolved from (its ``[beam]`` table).
        """
        if self.source_sigma_focus_m is not None or s.beam.coherent_fraction < 1:
            return s.beam.coherent_modes
        return 1

    def multislice_slices(self, s: Scenario, angle_deg: float = 0.0) -> int:
        """Slices ``twin simulate`` uses at ``angle_deg``: 1 (projection approximation) for
        ``simulation.multislice`` "off", and for "auto" while the path through the sample is
        within the depth of field; otherwise ``simulation.slices``, or by default
        max(2, ⌈path / depth of field⌉).

        Parameters
        ----------
        s : Scenario
            The scenario this geometry was resolved from (its ``[simulation]`` table).
        angle_deg : float
            Tomographic rotation angle, degrees.
        """
        mode = s.simulation.multislice
        path = self.path_through_sample_m(angle_deg)
        if mode == "off" or (mode == "auto" and path <= self.depth_of_field_m):
            return 1
        if s.simulation.slices is not None:
            return s.simulation.slices
        return max(2, math.ceil(path / self.depth_of_field_m))

    @classmethod
    def from_scenario(cls, s: Scenario) -> "Geometry":
        """Resolve scenario ``s`` once: its units converted to SI, its derived quantities made.

        Parameters
        ----------
        s : Scenario
            A validated scenario.
        """
        det = s.detector.resolved()
        lam = float(_wavelength_m(s.beam.energy_kev))
        n_stored = s.detector.n_crop
        b = det.binning
        zp_d = s.optics.zone_plate_diameter_um * 1e-6
        dr = s.optics.outermost_zone_nm * 1e-9
        if s.optics.defocus_mm is not None:
            defocus = s.optics.defocus_mm * 1e-3
            beam_d = float(optics.beam_diameter_at_defocus_m(zp_d, dr, lam, defocus))
        else:
            beam_d = s.optics.beam_diameter_um * 1e-6
            defocus = float(optics.defocus_for_beam_diameter_m(zp_d, dr, lam, beam_d))
        sc = s.scan
        fov_x, fov_y = sc.fov_x_um * 1e-6, sc.fov_y_um * 1e-6
        fast = sc.fast_step_um * 1e-6
        slow = sc.slow_step_um * 1e-6 * sc.overlap_relaxation
        per_line = _ceil(fov_x / fast)
        lines_total = _ceil(fov_y / slow)
        lines = math.ceil(lines_total / sc.n_beams)
        exposure = s.exposure_s
        smp = s.sample
        width_um, depth_um = smp.cross_section_um
        extent = phantoms.Extent(smp.shape, width_um * 1e-6, depth_um * 1e-6,
                                 smp.height_um * 1e-6)
        dx = object_pixel_m(lam, s.detector.distance_m, n_stored, det.effective_pixel_size_m)
        ovs = s.simulation.oversampling
        focal = float(optics.focal_length_m(zp_d, dr, lam))
        src = None
        if s.beam.source_size_um is not None:
            src = tuple(float(v) for v in probe.source_sigma_at_focus_m(
                [v * 1e-6 for v in s.beam.source_size_um], s.beam.source_distance_m, focal))
        return cls(
            detector=det, energy_kev=s.beam.energy_kev, wavelength_m=lam,
            distance_m=s.detector.distance_m, binning=b, n_stored=n_stored,
            n_native=n_stored * b, pixel_stored_m=det.effective_pixel_size_m,
            object_pixel_m=object_pixel_m(lam, s.detector.distance_m, n_stored,
                                          det.effective_pixel_size_m),
            zone_plate_diameter_m=zp_d, outermost_zone_m=dr,
            central_stop_m=s.optics.central_stop_diameter_um * 1e-6,
            focal_length_m=float(optics.focal_length_m(zp_d, dr, lam)),
            defocus_m=defocus, beam_diameter_m=beam_d, fov_x_m=fov_x, fov_y_m=fov_y,
            fast_step_m=fast, slow_step_m=slow, n_beams=sc.n_beams, frames_per_line=per_line,
            lines_total=lines_total, lines_per_beam=lines,
            frames_per_projection=per_line * lines, frame_period_s=1.0 / sc.frame_rate_hz,
            exposure_s=exposure,
            photons_per_frame=s.beam.flux_photons_per_s / sc.n_beams * exposure,
            sample_extent=extent, oversampling=ovs, fine_pixel_m=dx / ovs,
            depth_of_field_m=depth_of_field_m(dx, lam), source_sigma_focus_m=src)


def reconstruction_options(s: Scenario, iterations: int | None = None, modes: int | None = None):
    """The engine options a scenario's ``[reconstruction]`` table (and ``[run]``) asks for.

    The one place where the scenario's vocabulary becomes the engine's
    (:class:`twin.recon.options.Options`).

    Parameters
    ----------
    s : Scenario
        The scenario.
    iterations, modes : int or None
        The caller's own choice (a workflow's iteration count); None or 0 falls back to
        ``[run]``, then to ``[reconstruction]`` (with ``auto``, the modes fall back to 0: chosen
        from a test reconstruction).

    Returns
    -------
    twin.recon.options.Options
    """
    from twin.recon.options import AUTO, Algorithm, Options

    r = s.reconstruction
    common = dict(iterations=iterations or s.run.iterations or r.iterations, slices=r.slices,
                  seed=s.seed, slice_thickness_m=(s.sample.cross_section_um[1] * 1e-6 / r.slices
                                                  if r.slices > 1 else 0.0))
    if r.auto:
        # the same choices as `twin reconstruct` with no options (twin.recon.auto, made from
        # the data when the reconstruction starts); multislice stays the scenario's
        return Options(**{**AUTO, **common, "modes": modes or s.run.modes or 0,
                          "algorithm": Algorithm.MULTISLICE if r.slices > 1 else Algorithm.AUTO})
    one_slice = r.algorithm == Algorithm.MULTISLICE and r.slices == 1
    return Options(algorithm=Algorithm.RPIE if one_slice else r.algorithm,
                   modes=modes or s.run.modes or r.modes,
                   position_correction=r.position_correction, **common)
