"""The FSC split along and across a rotation axis (:func:`twin.analysis.resolution.axial_correlations`).

Held against volumes whose transfer is known by construction: a white-noise volume and a copy
band-limited by a box in frequency, |f_axis| < A and |f_across| < C cycles per voxel. Along the
axis the copy then keeps frequencies up to A (the cone's edge, at 30° from the axis, reaches
A / cos 30°); across it, up to C. The shell FSC, which averages every direction by its power,
falls between the two.
"""

from __future__ import annotations

import numpy as np
import pytest

from twin.analysis.resolution import (axial_correlations, azimuthal_correlations,
                                      fourier_correlation)

N = 64


def _box_limited(vol: np.ndarray, axis: int, f_along: float, f_across: float) -> np.ndarray:
    """``vol`` with the frequencies outside |f_axis| < f_along, |f_perp| < f_across removed."""
    f = np.meshgrid(*[np.fft.fftfreq(n) for n in vol.shape], indexing="ij")
    perp = np.sqrt(sum(g ** 2 for i, g in enumerate(f) if i != axis))
    keep = (np.abs(f[axis]) < f_along) & (perp < f_across)
    return np.fft.ifftn(np.fft.fftn(vol) * keep).real


def _half_periods(curves) -> list[float]:
    """Half-bit half periods (voxels) of each curve, searched from the third ring."""
    return [c.resolution_m("half_bit", skip_rings=3) for c in curves]


@pytest.fixture(scope="module")
def noise():
    rng = np.random.default_rng(7)
    return rng.standard_normal((N, N, N))


@pytest.mark.parametrize("axis", [0, 2])
def test_along_and_across_find_the_box_cutoffs(noise, axis):
    f_along, f_across = 0.1, 0.4
    b = _box_limited(noise, axis, f_along, f_across)
    along, across = axial_correlations(noise, b, 1.0, axis=axis, half_angle_deg=30.0,
                                       apodize=False)
    d_along, d_across = _half_periods((along, across))
    # along: the cut at |f_axis| = A lies between A (on the axis) and A / cos 30° (cone edge)
    assert 1 / (2 * f_along / np.cos(np.radians(30))) * 0.95 <= d_along <= 1 / (2 * f_along) * 1.1
    # across: the cut at |f_perp| = C lies between C·cos 30° … C (band edge … plane)
    assert 1 / (2 * f_across) * 0.95 <= d_across <= 1 / (2 * f_across * np.cos(np.radians(30))) * 1.1
    shell = fourier_correlation(noise, b, 1.0, apodize=False).resolution_m("half_bit", 3)
    assert d_across < shell < d_along


def test_the_other_axis_sees_the_other_cutoff(noise):
    """The same volumes split about the wrong axis do not see the along-axis cut: a swapped or
    ignored ``axis`` fails here."""
    b = _box_limited(noise, 0, 0.1, 0.4)
    along0, _ = axial_correlations(noise, b, 1.0, axis=0, apodize=False)
    along1, _ = axial_correlations(noise, b, 1.0, axis=1, apodize=False)
    d0, d1 = _half_periods((along0, along1))
    assert d1 < 0.5 * d0


def test_parts_count_their_own_points(noise):
    along, across = axial_correlations(noise, noise, 2e-9, axis=0)
    shell = fourier_correlation(noise, noise, 2e-9)
    # a cone of 30° holds 1 − cos 30° of the sphere, the band sin 30° of it
    r = slice(8, 30)
    assert np.allclose(along.n_points[r] / shell.n_points[r], 1 - np.cos(np.radians(30)),
                       rtol=0.2)
    assert np.allclose(across.n_points[r] / shell.n_points[r], np.sin(np.radians(30)), rtol=0.1)
    assert np.all(along.half_bit[r] > shell.half_bit[r])     # fewer points: a higher threshold
    assert np.allclose(along.correlation[1:], 1.0) and np.allclose(across.correlation[1:], 1.0)
    assert along.frequency_per_m[0] == shell.frequency_per_m[0]


def test_independent_volumes_do_not_resolve(noise):
    other = np.random.default_rng(8).standard_normal(noise.shape)
    for c in axial_correlations(noise, other, 1.0):
        assert not c.crossing("half_bit", 3, from_rise=True).resolved


@pytest.mark.parametrize("bad", [{"half_angle_deg": 0.0}, {"half_angle_deg": 50.0}])
def test_bad_angles_are_refused(noise, bad):
    with pytest.raises(ValueError, match="half_angle_deg"):
        axial_correlations(noise, noise, **bad)


def test_images_are_refused():
    with pytest.raises(ValueError, match="volumes"):
        axial_correlations(np.zeros((8, 8)), np.zeros((8, 8)))


def _in_plane_box(vol: np.ndarray, f1: float, f2: float) -> np.ndarray:
    """``vol`` with |f| ≥ ``f1`` along axis 1 or ≥ ``f2`` along axis 2 removed (axis 0 whole)."""
    f = np.meshgrid(*[np.fft.fftfreq(n) for n in vol.shape], indexing="ij")
    keep = (np.abs(f[1]) < f1) & (np.abs(f[2]) < f2)
    return np.fft.ifftn(np.fft.fftn(vol) * keep).real


def test_cones_across_the_axis_find_each_directions_cutoff(noise):
    """Across axis 0, a copy cut at 0.1 cycles/voxel along axis 1 and 0.4 along axis 2: the cone
    at azimuth 0° (axis 1) finds the first, at 90° (axis 2) the second, within the cone's
    half-angle; the band across the axis, which averages every direction by its power, hides
    the poor one."""
    b = _in_plane_box(noise, 0.1, 0.4)
    cones = dict(azimuthal_correlations(noise, b, 1.0, axis=0, step_deg=45.0,
                                        half_angle_deg=20.0, apodize=False))
    assert sorted(cones) == [0.0, 45.0, 90.0, 135.0]
    d = {az: c.resolution_m("half_bit", skip_rings=3) for az, c in cones.items()}
    cos20 = np.cos(np.radians(20))
    assert 1 / (2 * 0.1 / cos20) * 0.95 <= d[0.0] <= 1 / (2 * 0.1) * 1.1
    assert 1 / (2 * 0.4 / cos20) * 0.95 <= d[90.0] <= 1 / (2 * 0.4) * 1.1
    assert d[90.0] < d[45.0] < d[0.0] and d[135.0] == pytest.approx(d[45.0], rel=0.15)
    _, across = axial_correlations(noise, b, 1.0, axis=0, apodize=False)
    assert across.resolution_m("half_bit", 3) < 0.5 * d[0.0]


def test_cones_are_refused_outside_their_ranges(noise):
    with pytest.raises(ValueError, match="step_deg"):
        azimuthal_correlations(noise, noise, step_deg=0.0)
    with pytest.raises(ValueError, match="volumes"):
        azimuthal_correlations(np.zeros((8, 8)), np.zeros((8, 8)))
