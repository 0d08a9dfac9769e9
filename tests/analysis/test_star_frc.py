"""The FRC against a Siemens star's truth (book/star_frc.md): a star has no structure at periods
longer than its widest spoke in the field (its ring f lives at radius N/(2πf)), so the FRC is
searched from where it first rises to the threshold, not from its first ring."""

import numpy as np
import pytest
from scipy import ndimage

from twin.analysis import metrics, score
from twin.sample import phantoms
from twin.workflows import simres

PX, N_PX, SPOKES = 40e-9, 128, 36
BAND_RING = 30                           # the reconstruction keeps f < BAND_RING/(N_PX·PX)


def _star():
    """A weak-phase star (0.25 rad spokes) filling the field, less its plane."""
    t = phantoms.siemens_star_thickness((N_PX, N_PX), PX, SPOKES, 20e-6, 1.0, supersample=4)
    return metrics.deplane(0.25 * t)


def _band_limited(t, seed, band_ring=BAND_RING):
    """``t`` cut sharply at BAND_RING (all finer detail lost) with slow phase errors (periods
    ≳ 1 µm, 0.1 rad rms) and 3 mrad of white noise: a reconstruction whose resolution is
    known in closed form, the half period of the band limit."""
    f = np.fft.fftfreq(N_PX, PX)
    fc = band_ring / (N_PX * PX)
    low = np.fft.ifft2(np.fft.fft2(t) * (np.hypot(f[:, None], f[None, :]) < fc)).real
    rng = np.random.default_rng(seed)
    slow = ndimage.gaussian_filter(rng.normal(size=t.shape), 4, mode="wrap")
    return low + 0.1 * slow / slow.std() + rng.normal(0, 3e-3, t.shape), 0.5 / fc


def test_star_has_no_structure_below_its_widest_spoke():
    """The truth's ring power at periods longer than 2πR/N (R the field's half side) is a
    small fraction of its power above: the rings the old first-crossing rule tested first."""
    t = _star()
    f = metrics.fourier_correlation(t, t, PX)
    a = np.fft.fftshift(np.fft.fft2(t * np.outer(np.hanning(N_PX), np.hanning(N_PX))))
    idx, nb = metrics._radial_bins(t.shape, PX)
    power = np.bincount(idx.ravel(), (np.abs(a) ** 2).ravel(), nb + 1)[:nb] / f.n_points
    cut = SPOKES / (2 * np.pi * (N_PX / 2) * PX)        # cycles per metre
    inside = f.frequency_per_m < 0.7 * cut
    beyond = (f.frequency_per_m > 1.3 * cut) & (f.frequency_per_m < 3 * cut)
    assert power[3:][inside[3:]].max() < 0.05 * np.median(power[beyond])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_band_limited_star_crosses_at_its_band_limit(seed):
    t = _star()
    rec, half_period = _band_limited(t, seed)
    frc = metrics.fourier_correlation(rec, t, PX)
    # the first-crossing rule sees only the slow errors in the star's empty rings
    assert not frc.crossing("half_bit", 3).resolved
    c = frc.crossing("half_bit", 3, from_rise=True)
    ring = 1 / (N_PX * PX)                               # the rings' width in frequency
    assert c.resolved and not c.bound
    assert abs(c.frequency_per_m - 0.5 / half_period) < 1.5 * ring
    got = simres._resolution(frc, 3.5e-6, against_truth=True)
    assert abs(0.5 / got - 0.5 / half_period) < 1.5 * ring
    assert not simres._resolution(frc, 3.5e-6, against_truth=True, bound=True)


@pytest.mark.parametrize("band_ring", [20, 40])
def test_the_crossing_follows_the_band_limit(band_ring):
    """Moving the band limit moves the crossing with it (no fixed answer)."""
    t = _star()
    rec, half_period = _band_limited(t, 0, band_ring)
    c = metrics.fourier_correlation(rec, t, PX).crossing("half_bit", 3, from_rise=True)
    assert c.half_period_m == pytest.approx(half_period, rel=0.12)


def test_noise_never_rises():
    """The rise must be significant over the whole curve: pure noise against the star never
    starts a search (the old rule 'resolved' about 7 % of such images at its first ring)."""
    t = _star()
    new = corrected = 0
    for seed in range(60):
        frc = metrics.fourier_correlation(np.random.default_rng(seed).normal(size=t.shape), t, PX)
        new += frc.crossing("half_bit", 3, from_rise=True).resolved
        corrected += not simres._resolution(frc, 3.5e-6, against_truth=True, bound=True)
    assert new == 0 and corrected == 0


def test_score_resolves_the_band_limited_star():
    """`twin score`'s numbers follow the same rule (a bare array at the truth's pixel)."""
    t = _star()
    rec, half_period = _band_limited(t, 0)
    pos = np.array([[x, y] for x in (-1.5e-6, 1.5e-6) for y in (-1.5e-6, 1.5e-6)])
    s = score.score(np.exp(1j * rec), np.exp(1j * t), PX, pos, probe_px=N_PX // 2)
    assert s.resolved
    assert s.frc_resolution_m == pytest.approx(half_period, rel=0.12)


def test_rise_significance_holds_its_false_alarm_rate_on_noise():
    """The chance level of a rise (the Beta tail of :meth:`FourierCorrelation._start`) is what
    noise does: two independent noise images exceed the level for a 1 % tail at a ring in
    about 1 % of pairs (bounds for 1,500 pairs); a tail that counted n independent numbers
    per ring would be exceeded in about 5 % and fail."""
    from scipy import special

    rng = np.random.default_rng(5)
    rings = (3, 10, 20)
    hits = np.zeros(len(rings))
    for _ in range(1500):
        f = metrics.fourier_correlation(rng.normal(size=(64, 64)), rng.normal(size=(64, 64)))
        a = (f.n_points[list(rings)] / 2 - 1) / 2
        hits += f.correlation[list(rings)] >= 2 * special.betaincinv(a, a, 0.99) - 1
    assert np.all(hits / 1500 < 0.02) and np.all(hits / 1500 > 0.002)
