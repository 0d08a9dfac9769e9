import pytest

from twin.beam import optics
from twin.core.constants import wavelength_m

LAM_11 = float(wavelength_m(11.0))


def test_wavelength_of_11_kev():
    assert LAM_11 == pytest.approx(1.1271e-10, rel=1e-4)


def test_zone_plate_focal_length_seed000():
    # f = D Δr / λ: 400 µm, 200 nm at 11 keV (seed 000 §2.1)
    f = optics.focal_length_m(400e-6, 200e-9, LAM_11)
    assert f == pytest.approx(400e-6 * 200e-9 / 1.1271e-10, rel=1e-4)
    assert f == pytest.approx(0.7098, rel=1e-3)


def test_na_dof_and_zones():
    assert optics.numerical_aperture(50e-9, 1e-10) == pytest.approx(1e-3)
    assert optics.depth_of_focus_m(50e-9, 1e-10) == pytest.approx(4 * 2.5e-15 / 1e-10)
    assert optics.number_of_zones(180e-6, 50e-9) == pytest.approx(900)
    assert optics.rayleigh_resolution_m(50e-9) == pytest.approx(61e-9)


def test_defocus_and_beam_size_are_inverse():
    dz = optics.defocus_for_beam_diameter_m(400e-6, 200e-9, LAM_11, 3.5e-6)
    # seed 000 §2.1: "a few millimetres downstream of the FZP focal plane"
    assert 2e-3 < dz < 1e-2
    assert optics.beam_diameter_at_defocus_m(400e-6, 200e-9, LAM_11, dz) == pytest.approx(3.5e-6)


def test_far_field_disc_is_cone_angle_times_distance():
    d = optics.far_field_disc_diameter_m(200e-9, LAM_11, 5.1)
    f = optics.focal_length_m(400e-6, 200e-9, LAM_11)
    assert d == pytest.approx(5.1 * 400e-6 / f)
