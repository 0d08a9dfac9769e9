"""Scan trajectories and PandA-box position capture.

Coordinates: x along the fast axis (object columns), y along the slow axis (object rows), in
metres, relative to the scan's centre. Times in seconds from the start of the projection.

* :func:`snake_fly_scan` — continuous motion along x at v = Δx·f_frame, stepped y, reversing
  direction each line (a snake), with a turnaround time between lines;
* :func:`step_scan` — the same grid, the stage at rest during each exposure;
* :func:`fermat_spiral` — r = c·√n, θ = n·137.508° (Huang et al. 2014), at rest per point;
* :func:`multibeam_offsets` — N beams side by side along y, each covering its own band.

:func:`panda_capture` emulates the position capture of a PandA box: encoder quantisation,
capture at most at ``capture_rate_hz``, timing jitter, and linear interpolation in time of the
positions of frames that had no capture (as seed 000 §2.2.2's reconstruction did).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Trajectory:
    """A 2D scan: per frame the true position at mid-exposure and the stage velocity."""

    positions_m: np.ndarray          # (N, 2) x, y at the centre of each exposure
    velocity_m_per_s: np.ndarray     # (N, 2) during the exposure (0 for step scans)
    t_start_s: np.ndarray            # (N,) start of each exposure
    exposure_s: float
    line: np.ndarray                 # (N,) line index (−1 for spirals)
    kind: str
    vibration: tuple[float, float] = (0.0, 0.0)
    """Stage vibration (rms amplitude m, frequency Hz) added to x and y (y a quarter period
    later); the positions above include it at each exposure's centre."""
    drift_m_per_s: tuple[float, float] = (0.0, 0.0)
    """Drift (x, y) of the sample relative to the encoders, from t = 0; the positions above
    include it, the encoders do not see it (:meth:`encoder_at`)."""

    def vibration_at(self, t_s) -> np.ndarray:
        """(…, 2) stage vibration (x, y) at times ``t_s``, metres.

        x = √2·A·sin(2πft) and y = √2·A·cos(2πft) for ``vibration`` = (A, f): A is the rms
        amplitude of each axis.

        Parameters
        ----------
        t_s : float or array_like
            Times from the start of the projection, seconds.

        Returns
        -------
        numpy.ndarray
            Shape ``t_s.shape + (2,)``, metres; zeros when A or f is 0.
        """
        amp, freq = self.vibration
        t = np.asarray(t_s, dtype=float)
        if amp == 0 or freq == 0:
            return np.zeros(t.shape + (2,))
        a = amp * np.sqrt(2)
        w = 2 * np.pi * freq
        return np.stack([a * np.sin(w * t), a * np.cos(w * t)], axis=-1)

    def drift_at(self, t_s) -> np.ndarray:
        """(…, 2) drift of the sample at times ``t_s``.

        Parameters
        ----------
        t_s : float or array_like
            Times from the start of the projection, seconds.

        Returns
        -------
        numpy.ndarray
            Shape ``t_s.shape + (2,)``: ``t_s · drift_m_per_s`` (x, y), metres.
        """
        t = np.asarray(t_s, dtype=float)
        return t[..., None] * np.asarray(self.drift_m_per_s, dtype=float)

    def with_drift(self, drift_m_per_s) -> "Trajectory":
        """The same scan with the sample drifting at ``drift_m_per_s`` (x, y) from t = 0.

        The positions lose the old drift and gain the new one, both taken at each exposure's centre.

        Parameters
        ----------
        drift_m_per_s : (2,) float
            Drift velocity (x, y) of the sample relative to the encoders, metres per second.

        Returns
        -------
        Trajectory
        """
        d = np.asarray(drift_m_per_s, dtype=float)
        mid = self.t_start_s + self.exposure_s / 2
        old = self.drift_at(mid)
        new = mid[:, None] * d
        return Trajectory(self.positions_m - old + new, self.velocity_m_per_s, self.t_start_s,
                          self.exposure_s, self.line, self.kind, self.vibration,
                          (float(d[0]), float(d[1])))

    def encoder_at(self, t_s) -> np.ndarray:
        """(M, 2) what the stage encoders read at ``t_s``: the position less the drift.

        Parameters
        ----------
        t_s : float or array_like (M,)
            Times from the start of the projection, seconds.

        Returns
        -------
        numpy.ndarray
            (M, 2) x, y, metres (vibration included, drift not).
        """
        t = np.atleast_1d(np.asarray(t_s, dtype=float))
        return self.position_at(t) - self.drift_at(t)

    def __len__(self) -> int:
        return len(self.positions_m)

    def sub_positions(self, n_sub: int) -> np.ndarray:
        """(N, n_sub, 2) positions sampled evenly over each exposure (motion blur).

        Sample j of frame i is at t = mid_i + exposure·((j + ½)/n_sub − ½): the position at the
        exposure centre plus (velocity + drift)·(t − mid_i) plus the change of the vibration.

        Parameters
        ----------
        n_sub : int
            Samples per exposure; ≤ 1 gives the centre positions alone, shape (N, 1, 2).

        Returns
        -------
        numpy.ndarray
            (N, n_sub, 2) x, y, metres.
        """
        if n_sub <= 1:
            return self.positions_m[:, None, :]
        frac = (np.arange(n_sub) + 0.5) / n_sub - 0.5
        mid = self.t_start_s + self.exposure_s / 2
        t = mid[:, None] + self.exposure_s * frac[None, :]
        vib = self.vibration_at(t) - self.vibration_at(mid)[:, None, :]
        v = self.velocity_m_per_s + np.asarray(self.drift_m_per_s)
        return (self.positions_m[:, None, :]
                + v[:, None, :] * self.exposure_s * frac[None, :, None]
                + vib)

    def position_at(self, t_s) -> np.ndarray:
        """True stage position (M, 2) at arbitrary times.

        Taken from the frame whose exposure centre is nearest in time: for a fly scan its position
        moved on at its velocity (linear), for step scans and spirals its position (the stage at
        rest); the vibration and drift are added at ``t_s`` itself.

        Parameters
        ----------
        t_s : float or array_like (M,)
            Times from the start of the projection, seconds.

        Returns
        -------
        numpy.ndarray
            (M, 2) x, y, metres.
        """
        t = np.atleast_1d(np.asarray(t_s, dtype=float))
        mid = self.t_start_s + self.exposure_s / 2
        # the frame whose exposure centre is nearest in time
        j = np.clip(np.searchsorted(mid, t), 1, len(mid) - 1)
        i = np.where(np.abs(t - mid[j - 1]) <= np.abs(mid[j] - t), j - 1, j)
        vib = (self.vibration_at(t) - self.vibration_at(mid[i])
               + self.drift_at(t) - self.drift_at(mid[i]))
        if self.kind == "fly":
            # within a line the stage moves at constant velocity through every frame centre
            return (self.positions_m[i] + self.velocity_m_per_s[i] * (t - mid[i])[:, None]
                    + vib)
        return self.positions_m[i] + vib


def snake_fly_scan(fov_x_m: float, fov_y_m: float, fast_step_m: float, slow_step_m: float,
                   frame_rate_hz: float, exposure_s: float, turnaround_s: float = 0.0,
                   n_lines: int | None = None, y_offset_m: float = 0.0,
                   vibration: tuple[float, float] = (0.0, 0.0),
                   max_lines: int | None = None, first_line: int = 0) -> Trajectory:
    """Snake fly-scan: ⌈fov_x/Δx⌉ frames per line at velocity Δx·f, ⌈fov_y/Δy⌉ lines.

    ``max_lines`` keeps only the first lines of that scan (same positions and times), so that
    a part of a huge scan costs only what the part needs; ``first_line`` starts the part at a
    later line (lines ``first_line`` to ``max_lines − 1``, the same values as in the whole).

    Even lines run towards +x, odd lines towards −x; both grids are centred on 0 (y on
    ``y_offset_m``). Line l starts at l·(nf/f + turnaround) and each exposure is centred in its
    frame period.

    Parameters
    ----------
    fov_x_m, fov_y_m : float
        Field of view along x (fast) and y (slow), metres.
    fast_step_m, slow_step_m : float
        Distance between frames along a line, and between lines, metres.
    frame_rate_hz : float
        Detector frame rate, Hz.
    exposure_s : float
        Exposure per frame, seconds.
    turnaround_s : float
        Time between the end of one line and the start of the next, seconds.
    n_lines : int, optional
        Number of lines of the whole scan, instead of ⌈fov_y/Δy⌉.
    y_offset_m : float
        Offset of the scan along y, metres.
    vibration : (float, float)
        Stage vibration (rms amplitude m, frequency Hz), added to the positions.
    max_lines : int, optional
        Stop before this line.
    first_line : int
        First line kept.

    Returns
    -------
    Trajectory
        ``kind`` "fly"; positions (x, y) at each exposure's centre, metres.
    """
    nf = math.ceil(fov_x_m / fast_step_m * (1 - 1e-6))
    nl = n_lines if n_lines is not None else math.ceil(fov_y_m / slow_step_m * (1 - 1e-6))
    lines = range(first_line, nl if max_lines is None else min(nl, max_lines))
    positions, vel, t0, line = _snake_lines(nf, nl, lines, fast_step_m, slow_step_m,
                                            frame_rate_hz, exposure_s, turnaround_s, y_offset_m)
    tr = Trajectory(positions, vel, t0, exposure_s, line, "fly", vibration)
    if vibration[0] > 0:
        tr = Trajectory(positions + tr.vibration_at(t0 + exposure_s / 2), tr.velocity_m_per_s,
                        t0, exposure_s, tr.line, "fly", vibration)
    return tr


def _snake_lines(nf: int, nl: int, lines: range, fast_step_m: float, slow_step_m: float,
                 frame_rate_hz: float, exposure_s: float, turnaround_s: float,
                 y_offset_m: float):
    """:func:`snake_fly_scan`'s ``lines`` of a snake of ``nl`` lines of ``nf`` frames, before
    vibration: positions (N, 2) and velocities (N, 2) at the exposure centres (metres, m/s),
    exposure start times (N,) seconds, and the line of each frame (N,)."""
    period = 1.0 / frame_rate_hz
    v = fast_step_m * frame_rate_hz
    k = np.arange(nf)
    x_fwd = (k - (nf - 1) / 2) * fast_step_m
    pos, vel, t0, line = [], [], [], []
    line_time = nf * period
    for l in lines:
        forward = l % 2 == 0
        x = x_fwd if forward else x_fwd[::-1]
        y = (l - (nl - 1) / 2) * slow_step_m + y_offset_m
        pos.append(np.stack([x, np.full(nf, y)], axis=1))
        vel.append(np.tile([v if forward else -v, 0.0], (nf, 1)))
        start = l * (line_time + turnaround_s)
        # the exposure is centred on the frame's position along the line
        t0.append(start + k * period + (period - exposure_s) / 2)
        line.append(np.full(nf, l))
    return (np.concatenate(pos), np.concatenate(vel), np.concatenate(t0),
            np.concatenate(line))


def step_scan(fov_x_m: float, fov_y_m: float, fast_step_m: float, slow_step_m: float,
              frame_rate_hz: float, exposure_s: float, settle_s: float = 0.0,
              y_offset_m: float = 0.0, max_lines: int | None = None) -> Trajectory:
    """Raster step scan (snake order), the stage at rest during each exposure.

    The grid of :func:`snake_fly_scan` without turnarounds or vibration; exposure i starts at
    settle + i·(1/f + settle).

    Parameters
    ----------
    fov_x_m, fov_y_m : float
        Field of view along x and y, metres.
    fast_step_m, slow_step_m : float
        Step along x and between lines, metres.
    frame_rate_hz : float
        Detector frame rate, Hz (one frame per point).
    exposure_s : float
        Exposure per point, seconds.
    settle_s : float
        Settling time before each exposure, seconds.
    y_offset_m : float
        Offset of the scan along y, metres.
    max_lines : int, optional
        Keep only the first lines.

    Returns
    -------
    Trajectory
        ``kind`` "step", zero velocities.
    """
    fly = snake_fly_scan(fov_x_m, fov_y_m, fast_step_m, slow_step_m, frame_rate_hz,
                         exposure_s, y_offset_m=y_offset_m, max_lines=max_lines)
    n = len(fly)
    t0 = np.arange(n) * (1.0 / frame_rate_hz + settle_s) + settle_s
    return Trajectory(fly.positions_m, np.zeros((n, 2)), t0, exposure_s, fly.line, "step")


def fermat_spiral(fov_x_m: float, fov_y_m: float, step_m: float, frame_rate_hz: float,
                  exposure_s: float, settle_s: float = 0.0) -> Trajectory:
    """Fermat spiral r = c√n, θ = n·137.508°, clipped to the field of view; at rest per point.

    c = step/√π, so that each point covers an area of about step².

    Parameters
    ----------
    fov_x_m, fov_y_m : float
        Field of view (a rectangle centred on 0), metres.
    step_m : float
        Mean distance between points, metres.
    frame_rate_hz : float
        Detector frame rate, Hz (one frame per point).
    exposure_s : float
        Exposure per point, seconds.
    settle_s : float
        Settling time before each exposure, seconds.

    Returns
    -------
    Trajectory
        ``kind`` "spiral", line index −1, zero velocities.
    """
    c = step_m / math.sqrt(math.pi) * 1.0
    n_max = int(4 * fov_x_m * fov_y_m / (math.pi * c * c)) + 10
    n = np.arange(n_max)
    r = c * np.sqrt(n)
    th = np.deg2rad(137.508) * n
    x, y = r * np.cos(th), r * np.sin(th)
    keep = (np.abs(x) <= fov_x_m / 2) & (np.abs(y) <= fov_y_m / 2)
    pos = np.stack([x[keep], y[keep]], axis=1)
    m = len(pos)
    t0 = np.arange(m) * (1.0 / frame_rate_hz + settle_s) + settle_s
    return Trajectory(pos, np.zeros((m, 2)), t0, exposure_s, np.full(m, -1), "spiral")


def multibeam_offsets(n_beams: int, fov_y_m: float) -> np.ndarray:
    """(n_beams, 2) x, y offsets of beams side by side along y, each scanning its own band.

    Parameters
    ----------
    n_beams : int
        Number of beams.
    fov_y_m : float
        Total field of view along y, metres; each beam's band is fov_y/n_beams.

    Returns
    -------
    numpy.ndarray
        (n_beams, 2) offsets, metres: x = 0, y at the band centres, symmetric about 0.
    """
    band = fov_y_m / n_beams
    y = (np.arange(n_beams) - (n_beams - 1) / 2) * band
    return np.stack([np.zeros(n_beams), y], axis=1)


@dataclass(frozen=True)
class Capture:
    """What a PandA box records for a trajectory."""

    positions_m: np.ndarray      # (N, 2) recorded or interpolated position of every frame
    captured: np.ndarray         # (N,) bool: True where the PandA captured this frame
    true_positions_m: np.ndarray  # (N, 2) the truth, kept for validation

    @property
    def error_m(self) -> np.ndarray:
        return self.positions_m - self.true_positions_m


def panda_capture(traj: Trajectory, frame_rate_hz: float, capture_rate_hz: float = 10_000.0,
                  encoder_resolution_m: float = 1e-9, jitter_s: float = 0.0,
                  seed: int = 0, encoder_noise_m: float = 0.0,
                  latency_s: float = 0.0, rng: np.random.Generator | None = None) -> Capture:
    """Emulate PandA position capture and the interpolation of the frames it could not catch.

    Every k-th frame is captured, k = ⌈f_frame/f_capture⌉ (counted per line, so that each line's
    first frame is captured). A capture reads the encoders (:meth:`Trajectory.encoder_at`: the
    stage, not the sample's drift) at the frame's mid-exposure time plus a fixed ``latency_s``
    and a Gaussian clock jitter (rms ``jitter_s``); the reading gets Gaussian noise (rms
    ``encoder_noise_m``) and is quantised to ``encoder_resolution_m``. Frames in between get
    the position interpolated linearly in time from the captures of the same line (held at
    the line's ends).

    Parameters
    ----------
    traj : Trajectory
    frame_rate_hz, capture_rate_hz : float
        Detector frame rate and the PandA's capture limit, Hz.
    encoder_resolution_m, encoder_noise_m : float
        Encoder step and rms reading noise, metres.
    jitter_s, latency_s : float
        rms clock jitter and fixed delay of a capture, seconds.
    seed : int
        Seeds the jitter and the noise.
    rng : numpy Generator, optional
        Used instead of a fresh one from ``seed``: a fly scan's capture made line block by
        line block, the generator carried over, equals the capture of the whole scan.
    """
    rng = np.random.default_rng([seed, 7331]) if rng is None else rng
    n = len(traj)
    k = max(1, math.ceil(frame_rate_hz / capture_rate_hz * (1 - 1e-9)))
    mid = traj.t_start_s + traj.exposure_s / 2
    captured = np.zeros(n, bool)
    out = np.empty((n, 2))
    lines = np.unique(traj.line) if traj.kind == "fly" else np.array([-2])
    for l in lines:
        idx = np.nonzero(traj.line == l)[0] if traj.kind == "fly" else np.arange(n)
        cap = idx[::k]
        if idx[-1] not in cap:
            cap = np.append(cap, idx[-1])  # the line's end is captured when the motion stops
        t_cap = mid[cap] + latency_s + (rng.normal(0, jitter_s, len(cap)) if jitter_s > 0
                                        else 0.0)
        p = traj.encoder_at(t_cap)
        if encoder_noise_m > 0:
            p = p + rng.normal(0, encoder_noise_m, p.shape)
        if encoder_resolution_m > 0:
            p = np.round(p / encoder_resolution_m) * encoder_resolution_m
        captured[cap] = True
        for axis in range(2):
            out[idx, axis] = np.interp(mid[idx], mid[cap], p[:, axis])
    return Capture(out, captured, traj.positions_m.copy())
