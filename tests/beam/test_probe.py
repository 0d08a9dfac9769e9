import numpy as np
import pytest

from twin.beam import optics

from twin.beam import probe
from twin.core.constants import wavelength_m
from twin.core.errors import TwinInputError

LAM = float(wavelength_m(11.0))
ZP = probe.ZonePlate(400e-6, 200e-9)


def test_focal_spot_first_zero_at_1_22_dr():
    p = probe.zone_plate_probe(256, 50e-9, ZP, LAM, 0.0)
    prof = np.abs(p[128, 128:]) ** 2
    first_min = np.argmax(np.diff(prof) > 0)       # first index where it rises again
    assert first_min * 50e-9 == pytest.approx(1.22 * 200e-9, abs=50e-9)


def test_defocused_beam_fills_geometric_cone():
    dz = float(optics.defocus_for_beam_diameter_m(400e-6, 200e-9, LAM, 3.5e-6))
    p = probe.zone_plate_probe(128, 60e-9, ZP, LAM, dz)
    i = np.abs(p) ** 2
    y, x = (np.mgrid[:128, :128] - 64) * 60e-9
    r = np.hypot(x, y)
    assert i.sum() == pytest.approx(1.0, rel=1e-5)
    assert i[r < 1.1 * 1.75e-6].sum() > 0.9
    assert i[r < 0.5 * 1.75e-6].sum() < 0.5


def test_central_stop_shadow():
    zp = probe.ZonePlate(180e-6, 50e-9, 60e-6)            # seed 002 §4.1
    lam = float(wavelength_m(8.8))
    dz = float(optics.defocus_for_beam_diameter_m(180e-6, 50e-9, lam, 1.4e-6))
    p = probe.zone_plate_probe(128, 14e-9, zp, lam, dz)
    i = np.abs(p) ** 2
    y, x = (np.mgrid[:128, :128] - 64) * 14e-9
    r = np.hypot(x, y)
    # the stop blocks the inner third of the cone: little intensity inside 0.25 of the radius
    assert i[r < 0.25 * 0.7e-6].mean() < 0.3 * i[(r > 0.45 * 0.7e-6) & (r < 0.9 * 0.7e-6)].mean()


@pytest.mark.parametrize("cf", [0.9, 0.6])
def test_modes_are_orthogonal_with_power_split(cf):
    dz = float(optics.defocus_for_beam_diameter_m(400e-6, 200e-9, LAM, 3.5e-6))
    m = probe.probe_modes(64, 120e-9, ZP, LAM, dz, n_modes=3, coherent_fraction=cf, photons=5e3)
    pw = probe.probe_power(m)
    assert pw.sum() == pytest.approx(5e3, rel=1e-4)
    assert pw[0] / pw.sum() == pytest.approx(cf, abs=0.01)
    g = np.abs(np.einsum("ixy,jxy->ij", m.conj(), m)) / np.sqrt(np.outer(pw, pw))
    assert np.allclose(g, np.eye(3), atol=1e-4)


def test_coded_beams_are_distinct():
    dz = 5e-3
    a = probe.zone_plate_probe(64, 120e-9, ZP, LAM, dz, code=probe.coded_aperture(64, 1))
    b = probe.zone_plate_probe(64, 120e-9, ZP, LAM, dz, code=probe.coded_aperture(64, 2))
    assert abs(np.vdot(a, b)) < 0.5


def test_undersampled_pupil_is_an_input_error():
    with pytest.raises(TwinInputError, match="outermost_zone_nm"):
        probe.zone_plate_probe(64, 300e-9, ZP, LAM, 0.0)


def test_source_size_sets_the_coherence():
    """Larger sources (or shorter source distances) spread the power over more modes; a point
    source is one mode; the total power is the photons asked for."""
    zp = probe.ZonePlate(150e-6, 100e-9, 40e-6)
    lam, dz, dx = 1.55e-10, 0.5e-3, 60e-9
    point = probe.probe_modes(64, dx, zp, lam, dz, n_modes=8, source_sigma_m=(0.0, 0.0),
                              photons=100.0)
    assert point.shape[0] == 1
    fr = []
    for sig in (20e-9, 60e-9, 150e-9):
        m = probe.probe_modes(64, dx, zp, lam, dz, n_modes=8, source_sigma_m=(sig, sig),
                              photons=100.0, power_kept=0.999)
        pw = probe.probe_power(m)
        assert pw.sum() == pytest.approx(100.0, rel=1e-5)
        fr.append(pw[0] / pw.sum())
    assert fr[0] > fr[1] > fr[2] and fr[2] < 0.8
    # demagnification by the thin-lens ratio f/L
    assert probe.source_sigma_at_focus_m((100e-6, 10e-6), 100.0, 0.1) == pytest.approx(
        (1e-8, 1e-7))


@pytest.mark.parametrize("sigma, coded", [((30e-9, 30e-9), False), ((10e-9, 50e-9), True),
                                          ((0.0, 40e-9), False)])
def test_source_modes_match_a_dense_svd_of_the_tilted_probes(sigma, coded):
    """The pupil-plane Gram matrix gives the powers and modes of an SVD of the K tilted
    zone-plate probes, each built on its own (zone_plate_probe with a tilt) and stacked."""
    zp = probe.ZonePlate(150e-6, 100e-9, 40e-6)
    lam, dz, dx, n = 1.55e-10, 0.3e-3, 60e-9, 48
    code = probe.coded_aperture(n, 5, 4) if coded else None
    u = np.linspace(-2.5, 2.5, 7)
    uy = u if sigma[0] > 0 else [0.0]
    ux = u if sigma[1] > 0 else [0.0]
    rows, wts = [], []
    for a in uy:
        for b in ux:
            p = probe.zone_plate_probe(n, dx, zp, lam, dz, tilt_m=(a * sigma[0], b * sigma[1]),
                                       code=code).astype(np.complex128)
            rows.append(p.ravel())
            wts.append(np.exp(-(a * a + b * b) / 2))
    wts = np.array(wts) / np.sum(wts)
    _, sv, vh = np.linalg.svd(np.sqrt(wts)[:, None] * np.array(rows), full_matrices=False)
    ref = sv ** 2 / np.sum(sv ** 2)
    modes = probe.probe_modes(n, dx, zp, lam, dz, n_modes=6, source_sigma_m=sigma,
                              photons=1.0, power_kept=1.0, code=code)
    pw = probe.probe_power(modes)
    k = len(pw)
    assert k == 6
    assert np.allclose(pw / pw.sum(), ref[:k] / ref[:k].sum(), atol=1e-3)
    # the strongest mode (non-degenerate) is the first right-singular vector, up to a phase
    m0 = modes[0].ravel() / np.linalg.norm(modes[0])
    assert abs(np.vdot(vh[0], m0)) == pytest.approx(1.0, abs=1e-4)
    # orthonormal modes
    flat = modes.reshape(k, -1).astype(np.complex128)
    gram = flat.conj() @ flat.T
    assert np.allclose(gram, np.diag(pw), atol=1e-5 * pw.sum())
