"""The rows ``twin panda`` streams, made line block by line block (issue 24, defect 2).

:func:`twin.workflows.simulate.plan` builds everything a simulation needs (object, probes,
every motion-blur sub-position); the emulator needs only the trigger times and the captured
encoder counts. :func:`streamed_capture` makes them for a block of scan lines at a time, with
the same values as ``rows_from_plan(plan(s))``: the same trajectory formulas per line, the
capture's random generator carried from block to block, and the object grid's origin (the
offset of the scaled positions) from a first pass over the blocks that keeps only the extremes.
Memory is bounded by one block (:data:`BLOCK_FRAMES` frames), whatever the scan's size.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from twin.acquisition import scan
from twin.acquisition.pcap import PcapRows, StreamedPcapRows
from twin.core.errors import TwinInputError
from twin.geometry import Geometry
from twin.scenario import Scenario

if TYPE_CHECKING:
    from twin.workflows.simulate import Plan

BLOCK_FRAMES = 262_144          # frames made at once (about 25 MB of trajectory and capture)
MAX_STEP_FRAMES = 2_000_000     # a step scan is captured as one line: built whole


def _trajectory(s: Scenario, g: Geometry, first: int, last: int) -> scan.Trajectory:
    """Lines ``[first, last)`` of the scenario's scan, as :func:`simulate.plan` makes them."""
    sc = s.scan
    lines = g.lines_per_beam
    if sc.mode == "fly":
        traj = scan.snake_fly_scan(g.fov_x_m, lines * g.slow_step_m, g.fast_step_m,
                                   g.slow_step_m, sc.frame_rate_hz, g.exposure_s,
                                   sc.line_turnaround_s, lines,
                                   vibration=(sc.stage_vibration_nm * 1e-9,
                                              sc.stage_vibration_hz),
                                   max_lines=last, first_line=first)
    else:
        traj = scan.step_scan(g.fov_x_m, lines * g.slow_step_m, g.fast_step_m, g.slow_step_m,
                              sc.frame_rate_hz, g.exposure_s, sc.step_settle_s)
    if any(sc.drift_nm_per_s):
        traj = traj.with_drift([v * 1e-9 for v in sc.drift_nm_per_s])
    return traj


def _blur(s: Scenario, g: Geometry) -> int:
    sc = s.scan
    if sc.blur_samples is not None:
        return sc.blur_samples
    if sc.mode == "fly":
        travel = g.fast_step_m * sc.frame_rate_hz * g.exposure_s
        return int(min(16, max(1, math.ceil(travel / (g.object_pixel_m / 2)))))
    return 1


def _extremes(traj: scan.Trajectory, blur: int) -> tuple[np.ndarray, np.ndarray]:
    """x, y minimum and maximum of ``traj.sub_positions(blur)``, the same floats. Without
    vibration a sub-position moves linearly over the exposure, so its extremes are the first
    and last samples (the same expression as :meth:`Trajectory.sub_positions`, on two)."""
    if blur > 1 and traj.vibration[0] == 0:
        frac = ((np.arange(blur) + 0.5) / blur - 0.5)[[0, -1]]
        v = traj.velocity_m_per_s + np.asarray(traj.drift_m_per_s)
        sub = (traj.positions_m[:, None, :]
               + v[:, None, :] * traj.exposure_s * frac[None, :, None])
    else:
        sub = traj.sub_positions(blur)
    cols = np.ascontiguousarray(sub.reshape(-1, 2).T)      # column-wise: fast reductions
    return cols.min(axis=1), cols.max(axis=1)


def _capture(s: Scenario, traj: scan.Trajectory, rng) -> scan.Capture:
    sc = s.scan
    return scan.panda_capture(traj, sc.frame_rate_hz, sc.position_capture_rate_hz,
                              sc.encoder_resolution_nm * 1e-9, sc.capture_jitter_s, s.seed,
                              encoder_noise_m=sc.encoder_noise_nm * 1e-9,
                              latency_s=sc.capture_latency_s, rng=rng)


def rows_from_plan(p: Plan) -> PcapRows:
    """The emulator's rows of a simulation plan (its trajectory and capture), in memory.

    Counts are the captured positions from the scan centre in encoder steps; the offset is
    minus the object grid's origin, so that ``counts · scale + offset`` equals the CXI
    translations (``capture.positions_m − origin_m``).

    Parameters
    ----------
    p : Plan
        :func:`twin.workflows.simulate.plan` of the scenario.

    Returns
    -------
    PcapRows
        One row per frame of the plan.

    Raises
    ------
    TwinInputError
        ``scan.encoder_resolution_nm``: a position beyond 32-bit encoder counts.
    """
    sc = p.scenario.scan
    res = sc.encoder_resolution_nm * 1e-9
    if not res > 0:
        # an ideal encoder: count in 0.1 nm steps
        res = 1e-10
    counts = np.round(p.capture.positions_m / res)
    if np.any(np.abs(counts) > 2 ** 31 - 1):
        raise TwinInputError("scan.encoder_resolution_nm", sc.encoder_resolution_nm,
                             "the scan range exceeds 32-bit encoder counts at this resolution")
    return PcapRows(np.asarray(p.trajectory.t_start_s, float), counts.astype(np.int32), res,
                    -np.asarray(p.origin_m, float), np.asarray(p.capture.captured, bool))


def _first_pass(s: Scenario, g: Geometry, edges: list[tuple[int, int]]):
    """A pass over the blocks of lines ``edges`` that keeps only the extremes: (lo, hi) x, y of
    every sub-position, metres, the object grid's origin (metres), the rows, and the last
    row's trigger time (seconds)."""
    n_lines = g.lines_per_beam
    blur = _blur(s, g)
    offsets = scan.multibeam_offsets(g.n_beams, n_lines * g.slow_step_m * g.n_beams)
    lo, hi = np.full(2, np.inf), np.full(2, -np.inf)
    n_rows, t_end = 0, 0.0
    for a, b in edges:                              # the extremes only: the grid's origin
        traj = _trajectory(s, g, a, b)
        b_lo, b_hi = _extremes(traj, blur)
        lo, hi = np.minimum(lo, b_lo), np.maximum(hi, b_hi)
        n_rows, t_end = n_rows + len(traj), float(traj.t_start_s[-1])
        del traj
    dx, half = g.object_pixel_m, (g.oversampling * g.n_native) // 2 + 2
    glo = np.floor((lo + offsets.min(axis=0)) / dx).astype(int) - half
    ghi = np.ceil((hi + offsets.max(axis=0)) / dx).astype(int) + half
    origin = (glo + (ghi - glo + 1) // 2) * dx
    return lo, hi, origin, n_rows, t_end


def streamed_capture(s: Scenario, g: Geometry | None = None) -> StreamedPcapRows:
    """The emulator's rows for scenario ``s``, made on demand one block of lines at a time.

    Parameters
    ----------
    s : Scenario
    g : Geometry, optional
        The scenario's geometry where the caller has it.

    Returns
    -------
    StreamedPcapRows
        Its blocks equal ``rows_from_plan(plan(s))`` row for row.

    Raises
    ------
    TwinInputError
        ``scan.mode``: a step scan of more than :data:`MAX_STEP_FRAMES` frames (built whole);
        ``scan.encoder_resolution_nm``: the scan's reach (drift and encoder noise included)
        beyond 32-bit encoder counts.
    """
    g = g or Geometry.from_scenario(s)
    sc = s.scan
    n_lines = g.lines_per_beam
    if sc.mode == "fly":
        per = max(1, BLOCK_FRAMES // max(g.frames_per_line, 1))
        edges = [(a, min(a + per, n_lines)) for a in range(0, n_lines, per)]
    else:
        if g.frames_per_projection > MAX_STEP_FRAMES:
            raise TwinInputError("scan.mode", "step", (
                f"the emulator streams step scans of at most {MAX_STEP_FRAMES:,} frames "
                f"(this one has {g.frames_per_projection:,}); use a fly scan or a smaller "
                "field"))
        edges = [(0, n_lines)]
    res = sc.encoder_resolution_nm * 1e-9
    res = res if res > 0 else 1e-10                 # an ideal encoder: 0.1 nm steps
    lo, hi, origin, n_rows, t_end = _first_pass(s, g, edges)
    reach = np.max(np.abs([lo, hi])) + abs(float(np.max(np.abs(sc.drift_nm_per_s)))) * 1e-9 \
        * t_end + 10 * sc.encoder_noise_nm * 1e-9
    if reach / res > 2 ** 31 - 1:
        raise TwinInputError("scan.encoder_resolution_nm", sc.encoder_resolution_nm,
                             "the scan range exceeds 32-bit encoder counts at this resolution")

    def blocks():
        """Yield each block's (trigger times (m,) s, encoder counts (m, 2) int32), afresh."""
        rng = np.random.default_rng([s.seed, 7331])
        for a, b in edges:
            traj = _trajectory(s, g, a, b)
            cap = _capture(s, traj, rng)
            counts = np.round(cap.positions_m / res).astype(np.int32)
            yield np.asarray(traj.t_start_s, float), counts

    return StreamedPcapRows(n_rows, t_end, res, -np.asarray(origin, float), blocks)
