"""The simulated star's frames against seed 000 §2.2.2: "The maximum number of counts recorded
is 22 photons per pixel" in a 7 µs frame, and "there were no photons counted beyond 32 pixels
from the centre of the diffracted beam".

The counts hold. The 32-pixel statement does not, with the star twin models (0.5 µm Ta, ideal
or realistic edges): the photons beyond 32 binned pixels are the spokes' edge scattering, not
the probe, its partial coherence or the detector's charge sharing (a star without spokes puts
none there), and they scale with the spokes' contrast as the far field of a binary object
must. The book's physics page ("Sample realism") gives the measured numbers and why.
"""

import functools
import math

import numpy as np
import pytest

from twin import scenario
from twin.geometry import Geometry
from twin.sample import materials
from twin.workflows import simulate as sim

STAR = "scenarios/siemens_star_selun_110khz.toml"
# the scan's centre line through the star's centre, the full 96 × 96 binned SELUN chip
CENTRE = {"scan.fov_x_um": 1.0, "scan.fov_y_um": 1.0, "detector.crop": 96}
FRAMES = 16


@functools.lru_cache(maxsize=8)
def _centre(*extra):
    """:func:`_binned` of the star scenario on :data:`CENTRE` with ``extra`` (key, value)s."""
    return _binned(scenario.load(STAR).with_values({**CENTRE, **dict(extra)}))


def _binned(s, n=FRAMES):
    """(plan, (n, 96, 96) mean incident photons per binned pixel, radius of each pixel)."""
    p = sim.plan(s, n_frames=n)
    lam = sim.expected_frames(p, 0, n)
    N = p.n_eff
    b = lam.shape[-1] // N
    le = lam.reshape(n, N, b, N, b).sum(axis=(2, 4))
    r = np.hypot(*(np.mgrid[:N, :N] - N // 2))
    return p, le, r


def test_counts_per_frame_as_seed_000():
    """Bright field: the zone plate's pupil spread over its disc on the detector (closed form)
    sets ~9 photons per 200 µm pixel in 7 µs; the most counts in any pixel of any frame stays
    within seed 000's 22 and its Poisson spread."""
    s = scenario.load(STAR).with_values(CENTRE)
    p, le, r = _centre(("sample.star.spoke_thickness_um", 1e-6))
    g = Geometry.from_scenario(s)
    radius_px = (g.zone_plate_diameter_m / 2 / g.focal_length_m * g.distance_m
                 / p.det.effective_pixel_size_m)
    t_membrane = materials.lookup("si3n4", 11.1).transmission(1e-6)
    per_pixel = p.photons_per_frame * t_membrane / (math.pi * radius_px ** 2)
    assert le[:, r < 0.6 * radius_px].mean() == pytest.approx(per_pixel, rel=0.05)
    p, _, _ = _centre()
    counts = np.concatenate([c for _, c in sim.frames(p, 0, FRAMES)])
    assert 11 <= counts.max() <= 22 + 2 * math.sqrt(22)


def test_photons_beyond_32_pixels_are_the_spokes_edge_scattering():
    """Beyond the bright field the far field of a binary star is (T_spoke − T_gap)·F[χ·P], so
    the photons there scale as |T_spoke − 1|² (membrane common): Au against Ta spokes of the
    same shape. A star without spokes puts none there. (Object pixel at the detector's
    Nyquist, oversampling 1, to keep the test fast.)"""
    fast = ("simulation.oversampling", 1)
    tails = {}
    for name, extra in {"ta": (), "au": (("sample.star.spoke_material", "au"),),
                        "none": (("sample.star.spoke_thickness_um", 1e-6),)}.items():
        _, le, r = _centre(fast, *extra)
        tails[name] = le[:, r > 32].sum(axis=1).mean()
    k = 2 * math.pi / Geometry.from_scenario(scenario.load(STAR)).wavelength_m

    def contrast(m):
        p = materials.lookup(m, 11.1)
        return abs(1 - np.exp(-1j * k * (p.delta - 1j * p.beta) * 0.5e-6)) ** 2

    assert tails["none"] < 0.05
    assert tails["au"] / tails["ta"] == pytest.approx(contrast("au") / contrast("ta"), rel=0.05)


def test_seed_000_32_pixel_statement_is_not_what_a_ta_star_gives():
    """Measured, not tuned: at the scenario's own sampling, frames through the star's centre
    carry several photons beyond 32 binned pixels (ideal edges: ~5–8 per frame; realistic
    87° walls and 3 nm roughness: ~3). Seed 000 counted none; the book says why they differ.
    If twin's star ever gives none here, the book's comparison must be rewritten."""
    _, le, r = _centre()
    tail = le[:, r > 32].sum(axis=1)
    assert np.mean(1 - np.exp(-tail)) > 0.5
