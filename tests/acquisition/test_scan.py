import numpy as np
import pytest

from twin.acquisition import scan


def test_snake_fly_scan_geometry():
    t = scan.snake_fly_scan(3e-6, 1e-6, 0.1e-6, 0.5e-6, 1000.0, 8e-4, turnaround_s=0.2)
    assert len(t) == 30 * 2
    assert np.allclose(np.diff(t.positions_m[:30, 0]), 0.1e-6)       # line 0 left → right
    assert np.allclose(np.diff(t.positions_m[30:, 0]), -0.1e-6)      # line 1 right → left
    assert np.allclose(t.velocity_m_per_s[:30, 0], 0.1e-6 * 1000)
    assert np.allclose(t.positions_m[:, 0].mean(), 0) and np.allclose(t.positions_m[:, 1].mean(), 0)
    # line 1 starts one line time plus the turnaround after line 0
    assert t.t_start_s[30] - t.t_start_s[0] == pytest.approx(30 / 1000 + 0.2)


def test_motion_blur_sub_positions_span_the_exposure():
    t = scan.snake_fly_scan(3e-6, 1e-6, 0.1e-6, 0.5e-6, 1000.0, 8e-4)
    sub = t.sub_positions(8)
    span = sub[:, -1, 0] - sub[:, 0, 0]
    # samples at the centres of 8 equal parts: 7/8 of v·T
    assert np.allclose(np.abs(span), 7 / 8 * 0.1e-3 * 8e-4)
    assert np.allclose(sub.mean(axis=1), t.positions_m)


def test_step_scan_and_spiral():
    s = scan.step_scan(2e-6, 2e-6, 0.5e-6, 0.5e-6, 100.0, 5e-3, settle_s=0.01)
    assert len(s) == 16 and np.all(s.velocity_m_per_s == 0)
    f = scan.fermat_spiral(4e-6, 4e-6, 0.3e-6, 100.0, 5e-3)
    assert np.all(np.abs(f.positions_m) <= 2e-6)
    # nearest-neighbour distances of a Fermat spiral are nearly uniform
    d = np.linalg.norm(f.positions_m[:, None] - f.positions_m[None], axis=-1)
    np.fill_diagonal(d, np.inf)
    nn = d.min(axis=1)
    assert nn.std() / nn.mean() < 0.25


def test_multibeam_offsets_tile_the_field():
    off = scan.multibeam_offsets(3, 9e-6)
    assert np.allclose(off[:, 1], [-3e-6, 0, 3e-6])


def test_panda_captures_everything_when_fast_enough():
    t = scan.snake_fly_scan(3e-6, 1e-6, 0.1e-6, 0.5e-6, 2874.0, 3.4e-4)
    c = scan.panda_capture(t, 2874.0, 10_000.0, encoder_resolution_m=1e-9)
    assert c.captured.all()
    assert np.max(np.abs(c.error_m)) <= 0.5e-9 + 1e-15


def test_panda_interpolation_at_110khz():
    t = scan.snake_fly_scan(20e-6, 2e-6, 20e-6 / 2800, 1e-6, 110e3, 7e-6)
    c = scan.panda_capture(t, 110e3, 10e3, encoder_resolution_m=1e-9)
    per_line = c.captured[:2800]
    # every 11th frame, and the line's last one when the motion stops
    assert per_line[::11].all() and per_line.sum() == len(range(0, 2800, 11)) + 1
    # a 3 kHz vibration is under-sampled by the 10 kHz capture: interpolated frames err.
    # Closed form for linear interpolation of A√2·sin(ωt + φ) between captures h apart, at
    # the fraction u: error amplitude A√2·|1 − (1−u)e^(−iωuh) − u·e^(iω(1−u)h)|, and the rms
    # over the frames follows from it (independent of twin's interpolation code).
    amp, f = 10e-9, 3000.0
    v = scan.snake_fly_scan(20e-6, 2e-6, 20e-6 / 2800, 1e-6, 110e3, 7e-6,
                            vibration=(amp, f))
    cv = scan.panda_capture(v, 110e3, 10e3, encoder_resolution_m=0.0)
    err = cv.error_m[:2800, 0]
    w, h = 2 * np.pi * f, 11 / 110e3
    u = (np.arange(2800) % 11) / 11
    g = np.abs(1 - (1 - u) * np.exp(-1j * w * u * h) - u * np.exp(1j * w * (1 - u) * h))
    expected_rms = amp * np.sqrt(np.mean(g[:2794] ** 2))         # over random phase: A√2/√2
    assert np.sqrt(np.mean(err[:2794] ** 2)) == pytest.approx(expected_rms, rel=0.15)
    assert np.max(np.abs(err[cv.captured[:2800]])) < 1e-15


def test_panda_encoder_noise_and_quantisation():
    """Captured errors: variance σ² + Δ²/12 (noise plus uniform rounding), mean zero."""
    t = scan.snake_fly_scan(30e-6, 5e-6, 0.01e-6, 0.5e-6, 1000.0, 8e-4)
    c = scan.panda_capture(t, 1000.0, 10e3, encoder_resolution_m=4e-9, encoder_noise_m=3e-9,
                           seed=3)
    e = c.error_m.ravel()
    assert e.var() == pytest.approx(3e-9 ** 2 + 4e-9 ** 2 / 12, rel=0.1)
    assert abs(e.mean()) < 4 * e.std() / np.sqrt(len(e))


def test_panda_latency_and_drift():
    """A capture delay L shifts each line by v·L along its direction of travel (opposite on
    alternate snake lines); sample drift is invisible to the encoders, so the recorded
    positions lag the truth by drift·t."""
    rate, step = 1000.0, 0.1e-6
    t = scan.snake_fly_scan(3e-6, 2e-6, step, 0.5e-6, rate, 8e-4)
    c = scan.panda_capture(t, rate, 10e3, encoder_resolution_m=0.0, latency_s=2e-4)
    v = step * rate
    fwd = t.line % 2 == 0
    # interior frames (the last one of a line is held at the line's end)
    inner = np.r_[np.diff(t.line) == 0, False]
    assert np.allclose(c.error_m[fwd & inner, 0], v * 2e-4, atol=1e-15)
    assert np.allclose(c.error_m[~fwd & inner, 0], -v * 2e-4, atol=1e-15)
    d = t.with_drift((5e-9, -2e-9))
    cd = scan.panda_capture(d, rate, 10e3, encoder_resolution_m=0.0)
    mid = d.t_start_s + d.exposure_s / 2
    assert np.allclose(cd.error_m, -mid[:, None] * np.array([5e-9, -2e-9]), atol=1e-15)


def test_capture_jitter_is_seeded():
    t = scan.snake_fly_scan(2e-6, 1e-6, 0.1e-6, 0.5e-6, 1000.0, 8e-4)
    a = scan.panda_capture(t, 1000.0, 10e3, jitter_s=1e-4, seed=1)
    b = scan.panda_capture(t, 1000.0, 10e3, jitter_s=1e-4, seed=1)
    c = scan.panda_capture(t, 1000.0, 10e3, jitter_s=1e-4, seed=2)
    assert np.array_equal(a.positions_m, b.positions_m)
    assert not np.array_equal(a.positions_m, c.positions_m)
    # 0.1 ms of jitter at 0.1 mm/s: ~10 nm rms along x
    assert np.std(a.error_m[:, 0]) == pytest.approx(1e-4 * 1e-4, rel=0.3)
