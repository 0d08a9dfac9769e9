"""Simulated acquisition: phantom → probe → scan → detector → CXI (``twin simulate``).

:func:`plan` works out the grids and the geometry of a scenario (no frames yet; the
:class:`~twin.geometry.Geometry` it was resolved from stays on the plan); :func:`frames` yields
detector frames chunk by chunk; :func:`simulate` streams them into a CXI file, and
:meth:`Plan.to_data` hands frames kept in memory to a reconstruction as that file would.
The plan lives in :mod:`twin.workflows.simplan`, the frames in :mod:`twin.workflows.simframes`;
this module writes the file, and its names are the ones the rest of twin uses.

The simulation is as hard as a real experiment (issue 10 §1), so that the reconstruction's
model is never exactly the simulation's:

* **Finer than the reconstruction.** With ``simulation.oversampling`` = s the object and the
  probe live on a grid of pixel dx/s, where dx = λz/(n·b·p_native) is the reconstruction's
  object pixel. The exit wave is taken in a window s times wider than the reconstruction's
  probe window (N = s²·n·b fine pixels: the probe's tails beyond the reconstruction window
  scatter too), so its far field is sampled at p/s over s·n·b·p: the central n·b·s samples
  are kept and each s × s block is summed, so that a native detector pixel integrates the far
  field over its area (midpoint rule with s² points; the samples sit at the centres of the
  sub-pixels, by a half-bin phase ramp for even s). The forward model is the operator
  :class:`twin.operators.farfield.FineFarField` (shifted probes, slices, pruned FFT, |·|²
  over modes, binning; fused numba kernels and every core on the CPU), which
  ``FarFieldPtychography.intensity`` shares: at s = 1 with one slice the two give the same
  bits. Parseval and the closed-form far field of a Gaussian beam test it
  (tests/operators/test_farfield.py, tests/workflows/test_simulate.py).
* **Ground truth on the reconstruction grid.** ``/entry_1/sample_1/ground_truth`` is the mean
  of the complex transmission over the s × s fine pixels of each reconstruction pixel (a box
  filter: every reconstruction pixel is the average of what it covers), at λz/(n·p).
  The true probe modes are resampled to the reconstruction grid by cropping their spectrum
  (exact for band-limited probes).
* **Thick samples** go through multislice (slabs from the phantom registry, angular-spectrum
  propagation between them) where the path through the sample exceeds the depth of field
  2dx²/λ (:meth:`twin.geometry.Geometry.multislice_slices`).
* **Partial coherence** from the source's size and distance (``beam.source_size_um``,
  ``beam.source_distance_m``) as probe modes.
* **Detector response** (quantum efficiency, charge sharing, gain map; dead time photon by
  photon) and **position errors** (encoder noise and steps, drift, PandA jitter and latency).
* **What the file hands the reconstruction** is what a user would have: ``illumination`` is
  the zone plate's probe at the planned defocus (one mode, no source size, no coded
  aperture); the modes that made the data go to ``illumination_ground_truth``. With several
  beams, ``source_1/beam_illumination`` holds each beam's model (the zone plate through that
  beam's coded aperture, a design the user knows) and ``source_1/beam_offsets`` the beams'
  offsets (x, y, metres) from the translations: the multibeam reconstruction's inputs.

The illumination in the file is on the native grid (n·b)²; for binned data the reader
upsamples by b (Batey et al. 2014), which the file's ``upsampling`` attribute says.

Randomness. Frames are made in blocks of :data:`BLOCK` whose random stream is seeded by
(seed, block index): the same scenario and seed give the same frames, and ``--frames N`` gives
exactly the first N frames of the full run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from twin.acquisition import detector as _detector
from twin.core.errors import TwinInputError
from twin.geometry import Geometry
from twin.io.cxi import CXIWriter
from twin.operators.farfield import SUBPIXEL_QUANTUM
from twin.scenario import Scenario
from twin.workflows.simframes import BLOCK, expected_frames, frames
from twin.workflows.simframes import _operator  # noqa: F401  (the tests use simulate._operator)
from twin.workflows.simplan import (MAX_FRAMES, PROJECTION_STREAM, Plan, _bytes, _translations,
                                    fourier_downsample, noise_key, plan)

# the names the rest of twin, the tests and the benchmarks use as ``simulate.NAME``
__all__ = ["BLOCK", "MAX_FRAMES", "PROJECTION_STREAM", "SUBPIXEL_QUANTUM", "Plan",
           "SimulationSummary", "expected_frames", "fourier_downsample", "frames", "noise_key",
           "plan", "simulate"]


@dataclass(frozen=True)
class SimulationSummary:
    """What :func:`simulate` wrote: the file, its frames (n_frames, n, n) of stored pixels, the
    object pixel (metres), the largest count of any pixel, the mean counts per frame, the
    frames with a pixel at the saturation level, the RMS error of the recorded positions
    (metres, recorded − true) and the motion-blur samples per frame."""

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
             compression: str = "gzip", angle_deg: float = 0.0,
             projection: int | None = None, g: Geometry | None = None) -> SimulationSummary:
    """Write the scenario's acquisition as a CXI file (CONTRACTS §3), streamed in blocks.

    Parameters
    ----------
    s : Scenario
    out : str or Path
        The CXI file (written atomically).
    seed : int or None
        Replaces the scenario's seed.
    n_frames : int or None
        Only the first scan points (``--frames``).
    progress : bool
        A progress bar (stderr).
    compression : {"gzip", "bitshuffle", "none"}
        The frames' filters (:class:`twin.io.cxi.CXIWriter`).
    angle_deg : float
        Rotation of the sample about the vertical axis, degrees (one projection of a 3D scan).
    projection : int or None
        A 3D scan's projection index (:func:`plan`).
    g : Geometry or None
        ``Geometry.from_scenario(s)`` where the caller has it.

    Returns
    -------
    SimulationSummary

    Raises
    ------
    TwinInputError
        The plan's (:func:`plan`), or a file the disk cannot hold uncompressed (field ``-o``).
    """
    if seed is not None:
        s = s.model_copy(update={"seed": int(seed)})
    p = plan(s, n_frames, angle_deg, projection, g=g)
    det = p.det
    dtype = (np.float32 if det.float8 else np.uint16 if det.max_counts <= 65535 else np.uint32)
    _check_disk(p, out, dtype)
    with CXIWriter(out, p.n_frames, (p.n_eff, p.n_eff), dtype,
                   distance_m=s.detector.distance_m, pixel_size_m=det.effective_pixel_size_m,
                   energy_kev=s.beam.energy_kev, compression=compression,
                   exposure_s=p.exposure_s, frame_rate_hz=s.scan.frame_rate_hz,
                   photons_per_frame=p.photons_per_frame, title=s.name) as w:
        peak, total, sat = _write_frames(w, p, dtype, progress)
        _write_scan_and_truth(w, p)
        _write_twin_group(w, p, sat)
    err = p.capture.error_m
    return SimulationSummary(Path(out), p.n_frames, (p.n_eff, p.n_eff), p.dx_m, peak,
                             total / max(p.n_frames, 1), sat,
                             float(np.sqrt(np.mean(np.sum(err ** 2, axis=1)))), p.blur_samples)


def _check_disk(p: Plan, out: str | Path, dtype) -> None:
    """Refuse, before writing anything, a file the disk cannot hold (its uncompressed size)."""
    import shutil

    need = p.n_frames * p.n_eff ** 2 * np.dtype(dtype).itemsize
    free = shutil.disk_usage(Path(out).resolve().parent).free
    if need > free:
        raise TwinInputError("-o", str(out), (
            f"needs up to {_bytes(need)} for {p.n_frames:,} frames and the disk has "
            f"{_bytes(free)} free; simulate a part with --frames N"))


def _write_frames(w: CXIWriter, p: Plan, dtype, progress: bool) -> tuple[float, float, int]:
    """Simulate the plan's frames block by block into ``w``.

    Returns
    -------
    peak : float
        The largest count of any pixel.
    total : float
        The counts of all frames.
    saturated : int
        Frames with a pixel at the detector's saturation level.
    """
    peak, total, sat = 0.0, 0.0, 0
    full = _detector.saturation_level(p.det)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=p.n_frames, desc="simulate", unit="frame")
    for start, counts in frames(p):
        w.write_frames(start, counts.astype(dtype))
        peak = max(peak, float(counts.max()))
        total += float(counts.sum())
        sat += int(np.sum(counts.reshape(len(counts), -1).max(axis=1) >= full))
        if bar is not None:
            bar.update(len(counts))
    if bar is not None:
        bar.close()
    return peak, total, sat


def _write_scan_and_truth(w: CXIWriter, p: Plan) -> None:
    """The CXI entries of CONTRACTS §3 besides the frames: measured translations, mask, the
    user's probe model (per beam with several), the simulated modes and the ground truth."""
    det = p.det
    w.write("entry_1/data_1/translation", _translations(p.capture.positions_m, p.origin_m))
    if not p.mask.all():
        # CXI 1.6 and Ptychodus read a non-zero mask value as a *bad* pixel, CONTRACTS §3
        # as a valid one: the mask is written only where some pixel is invalid
        w.write("entry_1/instrument_1/detector_1/mask", p.mask)
    w.write("entry_1/instrument_1/source_1/illumination", p.illumination,
            pixel_size_m=p.dx_m, upsampling=det.binning)
    w.write("entry_1/instrument_1/source_1/illumination_ground_truth", p.probes[0],
            pixel_size_m=p.dx_m)
    if p.beam_illumination is not None:
        # several beams: what the reconstruction needs besides CONTRACTS §3 (each beam's
        # model and its offset from the translations, x, y in metres), as known from the
        # optics; a single-beam reader sees the plain zone-plate model above
        w.write("entry_1/instrument_1/source_1/beam_illumination", p.beam_illumination,
                pixel_size_m=p.dx_m, upsampling=det.binning)
        w.write("entry_1/instrument_1/source_1/beam_offsets", p.beam_offsets_m)
    w.write("entry_1/sample_1/ground_truth", p.object, pixel_size_m=p.dx_m)


def _write_twin_group(w: CXIWriter, p: Plan, saturated: int) -> None:
    """The ``/entry_1/twin`` group: the simulation's truth and settings (true positions,
    capture flags, beams, modes, scenario, seed, rates, slices)."""
    s = p.scenario
    w.write("entry_1/twin/true_translation",
            _translations(p.capture.true_positions_m, p.origin_m))
    w.write("entry_1/twin/object_origin_m", p.origin_m)
    w.write("entry_1/twin/captured", p.capture.captured.astype(np.uint8))
    w.write("entry_1/twin/beam_offsets_m", p.beam_offsets_m)
    w.write("entry_1/twin/probes", p.probes)
    w.write("entry_1/twin/scenario", s.model_dump_json())
    w.write("entry_1/twin/seed", s.seed)
    w.write("entry_1/twin/exposure_s", p.exposure_s)
    w.write("entry_1/twin/frame_rate_hz", s.scan.frame_rate_hz)
    w.write("entry_1/twin/upsampling", p.det.binning)
    w.write("entry_1/twin/saturated_frames", saturated)
    w.write("entry_1/twin/oversampling", p.oversampling)
    w.write("entry_1/twin/slices", int(p.fine_slices.shape[0]))
