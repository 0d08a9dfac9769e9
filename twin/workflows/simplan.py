"""The plan of a simulation: a scenario's grids, geometry, probes, trajectory and sample.

:func:`plan` resolves everything :func:`twin.workflows.simframes.frames` needs into a
:class:`Plan` (no frames yet; the :class:`~twin.geometry.Geometry` it was resolved from stays on
the plan): the scan's true trajectory and its position capture, the true probe modes on the fine
grid and on the reconstruction grid with the model a user has of them, the sample's slabs and
ground truth where the frames touch, and the detector's mask and response.
:meth:`Plan.to_data` hands frames kept in memory to a reconstruction as the CXI file of
:func:`twin.workflows.simulate.simulate` would. The physics is described in
:mod:`twin.workflows.simulate`.
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass, field

import numpy as np

from twin.acquisition import detector as _detector
from twin.acquisition import scan
from twin.beam import probe
from twin.core.errors import TwinInputError
from twin.geometry import Geometry
from twin.io.datamodel import GroundTruth, PtychoData
from twin.sample import phantoms
from twin.scenario import Scenario

#: Frames one simulation may hold (10⁸ frames of 64² at 2 bytes are 0.8 TB).
MAX_FRAMES = 100_000_000


def _bytes(n: float) -> str:
    for scale, unit in ((1e12, "TB"), (1e9, "GB"), (1e6, "MB")):
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{n:.0f} B"


@dataclass
class Plan:
    """Everything :func:`~twin.workflows.simframes.frames` needs; arrays on the reconstruction
    grid unless ``fine_``."""

    scenario: Scenario
    det: _detector.DetectorMode
    wavelength_m: float
    n_eff: int                  # stored frame side (after binning)
    n_native: int               # native detector pixels simulated per side
    dx_m: float                 # reconstruction object pixel λz/(n·p)
    exposure_s: float
    photons_per_frame: float    # per beam, incident
    probes: np.ndarray          # (B, M, n_native, n_native) true modes, reconstruction grid
    beam_offsets_m: np.ndarray  # (B, 2)
    trajectory: scan.Trajectory
    capture: scan.Capture
    blur_samples: int
    object: np.ndarray          # (H, W) complex64 ground truth, reconstruction grid
    mask: np.ndarray            # (n_eff, n_eff) uint8
    origin_m: np.ndarray        # (2,) x, y of the object's centre pixel from the scan centre
    first_px: np.ndarray        # (2,) grid index (row, col) of the object's pixel [0, 0]
    illumination: np.ndarray = None       # (1, n_native, n_native) the user's probe model
    beam_illumination: np.ndarray = None  # (B, 1, n_native, n_native) per beam (B > 1 only)
    oversampling: int = 1
    n_window: int = 0                     # fine window side N = s²·n_native
    fine_probes: np.ndarray = None        # (B, M, N, N)
    fine_slices: np.ndarray = None        # (L, s·H, s·W) complex64 slab transmissions
    slice_spacing_m: float = 0.0
    response: _detector.Response | None = None
    dead_time_model: str = "nonparalyzable"
    backend: str = "auto"                 # where the exit waves are computed (NumPy or CuPy)
    projection: int | None = None         # a 3D scan's projection index: its own noise
    geometry: Geometry | None = None      # the scenario's, as the plan was built from it
    _cache: dict = field(default_factory=dict, repr=False)
    _device: dict = field(default_factory=dict, repr=False)

    @property
    def n_frames(self) -> int:
        return len(self.trajectory)

    @property
    def fine_pixel_m(self) -> float:
        return self.dx_m / self.oversampling

    def top_left_px(self, positions_m: np.ndarray) -> np.ndarray:
        """Top-left (row, col) of the ``n_native``-pixel reconstruction window on the object
        grid (reconstruction pixels, from the object's pixel [0, 0]; fractional).

        Pixel coordinates are taken on the whole scan's grid first and the window's integer
        offset subtracted after, so that a frame's sub-pixel shift does not depend on the
        window (a part of a run reproduces the whole run bit for bit).

        Parameters
        ----------
        positions_m : (…, 2) ndarray
            Beam positions (x, y), metres from the scan centre.

        Returns
        -------
        (…, 2) float ndarray
        """
        px = positions_m[..., ::-1] / self.dx_m                       # (row, col) from centre
        return px - self.first_px - self.n_native // 2

    def fine_top_left_px(self, positions_m: np.ndarray) -> np.ndarray:
        """Top-left (row, col) of the fine simulation window (side ``n_window``) on the fine
        object grid (fine pixels, from the first fine pixel of the object's pixel [0, 0];
        fractional).

        Fine pixel f of the grid is centred at (f − (s−1)/2)·dx/s from the scan centre, so that
        each reconstruction pixel k covers fine pixels k·s … k·s + s − 1.

        Parameters
        ----------
        positions_m : (…, 2) ndarray
            Beam positions (x, y), metres from the scan centre.

        Returns
        -------
        (…, 2) float ndarray
        """
        s = self.oversampling
        px = positions_m[..., ::-1] / self.fine_pixel_m + (s - 1) / 2
        return px - self.first_px * s - self.n_window // 2

    def to_data(self, counts: np.ndarray) -> PtychoData:
        """The plan's first ``len(counts)`` frames as the reconstruction reads them from the
        CXI file :func:`~twin.workflows.simulate.simulate` writes: measured positions, the
        user's probe model (never the simulated modes), the ground truth with the true
        positions.

        Parameters
        ----------
        counts : (k, n, n) array
            The recorded counts of the plan's first k frames
            (:func:`~twin.workflows.simframes.frames`).

        Returns
        -------
        twin.io.datamodel.PtychoData
            Frames as float32; translations (x, y, 0) in metres from the object's centre
            pixel; ``beam_offsets_m`` only with several beams.
        """
        g = self.geometry
        n = len(counts)
        truth = GroundTruth(object=self.object, pixel_size_m=self.dx_m,
                            translations_m=_translations(self.capture.true_positions_m[:n],
                                                         self.origin_m))
        return PtychoData(np.asarray(counts, np.float32),
                          _translations(self.capture.positions_m[:n], self.origin_m),
                          g.distance_m, g.pixel_stored_m, g.energy_kev, self.illumination,
                          self.mask, g.exposure_s, self.scenario.scan.frame_rate_hz, g.binning,
                          truth, self.beam_offsets_m if g.n_beams > 1 else None,
                          self.beam_illumination)


def _translations(positions_m: np.ndarray, origin_m: np.ndarray) -> np.ndarray:
    """(N, 3) translations (x, y, 0) of CONTRACTS §3: positions (N, 2) in metres from the
    object's centre pixel at ``origin_m``."""
    return np.concatenate([positions_m - origin_m, np.zeros((len(positions_m), 1))], axis=1)


def fourier_downsample(a: np.ndarray, factor: int) -> np.ndarray:
    """(…, m, m) → (…, m/factor, m/factor) by keeping the central part of the centred
    spectrum (unitary transforms: Σ|a|² of the band-limited part is kept).

    Parameters
    ----------
    a : complex (…, m, m)
        Sampled at pixel dx, origin at index m//2.
    factor : int
        m must be a multiple.
    """
    if factor == 1:
        return a
    m = a.shape[-1]
    n = m // factor
    sh = np.fft.fftshift
    spec = sh(np.fft.fft2(np.fft.ifftshift(a, axes=(-2, -1)), norm="ortho"), axes=(-2, -1))
    c = m // 2 - n // 2
    spec = spec[..., c:c + n, c:c + n]
    return sh(np.fft.ifft2(np.fft.ifftshift(spec, axes=(-2, -1)), norm="ortho"),
              axes=(-2, -1)).astype(a.dtype)


def _sim_backend() -> str:
    """Where exit waves are computed: ``TWIN_SIM_BACKEND`` = "auto" (the GPU when CuPy sees
    one; the default), "numpy" or "cupy"."""
    b = os.environ.get("TWIN_SIM_BACKEND", "auto")
    if b not in ("auto", "numpy", "cupy"):
        raise TwinInputError("TWIN_SIM_BACKEND", b, "one of auto, numpy, cupy")
    return b


def noise_key(seed: int, projection: int | None) -> list[int]:
    """The random stream of a simulation's noise (photon counting, position errors): the seed,
    and a 3D scan's projection index, so that every projection of one sample (the phantom is
    the seed's) has its own, independent noise.

    Parameters
    ----------
    seed : int
        The scenario's seed.
    projection : int or None
        A 3D scan's projection index (None: a 2D scan).

    Returns
    -------
    list of int
        ``[seed]``, or ``[seed, PROJECTION_STREAM, projection]``: entropy for
        ``numpy.random.default_rng`` (callers append their own sub-stream keys).
    """
    return [seed] if projection is None else [seed, PROJECTION_STREAM, projection]


#: Marks a projection's noise stream (any constant distinct from a block index works).
PROJECTION_STREAM = 90_001


def plan(s: Scenario, n_frames: int | None = None, angle_deg: float = 0.0,
         projection: int | None = None, g: Geometry | None = None,
         sample_shift_m=(0.0, 0.0)) -> Plan:
    """Geometry, probe, trajectory, position capture and ground truth of a scenario, the
    sample rotated by ``angle_deg`` about the vertical axis.

    Parameters
    ----------
    s : Scenario
    n_frames : int or None
        Keep only the first scan points (``--frames``).
    angle_deg : float
        Rotation of the sample, degrees.
    projection : int or None
        A 3D scan's projection index: the frames' and positions' noise is drawn from
        :func:`noise_key` (None: the seed's own stream, as a 2D scan).
    g : Geometry or None
        ``Geometry.from_scenario(s)`` where the caller has it (the seed aside, it must be
        ``s``'s); None: resolved here.
    sample_shift_m : (float, float)
        Where the sample sits (x, y), metres, relative to the rotation axis and the scan centre
        at this projection: a misaligned projection. The ground truth moves with it.

    Returns
    -------
    Plan
        Everything :func:`~twin.workflows.simframes.frames` needs; ``Plan.geometry`` is ``g``.
    """
    g = g if g is not None else Geometry.from_scenario(s)
    try:
        window = _detector.crop_window(g.detector, g.n_stored)
    except ValueError as exc:
        raise TwinInputError("detector.crop", g.n_stored, str(exc)) from None
    _check_frames(g, n_frames)
    traj = _trajectory(s, g, n_frames)
    offsets = scan.multibeam_offsets(g.n_beams, g.lines_per_beam * g.slow_step_m * g.n_beams)
    sc = s.scan
    cap = scan.panda_capture(traj, sc.frame_rate_hz, sc.position_capture_rate_hz,
                             sc.encoder_resolution_nm * 1e-9, sc.capture_jitter_s, s.seed,
                             rng=(None if projection is None else np.random.default_rng(
                                 noise_key(s.seed, projection) + [7331])),
                             encoder_noise_m=sc.encoder_noise_nm * 1e-9,
                             latency_s=sc.capture_latency_s)
    blur = g.blur_samples(s)
    sample = _sample_window(s, g, traj.sub_positions(blur), offsets, angle_deg,
                            sample_shift_m)
    beam = _beam(s, g)
    mask, response = _detector_window(s, g, window)
    det = g.detector
    return Plan(s, det, g.wavelength_m, g.n_stored, g.n_native, g.object_pixel_m, g.exposure_s,
                g.photons_per_frame, beam.probes, offsets, traj, cap, blur, sample.object, mask,
                sample.origin_m, sample.first_px,
                illumination=beam.illumination, beam_illumination=beam.beam_illumination,
                oversampling=g.oversampling, n_window=beam.n_window,
                fine_probes=beam.fine_probes, fine_slices=sample.fine_slices,
                slice_spacing_m=sample.slice_spacing_m, response=response,
                dead_time_model=s.detector.dead_time_model or det.dead_time_model,
                backend=_sim_backend(), projection=projection, geometry=g)


def _check_frames(g: Geometry, n_frames: int | None) -> None:
    """Refuse a ``--frames`` that is not positive, and a whole scan of more than
    :data:`MAX_FRAMES` frames (exit 2, naming what to do instead)."""
    if n_frames is not None and n_frames < 1:
        raise TwinInputError("--frames", n_frames, "must be a positive number of frames")
    if n_frames is None and g.frames_per_projection > MAX_FRAMES:
        raise TwinInputError("scan", f"{g.frames_per_projection:,} frames", (
            f"at most {MAX_FRAMES:,} frames in one simulation: the file would hold "
            f"{_bytes(g.frames_per_projection * g.n_stored ** 2 * 2)} of frames; simulate a part "
            "with --frames N (or [run] frames), or a smaller field"))


def _trajectory(s: Scenario, g: Geometry, n_frames: int | None) -> scan.Trajectory:
    """The scan's true trajectory (fly or step, with drift), cut to its first ``n_frames``
    points; only the lines those points need are made, so a part of a huge scan stays small.

    Parameters
    ----------
    s : Scenario
    g : Geometry
        ``s``'s.
    n_frames : int or None
        Keep only the first scan points (None: all).

    Returns
    -------
    twin.acquisition.scan.Trajectory
    """
    sc = s.scan
    lines, slow = g.lines_per_beam, g.slow_step_m
    max_lines = None if n_frames is None else math.ceil(n_frames / g.frames_per_line)
    if sc.mode == "fly":
        traj = scan.snake_fly_scan(g.fov_x_m, lines * slow, g.fast_step_m, slow,
                                   sc.frame_rate_hz, g.exposure_s, sc.line_turnaround_s, lines,
                                   vibration=(sc.stage_vibration_nm * 1e-9,
                                              sc.stage_vibration_hz), max_lines=max_lines)
    else:
        traj = scan.step_scan(g.fov_x_m, lines * slow, g.fast_step_m, slow,
                              sc.frame_rate_hz, g.exposure_s, sc.step_settle_s,
                              max_lines=max_lines)
    if any(sc.drift_nm_per_s):
        traj = traj.with_drift([v * 1e-9 for v in sc.drift_nm_per_s])
    if n_frames is not None:
        k = min(n_frames, len(traj))
        traj = scan.Trajectory(traj.positions_m[:k], traj.velocity_m_per_s[:k],
                               traj.t_start_s[:k], traj.exposure_s, traj.line[:k], traj.kind,
                               traj.vibration, traj.drift_m_per_s)
    return traj


@dataclass(frozen=True)
class _SampleWindow:
    """The part of the sample the simulated frames see (:func:`_sample_window`)."""

    object: np.ndarray          # (H, W) complex64 ground truth, reconstruction grid
    fine_slices: np.ndarray     # (L, s·H, s·W) complex64 slab transmissions
    slice_spacing_m: float      # between the slabs (0 for one slice)
    origin_m: np.ndarray        # (2,) x, y of the object's centre pixel from the scan centre
    first_px: np.ndarray        # (2,) grid index (row, col) of the object's pixel [0, 0]


def _sample_window(s: Scenario, g: Geometry, sub_positions_m: np.ndarray,
                   offsets_m: np.ndarray, angle_deg: float,
                   sample_shift_m=(0.0, 0.0)) -> _SampleWindow:
    """The sample's slabs (fine grid) and ground truth (reconstruction grid) where frames touch.

    The object grid is fixed by the whole scan (pixel centres k·dx from the scan centre), and
    only the window that the simulated frames touch is computed: a part (``--frames``) sees
    exactly the same pixels as the whole run. The fine window is s times wider than the
    reconstruction's, so the margin is s·n/2 reconstruction pixels.

    Parameters
    ----------
    s : Scenario
    g : Geometry
        ``s``'s.
    sub_positions_m : (N, K, 2) ndarray
        The trajectory's positions (x, y, metres) at every motion-blur sample.
    offsets_m : (B, 2) ndarray
        The beams' offsets (x, y, metres).
    angle_deg : float
        Rotation of the sample, degrees.
    sample_shift_m : (float, float)
        The sample's displacement (x, y), metres (:func:`plan`).

    Returns
    -------
    _SampleWindow
    """
    ovs, dx, dxf = g.oversampling, g.object_pixel_m, g.fine_pixel_m
    allpos = (sub_positions_m[:, :, None, :] + offsets_m[None, None, :, :]).reshape(-1, 2)
    half = (ovs * g.n_native) // 2 + 2
    lo = np.floor(allpos.min(axis=0) / dx).astype(int) - half
    hi = np.ceil(allpos.max(axis=0) / dx).astype(int) + half
    gcols = np.arange(lo[0], hi[0] + 1)
    grows = np.arange(lo[1], hi[1] + 1)
    if len(grows) * len(gcols) * ovs * ovs > 400_000_000:
        raise TwinInputError("scan", f"{len(grows)}×{len(gcols)} object pixels",
                             "is too large to simulate at once; use --frames for a part")
    n_slices = g.multislice_slices(s, angle_deg)
    frows = (np.arange(grows[0] * ovs, (grows[-1] + 1) * ovs) - (ovs - 1) / 2) * dxf
    fcols = (np.arange(gcols[0] * ovs, (gcols[-1] + 1) * ovs) - (ovs - 1) / 2) * dxf
    grid = phantoms.Grid(y_m=frows - sample_shift_m[1], x_m=fcols - sample_shift_m[0],
                         pixel_m=dxf, energy_kev=g.energy_kev, angle_deg=angle_deg,
                         n_slices=n_slices, seed=s.seed)
    proj = phantoms.projected_slabs(s.sample.phantom, s.sample, g.sample_extent, grid)
    fine_slices = phantoms.transmission_from_projection(proj, g.energy_kev)
    # ground truth: the whole projection, box-averaged onto the reconstruction grid
    fine_total = phantoms.transmission_from_projection(proj.sum(axis=0), g.energy_kev)
    obj = fine_total.reshape(len(grows), ovs, len(gcols), ovs).mean(axis=(1, 3)).astype(
        np.complex64)
    del proj, fine_total
    edges = grid.slab_edges_m(g.sample_extent)
    spacing = float(edges[1] - edges[0]) if n_slices > 1 else 0.0
    # the window's centre pixel is the origin of the file's translations (CONTRACTS §3)
    origin = np.array([gcols[len(gcols) // 2], grows[len(grows) // 2]]) * dx
    ext = g.sample_extent
    if g.fov_x_m > 1.5 * ext.width_m or g.fov_y_m > 1.5 * ext.height_m:
        warnings.warn("the scan is much larger than the sample: many frames see no sample",
                      stacklevel=3)
    return _SampleWindow(obj, fine_slices, spacing, origin, np.array([grows[0], gcols[0]]))


@dataclass(frozen=True)
class _Beam:
    """The probes of a simulation (:func:`_beam`)."""

    probes: np.ndarray            # (B, M, n_native, n_native) true modes, reconstruction grid
    fine_probes: np.ndarray       # (B, M, N, N) the modes that make the data, fine grid
    n_window: int                 # fine window side N = s²·n_native
    illumination: np.ndarray      # (1, n_native, n_native) the user's probe model
    beam_illumination: np.ndarray | None  # (B, 1, n_native, n_native) per beam (B > 1 only)


def _beam(s: Scenario, g: Geometry) -> _Beam:
    """The true probe modes of every beam (fine grid, and band-limited onto the
    reconstruction grid) and the models a user has of them.

    Parameters
    ----------
    s : Scenario
    g : Geometry
        ``s``'s.

    Returns
    -------
    _Beam
    """
    ovs, n_nat, n_beams = g.oversampling, g.n_native, g.n_beams
    n_win = ovs * ovs * n_nat
    lam, dx, defocus, photons = g.wavelength_m, g.object_pixel_m, g.defocus_m, g.photons_per_frame
    zp = probe.ZonePlate(g.zone_plate_diameter_m, g.outermost_zone_m, g.central_stop_m)
    if g.source_sigma_focus_m is not None:
        kw = dict(n_modes=s.beam.coherent_modes, source_sigma_m=g.source_sigma_focus_m)
    else:
        kw = dict(n_modes=s.beam.coherent_modes if s.beam.coherent_fraction < 1 else 1,
                  coherent_fraction=s.beam.coherent_fraction)
    codes = [None if n_beams == 1 else probe.coded_aperture(n_win, s.seed + i, 4 * ovs)
             for i in range(n_beams)]
    fine = [probe.probe_modes(n_win, g.fine_pixel_m, zp, lam, defocus, photons=photons,
                              code=codes[i], **kw)
            for i in range(n_beams)]
    m_max = max(len(f) for f in fine)
    fine_probes = np.zeros((n_beams, m_max, n_win, n_win), np.complex64)
    for i, f in enumerate(fine):
        fine_probes[i, :len(f)] = f
    # the true modes on the reconstruction grid: the central s·n fine pixels, band-limited
    c = n_win // 2 - (ovs * n_nat) // 2
    true = fourier_downsample(fine_probes[..., c:c + ovs * n_nat, c:c + ovs * n_nat], ovs)
    # what a user has: the zone plate at the planned defocus, one coherent mode
    model = probe.zone_plate_probe(n_nat, dx, zp, lam, defocus)
    illumination = (model * np.sqrt(photons))[None].astype(np.complex64)
    # several beams: each beam's model is the zone plate through its own coded aperture, a
    # design the user knows (the codes on the reconstruction grid's frequencies: every s-th
    # frequency of the fine grid's, whose pitch is s times finer)
    beam_illumination = None
    if n_beams > 1:
        k = (ovs * np.round(np.fft.fftfreq(n_nat, 1.0 / n_nat)).astype(int)) % n_win
        beam_illumination = np.stack([
            probe.zone_plate_probe(n_nat, dx, zp, lam, defocus, code=c[np.ix_(k, k)])
            * np.sqrt(photons) for c in codes])[:, None].astype(np.complex64)
    return _Beam(true.astype(np.complex64), fine_probes, n_win, illumination, beam_illumination)


def _detector_window(s: Scenario, g: Geometry, window: tuple[slice, slice]
                     ) -> tuple[np.ndarray, _detector.Response | None]:
    """The stored frames' mask ((n, n) uint8, 1 = valid: a binned pixel is valid where all its
    native pixels are) and the detector's response over the native ``window`` (None where
    ``simulation.detector_response`` is off)."""
    n_eff, b = g.n_stored, g.binning
    gap = _detector.gap_mask(g.detector)
    rows, cols = window
    gw = gap[rows, cols]
    mask = gw.reshape(n_eff, b, n_eff, b).min(axis=(1, 3)).astype(np.uint8)
    response = (_detector.Response.of(g.detector, g.energy_kev, window)
                if s.simulation.detector_response else None)
    return mask, response
