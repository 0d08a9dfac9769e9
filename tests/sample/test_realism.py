"""Sample realism: the embedding medium, the star's sidewalls and line-edge roughness, and the
shipped calibrations that must survive the new fields."""

import math

import numpy as np
import pytest

from twin import scenario
from twin.core.errors import TwinInputError
from twin.sample import materials, phantoms, star

STAR = "scenarios/siemens_star_selun_110khz.toml"
BRAIN = "scenarios/brain_phantom_eiger_3khz.toml"


# ----------------------------------------------------------------------------- the keys


@pytest.mark.parametrize("path", [STAR, BRAIN, "scenarios/ic_rapid_21.toml",
                                  "scenarios/brain_1mm3_dlsr.toml"])
def test_shipped_calibration_points_are_still_found(path):
    """The new fields at their old implicit values leave the scenario's dump, and so every
    shipped calibration key, as it was."""
    from twin.workflows import simres

    s = scenario.load(path)
    assert simres.missing_points(s, s.resolution.calibration_seeds) == 0


def test_a_realistic_value_is_a_new_key():
    from twin.workflows import simres

    s = scenario.load(STAR)
    for change in ({"sample.star.sidewall_angle_deg": 87.0},
                   {"sample.star.edge_roughness_nm": 3.0}, {"sample.medium": "air"}):
        assert simres._key(s.with_values(change), 0, None) != simres._key(s, 0, None)
    b = scenario.load(BRAIN)
    assert b.with_values({"sample.medium": "AIR"}).sample.medium_material == "AIR"
    assert b.sample.medium == "air"                 # the sourced medium: a dry phantom
    assert simres._key(b.with_values({"sample.medium": "water"}), 0, None) != \
        simres._key(b, 0, None)


# ----------------------------------------------------------------------------- medium


def test_medium_validation():
    b = scenario.load(BRAIN)
    assert b.sample.medium_material == "air"
    assert b.with_values({"sample.medium": "vacuum"}).sample.medium_material == "vacuum"
    with pytest.raises(TwinInputError, match="medium"):
        b.with_values({"sample.medium": "unobtainium"})
    with pytest.raises(TwinInputError, match="contradicts fibres.matrix_material"):
        b.with_values({"sample.medium": "air", "sample.fibres.matrix_material": "water"})
    with pytest.raises(TwinInputError, match="uniform phantom has no embedding medium"):
        b.with_values({"sample.phantom": "uniform", "sample.medium": "air"})
    ic = scenario.load("scenarios/ic_rapid_21.toml")
    assert ic.sample.medium_material == "sio2"
    assert scenario.load(STAR).sample.medium_material == "vacuum"


def _grid(n=48, dx=2e-7, seed=0):
    x = (np.arange(n) - n // 2) * dx
    return phantoms.Grid(y_m=x[:4], x_m=x, pixel_m=dx, energy_kev=11.0, seed=seed)


def test_fibre_matrix_is_the_medium():
    """Between the fibres the projection is the medium's chord: vacuum there gives zero
    outside the fibres, and a medium equal to the fibres' material a plain cylinder."""
    b = scenario.load(BRAIN).with_values({"sample.diameter_um": 8.0})
    ext = phantoms.Extent("cylinder", 8e-6, 8e-6, 8e-6)
    g = _grid(n=64, dx=1.5e-7)
    same = b.with_values({"sample.medium": "polycaprolactone"}).sample
    p = phantoms.projected_slabs("fibre_bundle", same, ext, g).sum(axis=0)
    pcl = materials.lookup("polycaprolactone", 11.0)
    chord = 2 * np.sqrt(np.clip(4e-6 ** 2 - g.x_m ** 2, 0, None))
    np.testing.assert_allclose(p.real, pcl.delta * chord[None, :].repeat(4, 0), rtol=1e-9,
                               atol=1e-18)
    vac = phantoms.projected_slabs("fibre_bundle",
                                   b.with_values({"sample.medium": "vacuum"}).sample, ext, g)
    water = phantoms.projected_slabs(
        "fibre_bundle", b.with_values({"sample.medium": "water"}).sample, ext, g)
    wall = vac.sum(axis=0).real / pcl.delta                       # PCL path length, metres
    w = materials.lookup("water", 11.0)
    np.testing.assert_allclose(water.sum(axis=0).real,
                               pcl.delta * wall + w.delta * (chord[None] - wall), atol=1e-16)


def test_star_medium_fills_the_spoke_layer():
    """A medium of the spokes' own material makes the spoke layer uniform."""
    s = scenario.load(STAR).with_values({"sample.width_um": 2.0, "sample.height_um": 2.0,
                                         "sample.medium": "ta"})
    ext = phantoms.Extent("box", 2e-6, 1.5e-6, 2e-6)
    x = (np.arange(40) - 20) * 2e-8
    g = phantoms.Grid(y_m=x, x_m=x, pixel_m=2e-8, energy_kev=11.1)
    p = phantoms.projected_slabs("siemens_star", s.sample, ext, g)[0]
    ta, sin = materials.lookup("ta", 11.1), materials.lookup("si3n4", 11.1)
    want = (ta.delta + 1j * ta.beta) * 0.5e-6 + (sin.delta + 1j * sin.beta) * 1e-6
    np.testing.assert_allclose(p, want, rtol=1e-9)


# ----------------------------------------------------------------------------- star


def test_sidewall_is_a_ramp_in_fourier_space():
    """A ramp of width w across every edge multiplies the edges' spectrum by sinc(q·w/2)
    (the Fourier transform of a box of width w): checked on annuli of the star's spectrum."""
    n, dx, t = 256, 5e-9, 1e-6
    w = 40e-9
    angle = math.degrees(math.atan(t / w))
    kw = dict(shape=(n, n), pixel_size_m=dx, spokes=12, radius_m=0.6e-6, thickness_m=t)
    ideal = star.siemens_star_thickness(**kw)
    slope = star.siemens_star_thickness(**kw, sidewall_angle_deg=angle)
    assert abs(slope.sum() / ideal.sum() - 1) < 0.01          # the duty cycle is kept
    # a smooth annulus away from the centre (where sectors are narrower than the ramp) and
    # from the rim: the same weights on both maps
    r = np.hypot(*np.mgrid[:n, :n] - n // 2) * dx
    win = np.where((r > 0.2e-6) & (r < 0.56e-6),
                   np.sin(np.pi * (r - 0.2e-6) / 0.36e-6) ** 2, 0.0)
    fi = np.abs(np.fft.fft2((ideal - ideal.mean()) * win)) ** 2
    fs = np.abs(np.fft.fft2((slope - slope.mean()) * win)) ** 2
    q = 2 * np.pi * np.hypot(*np.meshgrid(np.fft.fftfreq(n, dx), np.fft.fftfreq(n, dx)))
    for x in (0.6, 1.0, 1.5, 2.0):                            # q·w/2
        ring = np.abs(q * w / 2 - x) < 0.1
        ratio = fs[ring].sum() / fi[ring].sum()
        assert ratio == pytest.approx((math.sin(x) / x) ** 2, rel=0.08), x


def test_edge_roughness_statistics():
    """The edge displacements have the rms σ and the correlation σ² exp(−Δρ²/ξ²) asked for
    (Monte Carlo over the star's 2 × 36 edges)."""
    d, h = star.edge_displacements(36, 20e-6, 3e-9, 30e-9, seed=4)
    assert d.shape[0] == 72 and h == pytest.approx(30e-9 / 8)
    assert np.std(d) == pytest.approx(3e-9, rel=0.05)
    for lag_m in (15e-9, 30e-9, 60e-9):
        k = int(round(lag_m / h))
        c = np.mean(d[:, k:] * d[:, :-k]) / np.mean(d * d)
        assert c == pytest.approx(math.exp(-(k * h / 30e-9) ** 2), abs=0.04), lag_m
    again, _ = star.edge_displacements(36, 20e-6, 3e-9, 30e-9, seed=4)
    assert np.array_equal(d, again)
    other, _ = star.edge_displacements(36, 20e-6, 3e-9, 30e-9, seed=5)
    assert not np.allclose(d, other)


def test_rough_star_is_the_same_in_any_window():
    """A window of a rough, sloped star is the crop of the whole (reproducible runs)."""
    kw = dict(pixel_size_m=1e-8, spokes=16, radius_m=0.5e-6, thickness_m=5e-7,
              sidewall_angle_deg=86.0, edge_roughness_m=4e-9, edge_correlation_m=25e-9,
              seed=7)
    whole = star.siemens_star_thickness((100, 100), centre_px=(50, 50), **kw)
    part = star.siemens_star_thickness((40, 30), centre_px=(50 - 20, 50 - 55), **kw)
    np.testing.assert_array_equal(part, whole[20:60, 55:85])
    smooth = star.siemens_star_thickness((100, 100), centre_px=(50, 50),
                                         **{**kw, "edge_roughness_m": 0.0})
    diff = whole - smooth
    assert 0 < np.abs(diff).max() <= 5e-7
