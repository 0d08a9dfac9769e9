"""Forecasts against what follows from the papers' own parameters (seeds 000 and 002)."""

import math

import numpy as np
import pytest

from twin import scenario
from twin.geometry import Geometry
from twin.analysis import laws

from twin.workflows import calibrate, forecast


def fc(scenario_path, name, **changes):
    s = scenario.load(scenario_path(name))
    if changes:
        # a changed seed scenario with resolution.model = "simulated" would be calibrated by
        # simulation (minutes); these tests are about time, dose and geometry: the closed form
        # the file keeps for comparison stands in for it
        if s.resolution.model == "simulated" and "resolution.model" not in changes:
            closed = "howells" if s.resolution.reference_resolution_m else "rose"
            changes = {"resolution.model": closed, **changes}
        s = s.with_values(changes)
    return forecast.forecast(s).values


# --- seed 000 §2 -------------------------------------------------------------------------

def test_scan_rate_3khz(scenario_path):
    v = fc(scenario_path, "brain_phantom_eiger_3khz")
    # 0.15 µm × 0.5 µm × 2874 Hz = 215.6 µm²/s ("220 µm²/s")
    assert v["scan_rate_um2_per_s"] == pytest.approx(0.15 * 0.5 * 2874, rel=1e-9)
    assert v["scan_rate_um2_per_s"] == pytest.approx(220, rel=0.03)
    assert v["frames_per_projection"] == 100_000


def test_scan_rate_110khz(scenario_path):
    v = fc(scenario_path, "siemens_star_selun_110khz")
    # 2800 × 20 grid over 20 × 20 µm² at 110 kHz: 785.7 µm²/s ("800 µm²/s")
    assert v["frames_per_projection"] == 56_000
    assert v["scan_rate_um2_per_s"] == pytest.approx(400 / (56000 / 110e3), rel=1e-6)
    assert v["scan_rate_um2_per_s"] == pytest.approx(800, rel=0.03)
    # PandA at 10 kHz: 11 detector frames per captured position
    assert v["position_interpolation_factor"] == pytest.approx(11)


def test_projection_time_against_the_simulated_trajectory(scenario_path):
    # Scanning alone is 501 × 100,000 / 2874 Hz = 4.84 h; seed 000's 7 h includes overheads it
    # does not itemise, which the scenario carries as labelled calibrations (0.1 s turnarounds,
    # 5 s per projection). Independent of the forecast's closed form: the fly-scan trajectory
    # twin simulates (frame start times, turnarounds) plus the per-projection overhead.
    from twin.acquisition import scan
    from twin.geometry import Geometry

    s = scenario.load(scenario_path("brain_phantom_eiger_3khz"))
    v = forecast.forecast(s).values
    g = Geometry.from_scenario(s)
    tr = scan.snake_fly_scan(g.fov_x_m, g.lines_per_beam * g.slow_step_m, g.fast_step_m,
                             g.slow_step_m, s.scan.frame_rate_hz, g.exposure_s,
                             s.scan.line_turnaround_s, g.lines_per_beam)
    period = 1 / s.scan.frame_rate_hz
    scan_end = tr.t_start_s[-1] - (period - g.exposure_s) / 2 + period
    assert len(tr) == v["frames_per_projection"]
    assert v["projection_time_s"] == pytest.approx(scan_end + s.scan.projection_overhead_s,
                                                   rel=1e-9)
    bare = fc(scenario_path, "brain_phantom_eiger_3khz", **{"scan.line_turnaround_s": 0.0,
                                                           "scan.projection_overhead_s": 0.0})
    assert bare["total_time_h"] < 7
    # 10⁶ µm³: the 150 × 150 × 50 µm³ box the rotating field of view sweeps
    assert v["imaged_volume_um3"] == pytest.approx(150 * 150 * 50)


def test_resolution_limits_and_pixels(scenario_path):
    eiger = fc(scenario_path, "brain_phantom_eiger_3khz")
    selun = fc(scenario_path, "siemens_star_selun_110khz")
    assert eiger["resolution_limit_m"] == pytest.approx(15e-9, rel=0.02)    # §3: 15 nm
    assert selun["resolution_limit_m"] == pytest.approx(30e-9, rel=0.02)    # §3: 30 nm
    assert eiger["pixel_size_m"] == pytest.approx(60e-9, rel=0.01)          # Table 1: 60 nm
    # Table 1 gives 88 nm for the SELUN; λz/(N·p) with 64 binned 200 µm pixels is 44.5 nm
    # (88 nm would be 64 native 100 µm pixels). twin reports the physics.
    lam = 1.2398419843320026e-9 / 11.1
    assert selun["pixel_size_m"] == pytest.approx(lam * 5.1 / (64 * 200e-6), rel=1e-6)


def test_110khz_photon_statistics(scenario_path):
    # §2.2.2: a handful of counts per pixel in 7 µs, at most 22; 2e6 photons/pixel/s.
    v = fc(scenario_path, "siemens_star_selun_110khz")
    assert 1 < v["peak_counts_per_frame"] < 22
    assert 5e5 < v["peak_count_rate_per_pixel_hz"] < 4e6
    assert not v["saturated"]


# --- seed 000 §3 and Appendix A ----------------------------------------------------------

def test_170s_per_mm2(scenario_path):
    v = fc(scenario_path, "brain_1mm3_dlsr")
    assert v["scan_rate_um2_per_s"] == pytest.approx(6000, rel=1e-3)
    assert v["projection_time_s"] == pytest.approx(1e6 / 6000, rel=1e-3)    # "170 s"


def test_19_2_1_days(scenario_path):
    one = fc(scenario_path, "brain_1mm3_dlsr")
    nine = fc(scenario_path, "brain_1mm3_dlsr_multibeam")
    relaxed = fc(scenario_path, "brain_1mm3_dlsr_multibeam_relaxed")
    assert one["total_time_days"] == pytest.approx(19.3, abs=0.1)           # "19 days"
    assert nine["total_time_days"] == pytest.approx(2.15, abs=0.05)         # "2 days"
    assert relaxed["total_time_days"] == pytest.approx(0.72, abs=0.05)      # "1 day"
    # ratios: 2000 lines shared among 9 beams round up to 223 lines each
    assert one["total_time_s"] / nine["total_time_s"] == pytest.approx(2000 / 223, rel=1e-3)


def test_appendix_a_crowther(scenario_path):
    v = fc(scenario_path, "brain_1mm3_dlsr")
    # App. A's own rule asks π/2 × 10⁴ = 15,708 projections; it then uses 10⁴.
    assert v["n_projections_crowther"] == math.ceil(math.pi / 2 * 1e4)
    assert v["n_projections"] == 10_000
    crowther = fc(scenario_path, "brain_1mm3_dlsr", **{"tomography.n_projections": "crowther"})
    assert crowther["n_projections"] == 15_708
    assert crowther["total_time_days"] == pytest.approx(19.3 * 1.5708, rel=0.01)  # ~30 days


def test_40_tb_per_day(scenario_path):
    v = fc(scenario_path, "brain_1mm3_dlsr")
    per_day = v["data_volume_bytes"] / v["total_time_days"]
    assert per_day == pytest.approx(64 * 64 * 1 * 110e3 * 86400, rel=1e-6)
    assert per_day == pytest.approx(40e12, rel=0.05)                        # "about 40 TB"


def test_1mm3_count_rate_exceeds_selun_without_diffuser(scenario_path):
    # §3: at 10¹¹ photons/s the central disc would exceed 200 Mphotons/pixel/s unless the beam
    # is spread over the detector (larger NA optics or a diffuser).
    v = fc(scenario_path, "brain_1mm3_dlsr")
    assert v["saturated"] and v["peak_count_rate_per_pixel_hz"] > 2e8
    spread = fc(scenario_path, "brain_1mm3_dlsr", **{"optics.diffuser": True})
    assert spread["peak_count_rate_per_pixel_hz"] == pytest.approx(1e11 / 64 ** 2)
    assert spread["peak_count_rate_per_pixel_hz"] < 2e8 and not spread["saturated"]


def test_1mm3_resolution_and_dose(scenario_path):
    # the closed form the file keeps for comparison (its forecast is simulated)
    one = fc(scenario_path, "brain_1mm3_dlsr", **{"resolution.model": "howells"})
    # Howells scaling from 270 nm at 2e8/220 photons/µm² to 1e11/6000: 270·18.3^(-1/4) ≈ 130 nm
    # (seed 000 expects ~100 nm using Deng et al.'s ×2 per decade of flux).
    # The SELUN binned mode exposes 7 µs of each 9.09 µs frame (seed 000 §2.2.2; its duty
    # cycle in detectors.toml), so only that fraction of the flux is recorded.
    duty = 1 - 2.09e-6 * 110e3
    ratio = (1e11 * duty / 6000) / (2e8 / 220)
    assert one["resolution_forecast_m"] == pytest.approx(270e-9 * ratio ** -0.25, rel=0.02)
    # dose grows with the total beam time; App. B's 24 h gives ~5 MGy, 19 days ~20× more
    relaxed = fc(scenario_path, "brain_1mm3_dlsr_multibeam_relaxed")
    per_day = relaxed["dose_gy"] / relaxed["total_time_days"]
    assert 2e6 < per_day < 8e6


# --- seed 002 ----------------------------------------------------------------------------

def test_ic_13_hours_and_ratio(scenario_path):
    full = fc(scenario_path, "ic_rapid_349")
    reduced = fc(scenario_path, "ic_rapid_21")
    assert full["frames_per_projection"] == 60_000                          # "~60k patterns"
    # 129 s per angle and ~13 h come from the scenario's calibrated 9 s overhead (labelled as
    # such in the scenario); what is checked here is the frame time it rests on
    assert full["scan_time_s"] == pytest.approx(60_000 / 500, rel=1e-9)    # "120 s of frames"
    assert full["total_time_s"] / reduced["total_time_s"] == pytest.approx(349 / 21)
    assert full["total_time_s"] / reduced["total_time_s"] == pytest.approx(16, rel=0.05)  # ×16
    assert full["pixel_size_m"] == pytest.approx(14e-9, rel=0.02)           # "(14 nm)³ voxels"


# --- vectorised evaluation matches the scalar path ------------------------------------------

def test_evaluate_is_elementwise(scenario_path):
    names = ["brain_phantom_eiger_3khz", "ic_rapid_21", "siemens_star_selun_110khz"]
    ss = [scenario.load(scenario_path(n)) for n in names]
    out = forecast.evaluate(forecast.stack([forecast.physical_parameters(s) for s in ss]))
    for i, s in enumerate(ss):
        single = forecast.forecast(s).values
        for key in ("total_time_s", "dose_gy", "resolution_forecast_m", "data_volume_bytes"):
            assert np.isclose(out[key][i], single[key])


def test_contract_keys_present(scenario_path):
    keys = ["energy_kev", "wavelength_m", "frame_rate_hz", "frames_per_projection",
            "scan_rate_um2_per_s", "projection_time_s", "n_projections", "n_projections_crowther",
            "total_time_s", "volume_rate_um3_per_s", "data_volume_bytes", "dose_gy",
            "energy_deposited_j", "pixel_size_m", "resolution_limit_m", "resolution_forecast_m",
            "peak_count_rate_per_pixel_hz", "detector_max_count_rate_per_pixel_hz", "saturated"]
    v = fc(scenario_path, "quickstart")
    assert set(keys) <= set(v)


def test_crowther_count_and_crowther_resolution_agree(scenario_path):
    # Two code paths: the projection count that Crowther asks for (π/2 × the field in voxels)
    # must, when the cylinder fills the field, make Crowther's resolution the voxel itself.
    v = fc(scenario_path, "brain_phantom_eiger_3khz", **{"scan.fov_x_um": 100.0,
                                                         "tomography.n_projections":
                                                         "crowther"})
    voxel = v["pixel_size_m"]
    assert 0.98 * voxel < v["crowther_resolution_m"] <= voxel * (1 + 1e-9)
    # the sample's width, not the field, sets it: a field half the sample's width needs as
    # many projections for the same resolution
    half = fc(scenario_path, "brain_phantom_eiger_3khz", **{"scan.fov_x_um": 50.0,
                                                            "tomography.n_projections":
                                                            v["n_projections"]})
    assert half["crowther_resolution_m"] == pytest.approx(v["crowther_resolution_m"])


def test_missing_wedge_is_not_fixed_by_more_projections(scenario_path):
    rose = {"resolution.model": "rose"}          # one 2D model for all three
    few = fc(scenario_path, "ic_rapid_21", **rose)
    many = fc(scenario_path, "ic_rapid_21", **rose, **{"tomography.n_projections": 4000})
    full = fc(scenario_path, "ic_rapid_21", **rose, **{"tomography.n_projections": 4000,
                                                       "tomography.angular_range_deg": 180.0})
    assert many["resolution_3d_forecast_m"] < few["resolution_3d_forecast_m"]
    # at 140.8° the worst direction stays elongated whatever the count; 180° has no wedge
    assert many["missing_wedge_elongation"] > 1.2
    assert full["missing_wedge_elongation"] == pytest.approx(1.0)
    assert many["resolution_3d_worst_m"] > 1.2 * full["resolution_3d_worst_m"]
    assert fc(scenario_path, "quickstart")["resolution_3d_forecast_m"] is None


def test_dose_fractionation_total_fluence_sets_the_3d_dose_limit(scenario_path):
    # Hegerl–Hoppe: N projections at fluence F reach what one projection at N·F reaches; a 2D
    # scenario at N times the flux is that one projection
    v3 = fc(scenario_path, "ic_rapid_21", **{"resolution.model": "rose"})
    v2 = fc(scenario_path, "ic_rapid_21", **{"resolution.model": "rose",
                                             "tomography.n_projections": 0,
                                             "beam.flux_photons_per_s":
                                             21 * scenario.load(scenario_path("ic_rapid_21"))
                                             .beam.flux_photons_per_s})
    assert v3["dose_limited_3d_resolution_m"] == pytest.approx(v2["resolution_forecast_m"],
                                                               rel=1e-6)



def test_1mm3_simulated_forecast_turns_over_where_the_detector_saturates(scenario_path):
    # the shipped simulated points of the 1 mm³ scan: flat up to F0, worse above it. The
    # forecast follows them on both sides instead of one power law through all of them
    s = scenario.load(scenario_path("brain_1mm3_dlsr"))
    assert s.resolution.model == "simulated"
    v = forecast.forecast(s).values
    cal = calibrate.calibration(s)
    f0 = cal.f0_photons_per_m2
    pts = dict(cal.points)
    assert v["resolution_turnover_fluence_photons_per_um2"] is not None
    # at F0 the forecast is the dose-side fit, within 10 % of the point simulated there
    assert v["resolution_forecast_m"] == pytest.approx(pts[f0], rel=0.1)
    # above the turnover more flux is worse, and the JSON says what limits it
    assert cal.resolution_m(3 * f0) > 1.5 * cal.resolution_m(f0)
    assert "gets worse with flux" in v["resolution_limited_by"]
    # the total dose of many projections follows the dose side only
    assert v["dose_limited_3d_resolution_m"] <= v["resolution_forecast_m"] * (1 + 1e-9)


def _worse_with_flux(at):
    # a simulated d(F) that worsens with flux (per-frame detector losses) must not make the
    # 3D forecast worse through the total dose of many projections: N projections at the same
    # flux do not saturate the detector more than one
    v = at(1)
    assert v["resolution_forecast_m"] == pytest.approx(250e-9)
    assert v["dose_limited_3d_resolution_m"] == pytest.approx(250e-9)
    assert v["resolution_3d_forecast_m"] <= 250e-9 * v["missing_wedge_elongation"] ** (1 / 3) \
        * (1 + 1e-9)
    assert v["resolution_limited_by"].startswith("detector")


def _turnover_at_f0(at):
    # above the simulated turnover the frames themselves are worse: fractionating the dose
    # over projections does not undo it, so more flux makes the 3D dose limit worse too
    below, v, above = at(0.5), at(1), at(2)
    assert above["resolution_forecast_m"] > v["resolution_forecast_m"]
    assert above["dose_limited_3d_resolution_m"] > v["dose_limited_3d_resolution_m"]
    assert below["dose_limited_3d_resolution_m"] > v["dose_limited_3d_resolution_m"]
    assert above["resolution_simulated_std_m"] is None          # not at F0
    assert "detector" in above["resolution_limited_by"]


def _outside_the_simulated_fluences(at):
    flat = {"tomography.n_projections": 0}            # 2D: one projection's fluence only
    assert at(3, **flat)["resolution_extrapolated"] is False
    assert at(10, **flat)["resolution_extrapolated"] is True
    # in 3D the dose-fractionation term reads the law at the total fluence N·F, far beyond
    # the simulated points: that term extrapolates, and the forecast says so
    v = at(3)
    assert v["n_projections"] > 4 and v["resolution_extrapolated"] is True


@pytest.mark.parametrize("law,check", [
    (lambda f0, pts: (250e-9, 30e-9, -0.25, 0.15, f0, []), _worse_with_flux),
    (lambda f0, pts: (200e-9, 5e-9, 0.05, 0.02, f0, [], f0, -1.0), _turnover_at_f0),
    (lambda f0, pts: (200e-9, 5e-9, 0.25, 0.02, f0, pts), _outside_the_simulated_fluences),
], ids=["worse with flux", "turnover at F0", "outside the simulated fluences"])
def test_3d_reads_a_simulated_law_only_where_it_holds(scenario_path, monkeypatch, law, check):
    """The 1 mm³ scan under a given d(F) (put in place of the calibration: nothing simulates),
    forecast at multiples of its flux."""
    from twin.workflows import simres

    s = scenario.load(scenario_path("brain_1mm3_dlsr")).with_values(
        {"resolution.model": "simulated"})
    f0 = Geometry.from_scenario(s).fluence_per_m2
    pts = [(f0 * f, 200e-9) for f in simres.CALIBRATION_FACTORS]
    monkeypatch.setattr(calibrate, "calibration",
                        lambda sc: laws.Calibration(*law(f0, pts)))
    monkeypatch.setattr(calibrate, "compression_ratio", lambda sc: 10.0)
    flux = s.beam.flux_photons_per_s

    def at(factor, **changes):
        return forecast.forecast(s.with_values(
            {"beam.flux_photons_per_s": factor * flux, **changes})).values

    check(at)


# --- shifts, per-sample overheads and feasibility flags (issue 24) ---------------------------

def test_shifts_are_the_papers_scan_time_in_8_hour_shifts(scenario_path):
    # seed 000 §3: 170 s per mm² projection × 10⁴ projections, in shifts of 8 × 3600 s
    v = fc(scenario_path, "brain_1mm3_dlsr")
    assert v["shifts"] == pytest.approx(1e6 / 6000 * 1e4 / (8 * 3600), rel=2e-3)
    assert v["flags"] == (["saturated"] if v["saturated"] else [])


def test_overheads_are_paid_once_per_sample_and_add_no_dose(scenario_path):
    a, c = 1800.0, 900.0       # half an hour of alignment, a quarter of an hour to change
    for n in (50, 400):
        plain = fc(scenario_path, "brain_phantom_eiger_3khz", **{"tomography.n_projections": n})
        over = fc(scenario_path, "brain_phantom_eiger_3khz", **{
            "tomography.n_projections": n, "beamtime.alignment_overhead_s": a,
            "beamtime.sample_change_overhead_s": c})
        assert over["total_time_s"] - plain["total_time_s"] == pytest.approx(a + c, rel=1e-9)
        assert over["shifts"] * 28800 == pytest.approx(n * plain["projection_time_s"] + a + c,
                                                       rel=1e-12)
        assert over["projection_time_s"] == plain["projection_time_s"]
        assert over["dose_gy"] == plain["dose_gy"]
        assert over["photons_total"] == plain["photons_total"]


def test_saturated_flag_turns_on_where_the_detector_limit_is_crossed(scenario_path):
    name = "brain_phantom_eiger_3khz"
    v = fc(scenario_path, name)
    flux = v["flux_photons_per_s"]
    # the count rate and the counts per frame grow in proportion to the flux: the flux at
    # which the first of them reaches its limit
    edge = flux * min(v["detector_max_count_rate_per_pixel_hz"] / v["peak_count_rate_per_pixel_hz"],
                      v["detector_max_counts"] / v["peak_counts_per_frame"])
    below = fc(scenario_path, name, **{"beam.flux_photons_per_s": edge * 0.98})
    above = fc(scenario_path, name, **{"beam.flux_photons_per_s": edge * 1.02})
    assert below["flags"] == [] and not below["saturated"]
    assert above["flags"] == ["saturated"] and above["saturated"]


def test_dose_limit_flag_both_ways(scenario_path):
    name = "brain_phantom_eiger_3khz"
    dose = fc(scenario_path, name)["dose_gy"]
    ok = fc(scenario_path, name, **{"beamtime.dose_limit_gy": dose * 1.01})
    over = fc(scenario_path, name, **{"beamtime.dose_limit_gy": dose * 0.99})
    assert ok["flags"] == [] and not ok["dose_limit_exceeded"]
    assert over["flags"] == ["dose_limit"] and over["dose_limit_exceeded"]


def test_data_rate_flag_both_ways(scenario_path):
    name = "brain_phantom_eiger_3khz"
    s = scenario.load(scenario_path(name))
    # stored bytes per second: crop² pixels × the preset mode's bytes per pixel × frame rate
    rate = s.detector.crop ** 2 * s.detector.resolved().bytes_per_pixel * s.scan.frame_rate_hz
    ok = fc(scenario_path, name, **{"beamtime.data_rate_limit_bytes_per_s": rate * 1.01})
    over = fc(scenario_path, name, **{"beamtime.data_rate_limit_bytes_per_s": rate * 0.99})
    assert ok["flags"] == [] and over["flags"] == ["data_rate"]


def test_every_flag_is_a_warning_on_stderr(scenario_path, tmp_path):
    import json

    from typer.testing import CliRunner

    from twin.cli import app

    s = scenario.load(scenario_path("brain_phantom_eiger_3khz")).with_values({
        "resolution.model": "howells", "beamtime.dose_limit_gy": 1.0,
        "beamtime.data_rate_limit_bytes_per_s": 1.0, "beam.flux_photons_per_s": 1e11})
    path = tmp_path / "flagged.toml"
    from twin.workflows import scenario_tools

    path.write_text(scenario_tools.annotated_toml(s))
    r = CliRunner().invoke(app, ["forecast", str(path), "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["flags"] == ["saturated", "dose_limit", "data_rate"]
    warnings = [line for line in r.stderr.splitlines() if line.startswith("twin: warning:")]
    assert len(warnings) == 3
    assert "saturated" in warnings[0] and "dose_limit_gy" in warnings[1]
    assert "data_rate_limit" in warnings[2]


def test_an_uncalibrated_forecast_says_resolved_is_unknown_and_names_its_patch(
        scenario_path, monkeypatch, tmp_path):
    import json

    from twin.workflows import simres
    from twin.workflows.patch import patch_summary

    def refuse(*a, **k):
        raise AssertionError("the forecast started a simulation")

    monkeypatch.setenv("TWIN_CACHE_DIR", str(tmp_path))     # only shipped points count
    monkeypatch.setattr(simres, "measure_many", refuse)
    monkeypatch.setattr(simres, "measure", refuse)
    # another energy: no shipped calibration, and no shipped scenario differs only in flux
    s = scenario.load(scenario_path("brain_phantom_eiger_3khz")).with_values(
        {"beam.energy_kev": 7.3})
    f = forecast.forecast(s)
    v = json.loads(json.dumps(f.as_dict(), allow_nan=False))    # no NaN in the JSON
    assert v["flags"] == ["uncalibrated"]
    # whether the reconstructions resolve is unknown, not true
    assert v["resolution_resolved"] is None and v["resolution_forecast_m"] is None
    assert v["resolution_extrapolated"] is None
    out = forecast.evaluate(forecast.physical_parameters(s))
    assert out["resolution_resolved"][0] is None and out["resolution_unresolved"][0] is None
    # the patch is the scenario's own, whether or not it has been simulated yet
    ps = patch_summary(s)
    assert all(math.isfinite(x) and x > 0 for x in v["resolution_patch_size_m"])
    assert v["resolution_patch_size_m"] == [ps.size_m[0], ps.size_m[1]]
    assert v["resolution_patch_frames"] == ps.frames > 0
    assert v["resolution_patch_fluence_ratio"] == ps.fluence_ratio


def test_the_forecast_table_says_unresolved_where_a_resolution_is_null_for_that_reason():
    """A null resolution reads "unresolved" in the table only when its own flag says the point
    did not resolve; a null for another reason (no calibration) stays a blank."""
    from twin.core.formatting import shown_value as _shown

    assert _shown("resolution_3d_forecast_m", None,
                  {"resolution_3d_resolved": False}) == "unresolved"
    assert _shown("resolution_3d_forecast_m", None, {"resolution_3d_resolved": None}) == "—"
    assert _shown("resolution_forecast_m", None, {"resolution_3d_resolved": False}) == "—"
    assert _shown("resolution_forecast_fire_m", None,
                  {"resolution_resolved": False}) == "unresolved"
    assert _shown("resolution_3d_forecast_m", 2.79e-7,
                  {"resolution_3d_resolved": True}) == "279 nm"
