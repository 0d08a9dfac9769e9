"""The dose of a fixed sample does not depend on the field it is scanned in (issue 21 §7)."""

import math

import pytest

from twin import scenario as sc
from twin.core.constants import photon_energy_j
from twin.sample import materials
from twin.workflows import forecast as fc


@pytest.mark.parametrize("fov_um", [6.0, 600.0, 6000.0])
def test_dose_of_a_slab_is_the_closed_form_in_any_field(fov_um):
    # quickstart's 6 × 6 µm² Si3N4 box, 1.5 µm thick, at normal incidence: every photon that
    # falls on it crosses t = 1.5 µm, so D = F·E·(μ_en/ρ)·(1 − e^(−μt))/(μt) (Beer–Lambert,
    # energy absorbed per unit mass of the slab), whatever the field around it
    s = sc.load("scenarios/quickstart.toml").with_values({
        "scan.fov_x_um": fov_um, "scan.fov_y_um": fov_um, "scan.shutter": "per_line"})
    out = fc.forecast(s).values
    m = materials.lookup("si3n4", 8.0, s.sample.density_g_per_cm3)
    t = 1.5e-6
    rho = m.material.density_g_per_cm3 * 1e3
    fluence = out["fluence_photons_per_um2"] * 1e12
    closed = (fluence * float(photon_energy_j(8.0)) * m.mu_en_per_m / rho
              * (1 - math.exp(-m.mu_per_m * t)) / (m.mu_per_m * t))
    assert out["dose_gy"] == pytest.approx(closed, rel=0.02)
    assert out["dose_gy"] > 0


def test_parked_beam_at_turnarounds_adds_to_the_peak_dose():
    # no shutter: at every line end the beam waits line_turnaround_s on the field's edge, which
    # lies on the sample where the field is no wider than it (quickstart: 6 µm in 6 µm). One
    # parked spot alone receives flux·t_turn over the beam's area: a lower bound on the extra
    # peak fluence, whatever the overlap of neighbouring spots
    s = sc.load("scenarios/quickstart.toml")
    open_ = fc.forecast(s).values
    shut = fc.forecast(s.with_values({"scan.shutter": "per_line"})).values
    beam_area_m2 = math.pi / 4 * open_["beam_diameter_m"] ** 2
    one_spot = s.beam.flux_photons_per_s * s.scan.line_turnaround_s / beam_area_m2
    m = materials.lookup("si3n4", 8.0, s.sample.density_g_per_cm3)
    e_over_m = (float(photon_energy_j(8.0)) * m.mu_en_per_m
                / (m.material.density_g_per_cm3 * 1e3))
    extra_gy = open_["peak_local_dose_gy"] - shut["peak_local_dose_gy"]
    assert extra_gy >= one_spot * e_over_m * (1 - 1e-9)
    # the parked photons are absorbed too: the mean dose rises with them
    assert open_["dose_gy"] > shut["dose_gy"] * 1.5
