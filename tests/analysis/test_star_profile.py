"""The star's line-profile resolution (benchmarks/validate_star.py) against closed forms."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage
from scipy.special import erf

_SPEC = importlib.util.spec_from_file_location(
    "validate_star", Path(__file__).resolve().parents[2] / "benchmarks" / "validate_star.py")
vs = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(vs)


@pytest.mark.parametrize("sigma", [0.7, 2.0, 5.0])
@pytest.mark.parametrize("rising", [True, False])
def test_edge_width_of_a_gaussian_blurred_step(sigma, rising):
    """An ideal step blurred by a Gaussian of σ is ½(1 + erf(x/(σ√2))): its 10–90 % width is
    2 Φ⁻¹(0.9) σ = 2.563 σ, whatever the levels and the direction."""
    x = np.linspace(-8 * sigma, 8 * sigma, 801) + 0.3 * sigma
    step = 0.5 * (1 + erf(x / (sigma * np.sqrt(2))))
    y = 3.0 - 1.7 * step if not rising else 0.4 + 2.2 * step
    assert vs.edge_width_10_90(x, y) == pytest.approx(2.563 * sigma, rel=2e-3)


def test_edge_width_with_noise_and_without_an_edge():
    rng = np.random.default_rng(0)
    x = np.linspace(-20, 20, 401)
    y = 0.5 * (1 + erf(x / (3 * np.sqrt(2)))) + rng.normal(0, 0.01, x.size)
    assert vs.edge_width_10_90(x, y) == pytest.approx(2.563 * 3, rel=0.05)
    assert np.isnan(vs.edge_width_10_90(x, np.ones_like(x)))


def _star(n, spokes, supersample=8):
    """A binary star, antialiased by averaging supersample² sub-pixels (a 1-pixel box)."""
    m = n * supersample
    yy, xx = (np.mgrid[:m, :m] + 0.5) / supersample - n / 2
    inside = np.cos(spokes * np.arctan2(yy, xx)) > 0
    return inside.reshape(n, supersample, n, supersample).mean(axis=(1, 3))


@pytest.mark.parametrize("sigma", [1.5, 3.0])
def test_star_edge_width_recovers_a_known_blur(sigma):
    """A star blurred by a Gaussian of σ px: the median edge width along a circle is 2.563 σ',
    σ'² = σ² + 1/12 (the 1-pixel box of the antialiasing), whatever the star's rotation."""
    img = ndimage.gaussian_filter(_star(256, 16), sigma)
    width, per_edge, snr = vs.star_edge_width(img, 16, 100.0, centre_px=(127.5, 127.5))
    assert len(per_edge) == 32 and np.all(np.isfinite(per_edge)) and snr > 50
    assert width == pytest.approx(vs.GAUSS_10_90 * np.sqrt(sigma ** 2 + 1 / 12), rel=0.04)
    rotated = ndimage.rotate(img, 7.0, reshape=False, order=3)
    assert vs.star_edge_width(rotated, 16, 100.0, centre_px=(127.5, 127.5))[0] == \
        pytest.approx(width, rel=0.05)


def test_noise_has_no_star_resolution():
    """Noise has edges too, and narrow ones: without spokes above the noise, no width."""
    noise = np.random.default_rng(3).normal(size=(256, 256))
    width, _, snr = vs.star_edge_width(noise, 16, 100.0)
    assert np.isnan(width) and snr < 3
    r = vs.line_profile_resolution(noise, 40e-9, 16)
    assert not r["spokes_detected"]
    assert r["edge_10_90_nm"] is None and r["spoke_half_period_nm"] is None
    star = vs.line_profile_resolution(ndimage.gaussian_filter(_star(256, 16), 2.0), 40e-9, 16)
    assert star["spokes_detected"] and star["edge_10_90_nm"] == pytest.approx(
        vs.GAUSS_10_90 * np.sqrt(4 + 1 / 12) * 40, rel=0.05)


@pytest.mark.parametrize("argv", [["--iterations", "0"], ["--quick", "--fov-um", "0"],
                                  ["--fov-um", "25"]])
def test_bad_arguments_exit_2_naming_the_option(argv, capsys):
    with pytest.raises(SystemExit) as e:
        vs._arguments(argv)
    assert e.value.code == 2 and argv[-2] in capsys.readouterr().err


def test_quick_mode_parameters():
    a = vs._arguments(["--quick"])
    assert (a.fov_um, a.iterations) == (vs.QUICK["fov_um"], vs.QUICK["iterations"])
    assert vs._arguments(["--quick", "--iterations", "5"]).iterations == 5
