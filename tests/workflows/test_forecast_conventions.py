"""Every resolution says its convention; failures are results (issue 21 §1–3)."""

import math

import numpy as np
import pytest

from twin import scenario
from twin.geometry import Geometry
from twin.analysis import laws
from twin.workflows import calibrate, forecast, patch, simres


def _calibration(f0, flags, d=200e-9, seeds=3):
    pts = [(f0 * f, d) for f in simres.CALIBRATION_FACTORS]
    return laws.Calibration(d, 5e-9, 0.1, 0.02, f0, pts, resolved=[True] * len(pts),
                              seeds=seeds, all_resolved=flags)


def test_cliff_is_the_lowest_fluence_every_seed_resolves_above_a_failure():
    f = [1.0, 2.0, 4.0, 8.0, 16.0]
    assert laws.cliff_fluence(f, [False, False, True, True, True]) == 4.0
    assert laws.cliff_fluence(f, [True, False, True, True, True]) == 4.0
    # a failure only at the top is the detector's turnover, not a cliff
    assert math.isnan(laws.cliff_fluence(f, [True, True, True, True, False]))
    assert math.isnan(laws.cliff_fluence(f, [True] * 5))
    # order of the points does not matter
    assert laws.cliff_fluence(f[::-1], [True, True, True, False, False]) == 4.0


def test_below_the_cliff_the_forecast_is_unresolved_not_a_plateau(scenario_path, monkeypatch):
    s = scenario.load(scenario_path("siemens_star_selun_110khz"))
    f0 = Geometry.from_scenario(s).fluence_per_m2
    # F0/4 and F0/2 failed in a seed: the cliff is at F0
    monkeypatch.setattr(calibrate, "calibration", lambda sc: _calibration(
        f0, [False, False, True, True, True]))
    monkeypatch.setattr(calibrate, "compression_ratio", lambda sc: 10.0)
    flux = s.beam.flux_photons_per_s
    at = forecast.forecast(s).values
    below = forecast.forecast(s.with_values({"beam.flux_photons_per_s": 0.6 * flux})).values
    assert at["resolution_resolved"] is True and at["resolution_forecast_m"] > 0
    assert at["resolution_cliff_fluence_photons_per_um2"] == pytest.approx(f0 * 1e-12)
    assert below["resolution_resolved"] is False
    assert below["resolution_forecast_m"] is None
    assert below["resolution_forecast_fire_m"] is None


def test_every_resolution_key_states_its_convention(scenario_path):
    for name in ("brain_phantom_eiger_3khz", "siemens_star_selun_110khz", "ic_rapid_21"):
        v = forecast.forecast(scenario.load(scenario_path(name))).values
        assert v["resolution_threshold"] == "half-bit"
        assert v["resolution_seeds"] >= 1
        assert v["resolution_forecast_fire_m"] > v["resolution_forecast_m"] > 0
        assert len(v["resolution_patch_size_m"]) == 2
        assert v["resolution_patch_frames"] > 0
        if v["n_projections"] > 1 and v.get("resolution_3d_resolved") is False:
            # a measured volume that does not resolve is a result: no figure, the bound beside
            assert v["resolution_3d_forecast_m"] is None
            assert v["resolution_3d_forecast_fire_m"] is None
            assert v["resolution_3d_bound_m"] > 0
        elif v["n_projections"] > 1:
            assert v["resolution_3d_forecast_fire_m"] > v["resolution_3d_forecast_m"] > 0
            # the method names what the 3D figure is: a measured volume (with what was
            # measured beside it) or the bound used
            if v["resolution_3d_method"] == "fsc_simulated_volume":
                assert v["simulated_volume_seeds"] >= 1
                assert v["resolution_3d_bound_m"] > 0
            else:
                assert v["resolution_3d_method"].startswith("bound")


def _band_limited_pair(n, cutoff, seed=0):
    """Two images that share every spatial frequency below ``cutoff`` (cycles per pixel) and
    nothing above it: their FRC falls from 1 to 0 at the cutoff."""
    rng = np.random.default_rng(seed)
    r = np.hypot(np.fft.fftfreq(n)[:, None], np.fft.fftfreq(n)[None, :])

    def band(mask):
        return np.fft.ifft2(np.fft.fft2(rng.normal(size=(n, n))) * mask).real

    common = band(r < cutoff)
    return common + band(r >= cutoff), common + band(r >= cutoff)


@pytest.mark.parametrize("cutoff", [0.125, 0.2])
def test_fire_is_the_period_at_a_known_band_limit(scenario_path, monkeypatch, cutoff):
    """A calibration whose points are the FRC crossing of two images band-limited at f_c: the
    forecast's FIRE number must be the period 1/f_c of that band limit (Nieuwenhuizen et al.
    2013) and its half-period key 1/(2 f_c), known without the forecast's formula."""
    from twin.analysis import metrics

    pixel = 50e-9
    a, b = _band_limited_pair(256, cutoff)
    crossing = metrics.fourier_correlation(a, b, pixel).crossing("half_bit")
    s = scenario.load(scenario_path("brain_phantom_eiger_3khz"))
    f0 = Geometry.from_scenario(s).fluence_per_m2
    monkeypatch.setattr(calibrate, "calibration", lambda sc: _calibration(
        f0, [True] * 5, d=crossing.half_period_m))
    monkeypatch.setattr(calibrate, "compression_ratio", lambda sc: 10.0)
    v = forecast.forecast(s).values
    period = pixel / cutoff
    assert v["resolution_forecast_fire_m"] == pytest.approx(period, rel=0.02)
    assert v["resolution_forecast_m"] == pytest.approx(period / 2, rel=0.02)


def _brute_force_count(nx, ny, sx, sy, r):
    x = (np.arange(nx) - (nx - 1) / 2) * sx
    y = (np.arange(ny) - (ny - 1) / 2) * sy
    return int((x[None, :] ** 2 + y[:, None] ** 2 <= r * r * (1 + 1e-12)).sum())


@pytest.mark.parametrize("nx,ny,sx,sy,r", [(16, 16, 0.007, 1.0, 1.75), (285, 100, 0.007, 0.2, 1.0),
                                          (5, 7, 0.3, 0.3, 0.5), (400, 401, 0.1, 0.15, 1.2),
                                          (3, 900, 0.5, 0.01, 2.0)])
def test_beam_coverage_count_matches_brute_force(nx, ny, sx, sy, r):
    assert patch._disc_count(nx, ny, sx, sy, r) == _brute_force_count(nx, ny, sx, sy, r)


def test_patch_fluence_ratio_is_one_for_a_patch_as_large_as_the_scan(scenario_path):
    s = scenario.load(scenario_path("quickstart"))
    assert patch.patch_summary(s).fluence_ratio == pytest.approx(1.0)
    # a sliver one beam's width narrower than the beam is dosed less at its centre
    star = scenario.load(scenario_path("siemens_star_selun_110khz"))
    assert patch.patch_summary(star).fluence_ratio < 0.1


def test_the_same_experiment_at_another_flux_reads_the_shipped_calibration(scenario_path):
    # twice the flux: the shipped d(F) of the same sample, optics, scan and detector, read at
    # the new fluence (not bad input: exit 0, no simulation started)
    s = scenario.load(scenario_path("brain_phantom_eiger_3khz"))
    cal = calibrate.calibration(s)
    v = forecast.forecast(s.with_values({"beam.flux_photons_per_s": 4e8, "seed": 7})).values
    assert v["resolution_calibration"].startswith("from brain_phantom_eiger_3khz")
    f = v["fluence_photons_per_um2"] * 1e12
    assert f == pytest.approx(2 * cal.f0_photons_per_m2)
    assert v["resolution_forecast_m"] == pytest.approx(float(cal.resolution_m(f)))
    assert "uncalibrated" not in v["flags"]


def test_an_uncalibrated_experiment_is_a_flagged_result_not_an_error(scenario_path):
    s = scenario.load(scenario_path("siemens_star_selun_110khz"))
    v = forecast.forecast(s.with_values({"scan.frame_rate_hz": 50_000.0})).values
    assert v["resolution_forecast_m"] is None and v["resolution_forecast_fire_m"] is None
    assert "uncalibrated" in v["flags"]
    assert v["resolution_calibration"].startswith("uncalibrated")
    assert "twin calibrate" in v["resolution_calibration"]
    # time, dose and data are still forecast
    assert v["total_time_s"] > 0 and v["dose_gy"] > 0
    # every CONTRACTS §2 convention key is present in 2D too
    for k in ("resolution_threshold", "resolution_3d_method", "resolution_patch_size_m",
              "resolution_cliff_fluence_photons_per_um2", "resolution_seeds"):
        assert k in v
