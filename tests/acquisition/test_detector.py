from dataclasses import replace

import numpy as np
import pytest

from twin.acquisition import detector
from twin.core.errors import TwinInputError


def test_nonparalyzable_closed_form():
    tau = 1e-7
    n = np.array([0.0, 1e6, 1 / tau, 1e9])
    m = detector.recorded_rate_nonparalyzable(n, tau)
    assert m[0] == 0
    assert m[2] == pytest.approx(0.5 / tau)       # nτ = 1 halves the rate
    assert m[3] < 1 / tau                          # saturates at 1/τ
    assert detector.true_rate_nonparalyzable(m[:3], tau) == pytest.approx(n[:3])


def test_paralyzable_closed_form():
    tau = 1e-7
    n = np.linspace(1e5, 5e7, 20001)
    m = detector.recorded_rate_paralyzable(n, tau)
    # maximum recorded rate 1/(eτ) at n = 1/τ
    assert n[np.argmax(m)] == pytest.approx(1 / tau, rel=1e-3)
    assert m.max() == pytest.approx(1 / (np.e * tau), rel=1e-6)
    # both models agree to first order at low rate: m ≈ n(1 − nτ)
    low = 1e4
    assert detector.recorded_rate_paralyzable(low, tau) == pytest.approx(
        detector.recorded_rate_nonparalyzable(low, tau), rel=1e-5)


def test_binning_spreads_rate_over_front_ends():
    tau, n = 2.2e-9, 2e8
    b = detector.binned_recorded_rate(n, tau, 2)
    assert b == pytest.approx(4 * detector.recorded_rate_nonparalyzable(n / 4, tau))
    assert b > detector.recorded_rate_nonparalyzable(n, tau)


def _arrival_monte_carlo(rate_hz, exposure_s, tau, model, n_windows, seed):
    """Recorded counts of ``n_windows`` exposures from explicit Poisson arrival times,
    one photon at a time: an implementation independent of twin's (exponential gaps, a loop)."""
    rng = np.random.default_rng(seed)
    out = np.empty(n_windows)
    for w in range(n_windows):
        t, last, prev, count = 0.0, -np.inf, -np.inf, 0
        while True:
            t += rng.exponential(1 / rate_hz)
            if t >= exposure_s:
                break
            if model == "paralyzable":
                if t - prev >= tau:
                    count += 1
                prev = t
            elif t - last >= tau:
                count += 1
                last = t
        out[w] = count
    return out


@pytest.mark.parametrize("model", ["paralyzable", "nonparalyzable"])
def test_dead_time_mean_and_variance_against_arrival_monte_carlo(model):
    """Photon-by-photon dead time: mean and variance of the recorded counts against an
    independent Monte Carlo of arrival times, and the mean against the closed-form
    recorded rate (long exposures, where the live start matters little)."""
    tau, T, rate = 1e-7, 1e-5, 5e6                   # nτ = 0.5, 50 photons per exposure
    counts = np.random.default_rng(11).poisson(rate * T, size=40000)
    rec = detector.record_photons(counts, T, tau, model, np.random.default_rng(12))
    mc = _arrival_monte_carlo(rate, T, tau, model, 4000, 13)
    se_mean = np.sqrt(mc.var() / len(mc) + rec.var() / len(rec))
    assert abs(rec.mean() - mc.mean()) < 4 * se_mean
    # the variance is what a mean-only model gets wrong (Poisson would give var = mean)
    assert rec.var() == pytest.approx(mc.var(), rel=0.1)
    assert rec.var() < 0.6 * rec.mean()
    closed = {"paralyzable": detector.recorded_rate_paralyzable,
              "nonparalyzable": detector.recorded_rate_nonparalyzable}[model](rate, tau)
    long_T = 1e-3
    big = np.random.default_rng(14).poisson(rate * long_T, size=200)
    rec_long = detector.record_photons(big, long_T, tau, model, np.random.default_rng(15))
    assert rec_long.mean() / long_T == pytest.approx(closed, rel=0.01)


def test_presets_dead_time_at_their_rate_limits():
    """At each mode's count-rate limit the photon-by-photon simulation (with the mode's own
    dead-time model) loses what an independent arrival-time Monte Carlo loses."""
    for preset, mode in [("selun", "12bit"), ("eiger_500k", "12bit")]:
        d = detector.preset_mode(preset, mode)
        rate, T = d.max_count_rate_per_pixel_hz, 2e-5
        counts = np.random.default_rng(1).poisson(rate * T, size=20000)
        rec = detector.record_photons(counts, T, d.dead_time_s, d.dead_time_model,
                                      np.random.default_rng(2))
        mc = _arrival_monte_carlo(rate, T, d.dead_time_s, d.dead_time_model, 2000, 3)
        assert rec.mean() == pytest.approx(mc.mean(), rel=0.02)
    assert detector.preset_mode("eiger_500k").dead_time_model == "paralyzable"
    assert detector.preset_mode("selun").dead_time_model == "nonparalyzable"


def test_duty_cycle_of_the_110khz_mode():
    """seed 000 §2.2.2: 7 µs exposures at 110 kHz (9.09 µs frames) in the binned SELUN mode."""
    d = detector.preset_mode("selun", "8bit_float_binned")
    assert 1 / 110e3 - d.readout_dead_time_s == pytest.approx(7e-6, rel=1e-3)


def test_quantum_efficiency_limits():
    """QE = photo-absorbed fraction: Beer–Lambert in the thin limit (μ_photo·t), the
    photo fraction of all interactions in the thick limit; falls with energy for 450 µm Si."""
    d = detector.preset_mode("eiger_500k")
    q8, q11, q20 = (detector.quantum_efficiency(d, e) for e in (8.0, 11.0, 20.0))
    assert q8 > q11 > q20 and q8 > 0.95 and q20 < 0.5
    thin = replace(d, sensor_thickness_m=1e-7)
    thick = replace(d, sensor_thickness_m=1.0)
    # NIST XCOM, Si at 10 keV: photoelectric 33.0 cm²/g of 34.0 cm²/g total (approx.)
    q_thick = detector.quantum_efficiency(thick, 10.0)
    assert q_thick == pytest.approx(33.0 / 34.0, abs=0.01)
    assert detector.quantum_efficiency(thin, 10.0) == pytest.approx(33.0 * 2.33 * 1e-5, rel=0.05)
    assert detector.quantum_efficiency(detector.preset_mode("ideal"), 10.0) == 1.0


def test_charge_sharing_kernel_against_sampled_charge():
    """The kernel against a Monte Carlo that samples absorption points and the electrons of
    each cloud (a photon counts where more than the threshold of its electrons land)."""
    d = replace(detector.preset_mode("eiger_500k"), bias_v=20.0, threshold_fraction=0.3)
    k = detector.charge_sharing_kernel(d, n_sub=48)
    sig = detector.charge_cloud_sigma_m(d) / d.pixel_size_m
    rng = np.random.default_rng(4)
    n_ph, n_e = 4000, 400
    xy = rng.uniform(0, 1, (n_ph, 1, 2)) + sig * rng.standard_normal((n_ph, n_e, 2))
    cell = np.floor(xy).astype(int) + 1                       # 0, 1, 2 ↔ −1, 0, +1
    ok = np.all((cell >= 0) & (cell <= 2), axis=2)
    mc = np.zeros((3, 3))
    for i in range(3):
        for j in range(3):
            share = np.mean(ok & (cell[..., 0] == j) & (cell[..., 1] == i), axis=1)
            mc[i, j] = np.mean(share > d.threshold_fraction)
    assert np.allclose(k, mc, atol=0.02)
    assert k.sum() > 1          # below half the energy, a shared photon can count twice
    # the drift-diffusion width t·√(2kT/(qV)): 450 µm at 150 V gives ~8 µm
    assert detector.charge_cloud_sigma_m(detector.preset_mode("eiger_500k")) == pytest.approx(
        8.4e-6, rel=0.05)


def test_response_gain_map_is_fixed_per_detector():
    d = detector.preset_mode("eiger_500k")
    a, b = detector.gain_map(d), detector.gain_map(d)
    assert np.array_equal(a, b) and a.shape == (514, 1030)
    assert a.std() == pytest.approx(d.gain_spread_rms, rel=0.05)


def test_eiger_preset_matches_seed000():
    d = detector.preset_mode("eiger_500k")
    assert (d.pixels_x, d.pixels_y, d.pixel_size_m) == (1030, 514, 75e-6)
    assert d.max_frame_rate_hz == 3000
    assert d.max_counts == 4095


def test_selun_modes_match_seed000():
    unbinned = detector.preset_mode("selun", "12bit")
    assert (unbinned.pixels_x, unbinned.pixel_size_m, unbinned.counters) == (192, 100e-6, 2)
    assert unbinned.max_frame_rate_hz == 20e3
    assert unbinned.max_count_rate_per_pixel_hz == 50e6
    assert detector.preset_mode("selun", "8bit_float").max_frame_rate_hz == 30e3
    binned = detector.preset_mode("selun", "8bit_float_binned")
    assert binned.effective_shape == (96, 96)
    assert binned.effective_pixel_size_m == pytest.approx(200e-6)
    assert binned.max_frame_rate_hz == 120e3
    assert binned.max_count_rate_per_pixel_hz == 200e6
    assert binned.active_width_m == pytest.approx(19.2e-3)


def test_overrides_and_errors():
    assert detector.preset_mode("eiger_500k", pixel_size_m=55e-6).pixel_size_m == 55e-6
    with pytest.raises(TwinInputError, match="detector.preset"):
        detector.preset_mode("pilatus9000")
    with pytest.raises(TwinInputError, match="detector.mode"):
        detector.preset_mode("selun", "4bit")


# --- counting simulation -------------------------------------------------------------------

def _ideal_like(**kw):
    return detector.preset_mode("ideal", **kw)


@pytest.mark.parametrize("level", [0.02, 3.7, 40.0])   # sparse, borderline and dense frames
def test_poisson_sampler_moments(level):
    rng = np.random.default_rng(5)
    lam = np.full((3000, 8, 8), level)
    lam[:, 0, :] *= 3                                    # a non-uniform frame
    c = detector.poisson_frames(lam, *(np.random.default_rng(i) for i in (1, 2, 3)))
    for row in (0, 4):
        pix = c[:, row].ravel()
        assert pix.mean() == pytest.approx(lam[0, row, 0], rel=0.05)
        assert pix.var() == pytest.approx(lam[0, row, 0], rel=0.08)
    # frame totals are Poisson too
    tot = c.sum(axis=(1, 2))
    assert tot.var() == pytest.approx(lam[0].sum(), rel=0.08)
    del rng


def test_poisson_statistics_at_low_rate():
    det = _ideal_like()
    rng = np.random.default_rng(1)
    lam = np.full((2000, 8, 8), 3.7)
    c = detector.count_frames(lam, det, 1e-3, rng)
    assert c.mean() == pytest.approx(3.7, rel=0.01)
    assert c.var() == pytest.approx(3.7, rel=0.03)


def test_counter_overflow_saturate_and_wrap():
    det = _ideal_like(counter_bits=12)
    rng = np.random.default_rng(3)
    lam = np.full((10, 4, 4), 5000.0)
    sat = detector.count_frames(lam, det, 1.0, rng, overflow="saturate")
    assert np.all(sat == 4095)
    wrap = detector.count_frames(lam, det, 1.0, np.random.default_rng(3), overflow="wrap")
    deep = detector.count_frames(lam, _ideal_like(counter_bits=32), 1.0,
                                 np.random.default_rng(3))
    assert deep.min() > 4095
    assert np.array_equal(wrap, np.mod(deep, 4096))


def test_binning_sums_native_pixels():
    det = detector.preset_mode("selun", "8bit_float_binned", dead_time_s=0.0)
    rng = np.random.default_rng(4)
    lam = np.zeros((1, 8, 8))
    lam[0, 2:4, 2:4] = 5.0                      # one binned pixel gets 4 × 5 photons
    c = detector.count_frames(lam, det, 1e-5, rng)
    assert c.shape == (1, 4, 4)
    assert c[0, 1, 1] > 0 and c.sum() == c[0, 1, 1]


def test_float8_roundtrip():
    c = np.arange(4096)
    dec = detector.float8_decode(detector.float8_encode(c))
    assert np.array_equal(dec[:64], c[:64])                # exact below 64
    assert np.all(np.abs(dec - c) <= c / 64 + 0.5)         # ≤ 1/64 relative above
    assert len(np.unique(detector.float8_encode(c))) == 256


def test_eiger_gap_mask_and_crop():
    det = detector.preset_mode("eiger_500k")
    m = detector.gap_mask(det)
    assert m.shape == (514, 1030)
    assert list(np.nonzero(m[0] == 0)[0]) == [256, 257, 514, 515, 772, 773]
    rows, cols = detector.crop_window(det, 128)
    assert m[rows, cols].all()            # the default beam position keeps the crop off gaps
    with pytest.raises(ValueError):
        detector.crop_window(det, 600)


def test_saturation_level_of_float8_mode():
    binned = detector.preset_mode("selun", "8bit_float_binned")
    full = detector.saturation_level(binned)
    lam = np.full((2, 8, 8), 1e5)
    c = detector.count_frames(lam, binned, 1e-5, np.random.default_rng(0))
    assert np.all(c >= full) and full < binned.max_counts
    assert detector.saturation_level(detector.preset_mode("eiger_500k")) == 4095


def test_sorted_uniforms_are_sorted_uniforms():
    rng = np.random.default_rng(7)
    counts = np.array([0, 5, 1000, 3])
    u = detector.sorted_uniforms(counts, rng)
    assert len(u) == counts.sum()
    big = u[5:1005]
    assert np.all(np.diff(big) >= 0) and 0 < big.min() and big.max() < 1
    # uniform: the empirical CDF stays close to the diagonal (Kolmogorov–Smirnov)
    ks = np.max(np.abs(np.arange(1, 1001) / 1000 - big))
    assert ks < 1.63 / np.sqrt(1000)


@pytest.mark.parametrize("model", ["paralyzable", "nonparalyzable"])
def test_many_photon_pixels_keep_the_monte_carlo_mean_and_variance(model):
    """Above PHOTON_BY_PHOTON_MAX photons the recorded count is drawn from the renewal-theory
    normal law: its mean and variance against the independent arrival-time Monte Carlo."""
    tau, T, rate = 1e-7, 1e-5, 2e7                   # nτ = 2, 200 photons per exposure
    assert rate * T > detector.PHOTON_BY_PHOTON_MAX
    counts = np.random.default_rng(21).poisson(rate * T, size=40000)
    rec = detector.record_photons(counts, T, tau, model, np.random.default_rng(22))
    mc = _arrival_monte_carlo(rate, T, tau, model, 3000, 23)
    assert rec.mean() == pytest.approx(mc.mean(), rel=0.03)
    assert rec.var() == pytest.approx(mc.var(), rel=0.2)
