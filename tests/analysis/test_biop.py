"""The BIOP ImageJ plugin's FRC as coded (twin.analysis.biop), against independent computations:
a scalar loop written the way the plugin's Java is, a weighted polynomial fit for the LOESS, the
expected ring value of Gaussian fields, and the standard FRC on the same images."""

import math

import numpy as np
import pytest

from twin.analysis import biop, metrics


def _plugin_loop(img1, img2, radii):
    """Ring values the way FRC.java computes them, one sample at a time (a square image whose
    side is a power of two and even, so no padding)."""
    n = img1.shape[0]
    b = n // 8
    taper = np.array([math.sin(12.566370614359172 * i / n) ** 2
                      if (i < b or i > n - (n - b)) else 1.0 for i in range(n)])
    maps = []
    ffts = []
    for img in (img1, img2):
        t = np.zeros((n, n))
        for y in range(1, n - 1):
            for x in range(1, n - 1):
                t[y, x] = img[y, x] * taper[x] * taper[y]
        ffts.append(np.fft.fftshift(np.fft.fft2(t)))
    f1, f2 = ffts
    num = (f1.real * f2.real + f1.imag * f2.imag) ** 2 + (f1.imag * f2.real
                                                          - f1.real * f2.imag) ** 2
    maps = [num, np.abs(f1) ** 2, np.abs(f2) ** 2]
    out = []
    centre = n // 2
    for r in radii:
        sums = [0.0, 0.0, 0.0]
        angle = 0.0
        while angle < math.pi:
            x = centre + r * math.cos(angle)
            y = centre + r * math.sin(angle)
            xb, yb = int(x), int(y)
            xf, yf = x - xb, y - yb
            for k, m in enumerate(maps):
                lower_left, lower_right = m[yb, xb], m[yb, xb + 1]
                upper_right, upper_left = m[yb + 1, xb], m[yb + 1, xb + 1]  # as named there
                upper = upper_left + xf * (upper_right - upper_left)
                lower = lower_left + xf * (lower_right - lower_left)
                sums[k] += lower + yf * (upper - lower)
            angle += 1 / r
        out.append(math.sqrt(sums[0]) / math.sqrt(sums[1] * sums[2]))
    return np.array(out)


def test_ring_values_match_a_scalar_loop_of_the_plugin():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(64, 64))
    b = a + rng.normal(size=(64, 64))
    c = biop.curve(a, b)
    radii = [1, 2, 5, 11, 20, 30]
    assert len(c.radius) == 31          # max(W, H)/2 − 1 rings, radius 0 included
    assert c.value[radii] == pytest.approx(_plugin_loop(a, b, radii), rel=2e-5)
    assert c.n_samples[radii] == pytest.approx([math.ceil(math.pi * r) for r in radii])


def test_window_is_sin_squared_everywhere():
    """The taper's test is true for every i but size/8: four lobes, not a Tukey window."""
    w = biop.window_as_coded(64)
    i = np.arange(64)
    assert w == pytest.approx(np.sin(4 * np.pi * i / 64) ** 2)
    assert w[16] == pytest.approx(0.0, abs=1e-12)        # zero in the middle of the image


def test_loess_is_a_local_weighted_linear_fit():
    rng = np.random.default_rng(1)
    x = np.arange(60.0)
    y = np.cos(x / 7) + 0.1 * rng.normal(size=60)
    s = biop.loess(x, y, 0.1)                          # 6 points per window
    for i in (10, 25, 40):                             # interior: the window is centred-ish
        k = 6
        lo = min(max(0, i - k // 2), 60 - k)
        cand = [(lo + d) for d in (-1, 0, 1) if 0 <= lo + d <= 60 - k]
        # the k nearest points: the window that minimises the farthest distance
        lo = min(cand, key=lambda L: max(abs(x[L] - x[i]), abs(x[L + k - 1] - x[i])))
        xs, ys = x[lo:lo + k], y[lo:lo + k]
        dmax = max(abs(xs - x[i]))
        wt = np.clip(1 - (abs(xs - x[i]) / dmax) ** 3, 0, None) ** 3
        fit = np.polyfit(xs, ys, 1, w=np.sqrt(wt))
        assert s[i] == pytest.approx(np.polyval(fit, x[i]), abs=1e-9)
    short = biop.loess(x[:20], y[:20], 0.0707)         # ⌊0.0707·20⌋ < 2: left as it is
    assert np.array_equal(short, y[:20])


def _mean_n_value2(a, b):
    c = biop.curve(a, b)
    sel = slice(20, 100)
    return float(np.mean(c.value[sel] ** 2 * c.n_samples[sel]))


def test_ring_value_is_not_a_correlation():
    """For Gaussian fields value² ≈ E|F₁|²|F₂|²/(E|F₁|² E|F₂|²)/N: 2/N for identical images
    (|F|² exponential), 1/N for independent ones, whatever their correlation."""
    rng = np.random.default_rng(2)
    ident, indep = [], []
    for _ in range(3):
        a, b = rng.normal(size=(2, 256, 256))
        ident.append(_mean_n_value2(a, a))
        indep.append(_mean_n_value2(a, b))
    assert np.mean(ident) == pytest.approx(2.0, rel=0.1)
    assert np.mean(indep) == pytest.approx(1.0, rel=0.1)


def test_fire_of_identical_and_independent_images():
    """The plugin's default (fixed 1/7) crosses where √(c/⌈πr⌉) = 0.1428, c = 2 (identical) or
    1 (independent): FIRE = 256/r ≈ 8.2 and 16.4 px. The standard FRC: identical images never
    cross (a bound at the pixel limit), independent ones never leave the noise."""
    rng = np.random.default_rng(3)

    def predicted(c):
        r = c / 0.1428 ** 2 / math.pi
        return 256 / r

    ident, indep = [], []
    for _ in range(4):
        a, b = rng.normal(size=(2, 256, 256))
        ident.append(biop.fire(a, a))
        indep.append(biop.fire(a, b))
        same = metrics.fourier_correlation(a, a).crossing("half_bit")
        assert same.resolved and same.bound and same.half_period_m == 1.0
        assert not metrics.fourier_correlation(a, b).crossing("half_bit").resolved
    assert np.mean(ident) == pytest.approx(predicted(2), rel=0.12)
    assert np.mean(indep) == pytest.approx(predicted(1), rel=0.12)
    # its half-bit (N = samples on half a ring) is never crossed after radius 0 by either
    assert np.isnan(biop.fire(a, b, threshold="half_bit"))


def test_standard_frc_crossing_of_known_snr():
    """Two images s + n₁, s + n₂ with SNR(f) = A·exp(−(f/f₀)²): FRC = SNR/(1 + SNR), so the
    half-bit crossing solves SNR/(1 + SNR) = T(n(f)), n ≈ 2π f N points per ring."""
    n, amp, f0 = 256, 40.0, 0.15
    fy = np.fft.fftfreq(n)[:, None]
    fx = np.fft.fftfreq(n)[None, :]
    snr = amp * np.exp(-(fy ** 2 + fx ** 2) / f0 ** 2)
    rng = np.random.default_rng(4)
    s = np.fft.ifft2(np.sqrt(snr) * np.fft.fft2(rng.normal(size=(n, n)))).real
    a = s + rng.normal(size=(n, n))
    b = s + rng.normal(size=(n, n))
    measured = metrics.fourier_correlation(a, b).crossing("half_bit").frequency_per_m

    def gap(f):
        q = amp * math.exp(-(f / f0) ** 2)
        m = math.sqrt(2 * math.pi * f * n)
        return q / (1 + q) - (0.2071 + 1.9102 / m) / (1.2071 + 0.9102 / m)

    lo, hi = 0.05, 0.5
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if gap(mid) > 0 else (lo, mid)
    assert measured == pytest.approx(lo, rel=0.05)
