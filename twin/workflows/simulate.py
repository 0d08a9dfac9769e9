"""Simulated acquisition: phantom → probe → scan → detector → CXI (``twin simulate``).

:func:`plan` works out the grids and the geometry of a scenario (no frames yet); :func:`frames`
yields detector frames chunk by chunk; :func:`simulate` streams them into a CXI file.

Sampling. Frames are computed on the detector's native pixels inside the crop window
(n·b pixels for an n × n crop at binning b), so the object pixel is dx = λz/(n·b·p_native) —
equal to λz/(n·p_eff) — and on-chip binning acts on simulated native pixels as it does on the
chip. The illumination stored in the file is on that native grid (n·b)²; for binned data the
reader upsamples by b (Batey et al. 2014), which the file's ``upsampling`` attribute says.

Randomness. Frames are made in blocks of :data:`BLOCK` whose random stream is seeded by
(seed, block index): the same scenario and seed give the same frames, and ``--frames N`` gives
exactly the first N frames of the full run.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from twin.acquisition import detector as _detector
from twin.sample import phantoms
from twin.beam import probe
from twin.operators import ptychography
from twin.acquisition import scan
from twin.core.errors import TwinInputError
from twin.io.files import CXIWriter
from twin.geometry import Geometry
from twin.scenario import Scenario

BLOCK = 256
#: Sub-pixel shifts of the probe are rounded to 1/32 pixel (cached shifted probes): positions
#: are then exact to ±1/64 of an object pixel, e.g. ±0.7 nm at 44 nm pixels.
SUBPIXEL_QUANTUM = 1 / 32


@dataclass
class Plan:
    scenario: Scenario
    det: _detector.DetectorMode
    wavelength_m: float
    n_eff: int                  # stored frame side (after binning)
    n_native: int               # simulated frame side (native pixels)
    dx_m: float                 # object pixel
    exposure_s: float
    photons_per_frame: float    # per beam, incident
    probes: np.ndarray          # (B, M, n_native, n_native)
    beam_offsets_m: np.ndarray  # (B, 2)
    trajectory: scan.Trajectory
    capture: scan.Capture
    blur_samples: int
    object: np.ndarray          # (H, W) complex64 ground truth
    mask: np.ndarray            # (n_eff, n_eff) uint8
    origin_m: np.ndarray        # (2,) x, y of the object's centre pixel from the scan centre
    first_px: np.ndarray        # (2,) grid index (row, col) of the object's pixel [0, 0]

    @property
    def n_frames(self) -> int:
        return len(self.trajectory)

    def top_left_px(self, positions_m: np.ndarray) -> np.ndarray:
        """(…, 2) probe-window top-left (row, col) on the object grid for positions (…, 2).

        Pixel coordinates are taken on the whole scan's grid first and the window's integer
        offset subtracted after, so that a frame's sub-pixel shift does not depend on the
        window (a part of a run reproduces the whole run bit for bit).
        """
        px = positions_m[..., ::-1] / self.dx_m                       # (row, col) from centre
        return px - self.first_px - self.n_native // 2


def _object(s: Scenario, dx: float, y: np.ndarray, x: np.ndarray, energy: float,
            angle_deg: float = 0.0) -> np.ndarray:
    """Ground-truth transmission (len(y), len(x)) at pixel centres y, x (metres from the scan
    centre, which is on the rotation axis), the sample rotated by ``angle_deg``."""
    h, w = len(y), len(x)
    shape = (h, w)
    smp = s.sample
    if smp.phantom == "siemens_star":
        st = smp.star
        radius = 0.5 * smp.cross_section_um[0] * 1e-6        # the star is the sample's width
        return phantoms.siemens_star_transmission(
            shape, dx, energy, spokes=st.spokes, radius_m=radius,
            centre_px=(-y[0] / dx, -x[0] / dx),
            spoke_material=st.spoke_material, spoke_thickness_m=st.spoke_thickness_um * 1e-6,
            membrane_material=st.membrane_material,
            membrane_thickness_m=st.membrane_thickness_um * 1e-6)
    if smp.phantom == "fibre_bundle":
        fb = smp.fibres
        diameter = smp.cross_section_um[0] * 1e-6
        bundle = phantoms.FibreBundle(
            shape=(h, 1, w), voxel_size_m=dx, sample_diameter_m=diameter, seed=s.seed,
            fibre_material=fb.fibre_material, matrix_material=fb.matrix_material,
            outer_diameter_m=(fb.outer_diameter_um_mean * 1e-6, fb.outer_diameter_um_sd * 1e-6),
            inner_diameter_m=(fb.inner_diameter_um_mean * 1e-6, fb.inner_diameter_um_sd * 1e-6),
            dispersion_deg=fb.orientation_dispersion_deg, packing_fraction=fb.packing_fraction)
        proj = bundle.projection_analytic(y, x, angle_deg, energy)
        return phantoms.transmission_from_projection(proj, energy)
    if smp.phantom == "integrated_circuit":
        c = smp.circuit
        thick = smp.cross_section_um[1] * 1e-6
        nz = int(math.ceil(thick / dx)) + 2
        ic = phantoms.IntegratedCircuit(
            shape=(h, nz, w), voxel_size_m=dx, thickness_m=thick, n_layers=c.n_layers,
            seed=s.seed, min_pitch_m=c.min_pitch_nm * 1e-9, max_pitch_m=c.max_pitch_nm * 1e-9,
            substrate_thickness_m=min(c.substrate_thickness_um * 1e-6, 0.5 * thick),
            dielectric_material=c.dielectric_material, wire_material=c.wire_material,
            via_material=c.via_material, substrate_material=c.substrate_material,
            origin_m=(float(y[h // 2]), float(x[w // 2])))
        return phantoms.transmission_from_projection(ic.projection([angle_deg], energy)[0],
                                                     energy)
    # uniform: a cylinder or box of the bulk material
    from twin.sample import materials

    m = materials.lookup(smp.material, energy, smp.density_g_per_cm3)
    from twin.sample import dose

    sx, sz = (v * 1e-6 for v in smp.cross_section_um)
    t = dose.chord_lengths_m(smp.shape, sx, sz, 0.0, np.deg2rad([angle_deg]), s_m=x)[0]
    t = np.where(np.abs(y)[:, None] <= smp.height_um * 1e-6 / 2, t[None, :], 0.0)
    return phantoms.transmission_from_projection((m.delta + 1j * m.beta) * t, energy)


def plan(s: Scenario, n_frames: int | None = None, angle_deg: float = 0.0) -> Plan:
    """Geometry, probe, trajectory, position capture and ground truth of a scenario, the
    sample rotated by ``angle_deg`` about the vertical axis."""
    g = Geometry.from_scenario(s)
    det, lam, n_eff, b, n_nat = g.detector, g.wavelength_m, g.n_stored, g.binning, g.n_native
    try:
        _detector.crop_window(det, n_eff)
    except ValueError as exc:
        raise TwinInputError("detector.crop", n_eff, str(exc)) from None
    dx = g.object_pixel_m
    exposure = g.exposure_s
    sc = s.scan
    n_beams = g.n_beams
    fov_x, fov_y = g.fov_x_m, g.fov_y_m
    slow = g.slow_step_m
    lines = g.lines_per_beam
    if sc.mode == "fly":
        traj = scan.snake_fly_scan(fov_x, lines * slow, g.fast_step_m, slow,
                                   sc.frame_rate_hz, exposure, sc.line_turnaround_s, lines,
                                   vibration=(sc.stage_vibration_nm * 1e-9,
                                              sc.stage_vibration_hz))
    else:
        traj = scan.step_scan(fov_x, lines * slow, g.fast_step_m, slow,
                              sc.frame_rate_hz, exposure, sc.step_settle_s)
    offsets = scan.multibeam_offsets(n_beams, lines * slow * n_beams)
    if n_frames is not None:
        if n_frames < 1:
            raise TwinInputError("--frames", n_frames, "must be a positive number of frames")
        k = min(n_frames, len(traj))
        traj = scan.Trajectory(traj.positions_m[:k], traj.velocity_m_per_s[:k],
                               traj.t_start_s[:k], traj.exposure_s, traj.line[:k], traj.kind,
                               traj.vibration)
    cap = scan.panda_capture(traj, sc.frame_rate_hz, sc.position_capture_rate_hz,
                             sc.encoder_resolution_nm * 1e-9, sc.capture_jitter_s, s.seed)
    if sc.blur_samples is not None:
        blur = sc.blur_samples
    elif traj.kind == "fly":
        travel = g.fast_step_m * sc.frame_rate_hz * exposure
        blur = int(min(16, max(1, math.ceil(travel / (dx / 2)))))
    else:
        blur = 1

    # The object grid is fixed by the whole scan (pixel centres k·dx from the scan centre), and
    # only the window that the simulated frames touch is computed: a part (--frames) sees
    # exactly the same pixels as the whole run.
    sub = traj.sub_positions(blur)
    allpos = (sub[:, :, None, :] + offsets[None, None, :, :]).reshape(-1, 2)
    half = n_nat // 2 + 2
    lo = np.floor(allpos.min(axis=0) / dx).astype(int) - half
    hi = np.ceil(allpos.max(axis=0) / dx).astype(int) + half
    gcols = np.arange(lo[0], hi[0] + 1)
    grows = np.arange(lo[1], hi[1] + 1)
    if len(grows) * len(gcols) > 400_000_000:
        raise TwinInputError("scan", f"{len(grows)}×{len(gcols)} object pixels",
                             "is too large to simulate at once; use --frames for a part")
    obj = _object(s, dx, grows * dx, gcols * dx, s.beam.energy_kev, angle_deg)
    # the window's centre pixel is the origin of the file's translations (CONTRACTS §3)
    origin = np.array([gcols[len(gcols) // 2], grows[len(grows) // 2]]) * dx
    extent = np.array(s.sample.cross_section_um[0]) * 1e-6
    if fov_x > 1.5 * extent or fov_y > 1.5 * s.sample.height_um * 1e-6:
        warnings.warn("the scan is much larger than the sample: many frames see no sample",
                      stacklevel=2)

    zp = probe.ZonePlate(g.zone_plate_diameter_m, g.outermost_zone_m, g.central_stop_m)
    defocus = g.defocus_m
    photons = g.photons_per_frame
    modes = s.beam.coherent_modes if s.beam.coherent_fraction < 1 else 1
    probes = np.stack([
        probe.probe_modes(n_nat, dx, zp, lam, defocus, n_modes=modes,
                          coherent_fraction=s.beam.coherent_fraction, photons=photons,
                          code=None if n_beams == 1 else probe.coded_aperture(n_nat, s.seed + i))
        for i in range(n_beams)])

    gap = _detector.gap_mask(det)
    rows, cols = _detector.crop_window(det, n_eff)
    g = gap[rows, cols]
    mask = g.reshape(n_eff, b, n_eff, b).min(axis=(1, 3)).astype(np.uint8)
    return Plan(s, det, lam, n_eff, n_nat, dx, exposure, photons, probes, offsets, traj, cap,
                blur, obj, mask, origin, np.array([grows[0], gcols[0]]))


def expected_frames(p: Plan, start: int, stop: int) -> np.ndarray:
    """(k, n_native, n_native) float32 mean photons per native pixel for frames start..stop."""
    sub = p.trajectory.sub_positions(p.blur_samples)[start:stop]          # (k, K, 2)
    k, n_sub = sub.shape[:2]
    acc = np.zeros((k, p.n_native, p.n_native), np.float32)
    for bi, off in enumerate(p.beam_offsets_m):
        pos = p.top_left_px(sub + off)                                   # (k, K, 2)
        op = ptychography.FarFieldPtychography(p.probes[bi], pos.reshape(-1, 2), p.object.shape,
                                               subpixel_quantum=SUBPIXEL_QUANTUM)
        acc += op.intensity(p.object).reshape(k, n_sub, p.n_native, p.n_native).mean(axis=1)
    return acc


def frames(p: Plan, start: int = 0, stop: int | None = None):
    """Yield (start, counts) blocks of :data:`BLOCK` frames: the detector's recorded counts."""
    stop = p.n_frames if stop is None else stop
    det = p.det
    for b0 in range(start - start % BLOCK, stop, BLOCK):
        b1 = min(b0 + BLOCK, p.n_frames)
        lam = expected_frames(p, b0, b1)
        rng = np.random.default_rng([p.scenario.seed, b0 // BLOCK])
        counts = _detector.count_frames(lam, det, p.exposure_s, rng,
                                        p.scenario.detector.dead_time_model,
                                        p.scenario.detector.overflow, p.mask)
        lo, hi = max(start, b0), min(stop, b1)
        yield lo, counts[lo - b0:hi - b0]


@dataclass(frozen=True)
class SimulationSummary:
    path: Path
    n_frames: int
    frame_shape: tuple[int, int]
    object_pixel_m: float
    peak_counts: float
    mean_counts_per_frame: float
    saturated_frames: int
    position_error_rms_m: float
    blur_samples: int


def simulate(s: Scenario, out: str | Path, seed: int | None = None,
             n_frames: int | None = None, progress: bool = False,
             compression: str = "bitshuffle") -> SimulationSummary:
    """Write the scenario's acquisition as a CXI file (CONTRACTS §3), streamed in blocks."""
    if seed is not None:
        s = s.model_copy(update={"seed": int(seed)})
    p = plan(s, n_frames)
    det = p.det
    dtype = (np.float32 if det.float8 else np.uint16 if det.max_counts <= 65535 else np.uint32)
    peak, total, sat = 0.0, 0.0, 0
    full = _detector.saturation_level(det)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=p.n_frames, desc="simulate", unit="frame")
    with CXIWriter(out, p.n_frames, (p.n_eff, p.n_eff), dtype,
                   distance_m=s.detector.distance_m, pixel_size_m=det.effective_pixel_size_m,
                   energy_kev=s.beam.energy_kev, compression=compression) as w:
        for start, counts in frames(p):
            w.write_frames(start, counts.astype(dtype))
            peak = max(peak, float(counts.max()))
            total += float(counts.sum())
            sat += int(np.sum(counts.reshape(len(counts), -1).max(axis=1) >= full))
            if bar is not None:
                bar.update(len(counts))
        tr = np.concatenate([p.capture.positions_m - p.origin_m, np.zeros((p.n_frames, 1))],
                            axis=1)
        w.write("entry_1/data_1/translation", tr)
        w.write("entry_1/instrument_1/detector_1/mask", p.mask)
        w.write("entry_1/instrument_1/source_1/illumination", p.probes[0],
                pixel_size_m=p.dx_m, upsampling=det.binning)
        w.write("entry_1/sample_1/ground_truth", p.object, pixel_size_m=p.dx_m)
        w.write("entry_1/twin/true_translation",
                np.concatenate([p.capture.true_positions_m - p.origin_m,
                                np.zeros((p.n_frames, 1))], axis=1))
        w.write("entry_1/twin/object_origin_m", p.origin_m)
        w.write("entry_1/twin/captured", p.capture.captured.astype(np.uint8))
        w.write("entry_1/twin/beam_offsets_m", p.beam_offsets_m)
        w.write("entry_1/twin/probes", p.probes)
        w.write("entry_1/twin/scenario", s.model_dump_json())
        w.write("entry_1/twin/seed", s.seed)
        w.write("entry_1/twin/exposure_s", p.exposure_s)
        w.write("entry_1/twin/frame_rate_hz", s.scan.frame_rate_hz)
        w.write("entry_1/twin/upsampling", det.binning)
        w.write("entry_1/twin/saturated_frames", sat)
    if bar is not None:
        bar.close()
    err = p.capture.error_m
    return SimulationSummary(Path(out), p.n_frames, (p.n_eff, p.n_eff), p.dx_m, peak,
                             total / max(p.n_frames, 1), sat,
                             float(np.sqrt(np.mean(np.sum(err ** 2, axis=1)))), p.blur_samples)
