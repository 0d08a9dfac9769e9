import numpy as np
import pytest

from twin.analysis import metrics

RNG = np.random.default_rng(0)


def smooth_image(n=96, seed=0):
    rng = np.random.default_rng(seed)
    from scipy import ndimage

    return ndimage.gaussian_filter(rng.standard_normal((n, n)), 3)


def test_register_subpixel_shift():
    a = smooth_image()
    b = metrics.fourier_shift(a, (3.3, -1.7))
    s = metrics.register_shift(a, b)
    assert s == pytest.approx([-3.3, 1.7], abs=0.06)


def test_align_removes_phase_ramp_offset_and_shift():
    ph = smooth_image()
    truth = np.exp(1j * ph)
    yy, xx = np.mgrid[:96, :96]
    recon = metrics.fourier_shift(truth, (0.4, -0.6)) * np.exp(1j * (1.2 + 0.01 * yy - 0.02 * xx))
    al = metrics.align(recon, truth)
    inner = (slice(8, -8), slice(8, -8))
    err = np.angle(al.aligned[inner] * np.conj(truth[inner]))
    assert np.sqrt(np.mean(err ** 2)) < 0.02


def test_pcc_and_ssim():
    a = smooth_image()
    assert metrics.pcc(a, 2 * a + 1) == pytest.approx(1.0)
    assert metrics.pcc(a, -a) == pytest.approx(-1.0)
    assert metrics.ssim(a, a) == pytest.approx(1.0)
    assert metrics.ms_ssim(a, a) == pytest.approx(1.0)
    from skimage.metrics import structural_similarity

    b = a + 0.3 * RNG.standard_normal(a.shape)
    rng = float(max(a.max(), b.max()) - min(a.min(), b.min()))
    ref = structural_similarity(a, b, data_range=rng, gaussian_weights=True, sigma=1.5,
                                use_sample_covariance=False)
    assert metrics.ssim(a, b, rng) == pytest.approx(ref, abs=0.02)
    assert metrics.ms_ssim(a, b, rng) < 1


def test_frc_identical_and_independent():
    a = smooth_image(128) + 0.05 * RNG.standard_normal((128, 128))
    same = metrics.fourier_correlation(a, a, 10e-9)
    assert np.allclose(same.correlation, 1.0)
    assert same.resolution_m() == pytest.approx(10e-9)          # correlated to Nyquist
    noise = metrics.fourier_correlation(RNG.standard_normal((128, 128)),
                                        RNG.standard_normal((128, 128)), 10e-9)
    assert np.abs(noise.correlation[5:]).mean() < 0.1


def test_frc_finds_the_noise_limited_resolution():
    # signal with a power spectrum falling as f^-3 plus white noise in two copies: the FRC
    # crosses where signal and noise power meet, and more noise means a coarser resolution
    n = 256
    fy, fx = np.meshgrid(np.fft.fftfreq(n), np.fft.fftfreq(n), indexing="ij")
    f = np.hypot(fy, fx)
    spec = np.where(f > 0, f ** -1.5, 0) * (RNG.standard_normal((n, n))
                                            + 1j * RNG.standard_normal((n, n)))
    sig = np.fft.ifft2(spec).real
    sig /= sig.std()
    res = []
    for sigma in (0.05, 0.5):
        a = sig + sigma * RNG.standard_normal((n, n))
        b = sig + sigma * RNG.standard_normal((n, n))
        res.append(metrics.fourier_correlation(a, b, 1.0).resolution_m())
    assert res[0] < res[1]


def test_half_bit_threshold_formula():
    fc = metrics.fourier_correlation(smooth_image(64), smooth_image(64, 1), 1.0)
    n = fc.n_points
    expect = (0.2071 + 1.9102 / np.sqrt(n)) / (1.2071 + 0.9102 / np.sqrt(n))
    assert np.allclose(fc.half_bit, expect)


def test_fsc_in_3d():
    v = RNG.standard_normal((24, 24, 24))
    fc = metrics.fourier_correlation(v, v, 1.0)
    assert np.allclose(fc.correlation, 1.0)


def test_dice_ber_otsu():
    a = np.zeros((10, 10), bool)
    a[:5] = True
    b = np.zeros((10, 10), bool)
    b[:4] = True
    assert metrics.dice(a, b) == pytest.approx(2 * 40 / 90)
    assert metrics.bit_error_rate(a, b) == pytest.approx(0.1)
    img = np.concatenate([RNG.normal(0, 0.1, 500), RNG.normal(1, 0.1, 500)])
    assert 0.3 < metrics.otsu_threshold(img) < 0.7


def test_siemens_star_resolution_follows_blur():
    from scipy import ndimage

    from twin.sample import phantoms

    t = phantoms.siemens_star_thickness((256, 256), 10e-9, 36, 1.2e-6, 1.0)
    sharp, _ = metrics.siemens_star_resolution(ndimage.gaussian_filter(t, 1.0), 10e-9, 36)
    blurred, _ = metrics.siemens_star_resolution(ndimage.gaussian_filter(t, 4.0), 10e-9, 36)
    assert sharp < blurred
    # a Gaussian of σ = 4 px (FWHM 94 nm) passes little contrast at half-periods below ~1.5σ
    assert 40e-9 < blurred < 200e-9


def test_frc_resolution_is_positive_when_low_rings_fail():
    a = RNG.standard_normal((64, 64))
    b = RNG.standard_normal((64, 64))
    fc = metrics.fourier_correlation(a, b, 1.0)
    assert 0 < fc.resolution_m() < 64


def test_deplane_removes_only_the_images_own_plane():
    a = smooth_image()
    yy, xx = np.mgrid[:96, :96]
    d = metrics.deplane(a + 2.0 + 0.03 * yy - 0.05 * xx)
    assert np.allclose(d, metrics.deplane(a), atol=1e-10)
    assert metrics.deplane(np.full((40, 50), 3.0)) == pytest.approx(np.zeros((40, 50)), abs=1e-12)
    # a plane alone leaves nothing; least squares leaves a residual orthogonal to 1, y and x
    for basis in (np.ones_like(a), yy, xx):
        assert abs(np.sum(d * basis)) < 1e-8 * np.sum(np.abs(d))


def test_residue_density_of_smooth_and_random_phases():
    # a phase of many 2π (here ±20 rad) that changes by less than π per pixel: no residues
    from scipy import ndimage

    a = ndimage.gaussian_filter(np.random.default_rng(1).standard_normal((96, 96)), 8)
    ph = 20 * a / np.abs(a).max()
    assert np.abs(np.diff(ph, axis=0)).max() < np.pi and np.abs(np.diff(ph, axis=1)).max() < np.pi
    assert metrics.residue_density(np.angle(np.exp(1j * ph))) == 0.0
    # independent uniform phases: three wrapped differences around a loop are independent and
    # uniform on (−π, π), the fourth closes it; a residue where the three sum outside (−π, π),
    # probability 2 × 1/6 = 1/3 (Irwin–Hall)
    u = np.random.default_rng(2).uniform(-np.pi, np.pi, (300, 300))
    assert metrics.residue_density(u) == pytest.approx(1 / 3, abs=0.01)
