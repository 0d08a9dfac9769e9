"""Resolution that the twin measures on its own simulated data (issue 10 §2–§3).

The checks hold the measurement against physics the code does not apply: fewer photons give a
coarser resolution, two independent halves of the data agree with the ground-truth FRC, and a
power law fitted to simulated points predicts a held-out simulated point.
"""

from pathlib import Path

import numpy as np
import pytest

from twin import scenario
from twin.geometry import Geometry
from twin.analysis import laws
from twin.workflows import calibrate, simres

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TWIN_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def quick():
    # 144 scan points and 20 iterations: small enough for CI
    return scenario.load(ROOT / "scenarios" / "quickstart.toml").with_values(
        {"reconstruction.iterations": 20})


def test_power_law_fit_recovers_known_parameters_and_their_errors():
    rng = np.random.default_rng(3)
    f0, d0, k = 1e18, 80e-9, 0.25
    f = f0 * np.logspace(-2, 2, 9)
    d = d0 * (f / f0) ** -k * np.exp(rng.normal(0, 0.05, f.size))
    fd0, sd0, fk, sk = laws.fit_power_law(f, d, f0)
    assert abs(fk - k) < 3 * sk and 0 < sk < 0.05
    assert abs(fd0 - d0) < 3 * sd0


def test_fewer_photons_resolve_less_and_halves_agree_with_truth(quick):
    low = simres.measure(quick.with_values({"beam.flux_photons_per_s": 1e6}), seed=2,
                         points=144)
    high = simres.measure(quick.with_values({"beam.flux_photons_per_s": 1e8}), seed=2,
                          points=144)
    # 100× the photons: a clearly finer resolution (Rose: (1/100)^(1/4) ≈ 0.32 while
    # dose-limited), never finer than the reconstruction pixel
    assert high.resolution_simulated_m < 0.85 * low.resolution_simulated_m
    assert high.resolution_simulated_m >= 0.99 * high.pixel_size_m
    assert high.pcc_simulated > low.pcc_simulated
    # the halves' FRC (what a beamline measures) tracks the ground-truth FRC
    for m in (low, high):
        assert 0.5 < m.frc_halves_m / m.resolution_simulated_m < 2.5
    assert high.fluence_photons_per_m2 == pytest.approx(100 * low.fluence_photons_per_m2)
    assert high.compression_ratio > 1.0


def test_measurements_are_cached_and_reproducible(quick, tmp_path):
    s = quick.with_values({"beam.flux_photons_per_s": 1e7})
    a = simres.measure(s, seed=5, points=64)
    files = list(simres.cache_dir().glob("*.json"))
    assert len(files) == 1
    b = simres.measure(s, seed=5, points=64)
    assert b == a                                    # from the cache
    c = simres.measure(s, seed=5, points=64, use_cache=False)
    assert c.resolution_simulated_m == a.resolution_simulated_m   # same seed, same bytes
    assert c.pcc_simulated == a.pcc_simulated


def test_calibrated_law_predicts_a_held_out_simulated_point(quick):
    # above the photon count where the reconstruction converges (~10⁷ photons/s here)
    s = quick.with_values({"beam.flux_photons_per_s": 1.6e7})
    cal = simres.calibrate(s, factors=(1.0, 2.0, 4.0), n_workers=1, points=144)
    # a point the fit did not see, inside its range
    held = simres.measure(s.with_values({"beam.flux_photons_per_s": 4.5e7}), seed=s.seed,
                          points=144)
    assert not held.unresolved
    predicted = float(cal.resolution_m(held.fluence_photons_per_m2))
    assert abs(np.log(predicted / held.resolution_simulated_m)) < np.log(1.35)
    assert abs(cal.k) < 1.0


def test_too_few_photons_is_a_bound_not_a_resolution(quick):
    # 3e5, not 1e6: at 1e6 the spokes at r = 0.8–2 µm are there (in phase with the truth, FRC
    # 179 nm, halves 200 nm), which the first-crossing rule called unresolved (book/star_frc.md)
    m = simres.measure(quick.with_values({"beam.flux_photons_per_s": 3e5}), seed=1, points=144)
    assert m.unresolved and m.pcc_simulated < 0.7


def test_a_shipped_entry_is_what_the_code_measures_and_forecasts_use_it():
    # twin ships the seed scenarios' simulated points (tools/ship_calibrations.py); one is
    # recomputed here from scratch: same inputs, same measurement (a stale entry fails)
    import json

    from twin.workflows import forecast

    s = scenario.load(ROOT / "scenarios" / "siemens_star_selun_110khz.toml")
    assert s.resolution.model == "simulated"
    key = simres._key_2d(s, s.seed, None, simres.PATCH_POINTS)
    shipped = simres.SHIPPED / f"{key}.json"
    assert shipped.exists(), "the star's calibration point at F0 is not shipped"
    want = json.loads(shipped.read_text())
    got = simres.measure(s, seed=s.seed, use_cache=False)
    assert got.frames == want["frames"]
    assert got.resolution_simulated_m == pytest.approx(want["resolution_simulated_m"], rel=0.03)
    assert got.pcc_simulated == pytest.approx(want["pcc_simulated"], abs=0.01)
    # the forecast of the unchanged seed scenario is that calibration, with its error bars
    calibrate._CALIBRATIONS.clear()
    v = forecast.forecast(s).values
    assert v["resolution_simulated_m"] is not None
    assert v["resolution_simulated_std_m"] is not None and v["resolution_simulated_std_m"] > 0
    assert v["resolution_forecast_m"] == pytest.approx(v["resolution_simulated_m"], rel=1e-9)


def test_an_unwritable_cache_costs_only_the_reuse(tmp_path, monkeypatch):
    import warnings

    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("TWIN_CACHE_DIR", str(blocker / "cache"))     # cannot be created
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        simres._store(simres.cache_dir() / "x.json", {"a": 1})
    assert any("could not cache" in str(w.message) for w in caught)
    assert not (tmp_path / "file").is_dir()


def _stub_rows(monkeypatch, curve, rng=None, noise=0.0, bound_above=np.inf):
    """measure_many replaced by points on a known curve d(F) (with log-normal noise)."""

    def rows(pts, **_):
        out = []
        for sc in pts:
            f = Geometry.from_scenario(sc).fluence_per_m2
            d = curve(f) * (np.exp(rng.normal(0, noise)) if rng is not None else 1.0)
            # an unconverged point reports the first searched period (a bound): ~1 µm here
            out.append({"resolution_simulated_m": 1e-6 if f > bound_above else d,
                        "unresolved": f > bound_above})
        return out

    monkeypatch.setattr(simres, "measure_many", rows)


def test_a_detector_turnover_is_found_and_not_fitted_by_the_dose_law(quick, monkeypatch):
    # a known curve: dose-limited d ∝ F^(-1/4) up to 2F₀, then d ∝ F^(+0.8) (count-rate losses)

    f0 = Geometry.from_scenario(quick).fluence_per_m2
    ft = 2 * f0

    def curve(f):
        return np.where(f <= ft, 100e-9 * (f / f0) ** -0.25,
                        100e-9 * 2 ** -0.25 * (f / ft) ** 0.8)

    _stub_rows(monkeypatch, curve)
    cal = simres.calibrate(quick, factors=(0.25, 0.5, 1.0, 2.0, 4.0, 8.0))
    assert cal.f_turn_photons_per_m2 == pytest.approx(ft)
    assert cal.k == pytest.approx(0.25, abs=1e-9) and cal.k_high == pytest.approx(-0.8, abs=1e-9)
    f = f0 * np.array([0.3, 1.0, 3.0, 6.0])
    np.testing.assert_allclose(cal.resolution_m(f), curve(f), rtol=1e-9)
    # one power law through all six points would miss the 8F₀ point by a factor > 1.5
    d0, _, k, _ = laws.fit_power_law(np.array(cal.points)[:, 0], np.array(cal.points)[:, 1],
                                       f0)
    assert d0 * 8 ** -k < curve(8 * f0) / 1.5


def test_seed_noise_on_a_flat_curve_is_not_a_turnover(quick, monkeypatch):
    # 2 % single-seed scatter on a flat curve (the star's): no turnover, k ≈ 0
    hits = 0
    for seed in range(20):
        _stub_rows(monkeypatch, lambda f: 180e-9, np.random.default_rng(seed), noise=0.02)
        cal = simres.calibrate(quick)
        hits += np.isfinite(cal.f_turn_photons_per_m2)
        assert abs(cal.k) < 0.1
    assert hits == 0


def test_an_unconverged_point_above_a_resolved_one_is_a_turnover(quick, monkeypatch):
    # starved points (low F) are left out; a failure at high F ends the dose-limited side

    f0 = Geometry.from_scenario(quick).fluence_per_m2
    _stub_rows(monkeypatch, lambda f: 100e-9 * (f / f0) ** -0.25, bound_above=3 * f0)
    cal = simres.calibrate(quick)
    assert cal.f_turn_photons_per_m2 == pytest.approx(2 * f0)
    assert cal.k == pytest.approx(0.25, abs=1e-9)
    # above the turnover the curve runs through the one point there (the 4F₀ bound, 1 µm)
    assert cal.k_high < 0
    assert cal.resolution_m(4 * f0) == pytest.approx(1e-6)


def test_an_unconverged_seed_is_not_averaged_into_a_converged_point():
    def m(d, bound):
        return simres.Measurement(d, d, 0.9, 1e18, 1e-8, 256, 5.0, 1.0, bound)

    row = simres.summarise([m(100e-9, False), m(900e-9, True), m(110e-9, False)])
    assert row["resolution_simulated_m"] == pytest.approx(105e-9)
    assert not row["unresolved"]


def test_a_point_without_a_number_is_left_out_of_the_fit(quick, monkeypatch):
    f0 = Geometry.from_scenario(quick).fluence_per_m2
    _stub_rows(monkeypatch, lambda f: np.nan if f < 0.3 * f0 else 100e-9 * (f / f0) ** -0.25)
    cal = simres.calibrate(quick)
    assert cal.k == pytest.approx(0.25, abs=1e-9)
    assert cal.resolved_fluences() == pytest.approx([f0 * x for x in (0.5, 1, 2, 4)])


def test_the_seed_spread_at_f0_bounds_the_error_bar(quick, monkeypatch):
    # five points exactly on a power law fit with no residual; their seeds scattered by 20 nm
    # at F₀: the error of d₀ is at least 20 nm / √seeds

    f0 = Geometry.from_scenario(quick).fluence_per_m2

    def rows(pts, **_):
        return [{"resolution_simulated_m":
                 100e-9 * (Geometry.from_scenario(sc).fluence_per_m2 / f0) ** -0.25,
                 "resolution_simulated_std_m": 20e-9, "unresolved": False} for sc in pts]

    monkeypatch.setattr(simres, "measure_many", rows)
    one = simres.calibrate(quick, seeds=1)
    four = simres.calibrate(quick, seeds=4)
    assert one.d0_std_m < 1e-12
    assert four.d0_std_m == pytest.approx(10e-9)


def test_error_bars_cover_the_truth_in_a_monte_carlo(quick, monkeypatch):
    # 300 synthetic calibrations: three seeds per fluence scattered by 15 % (the brain's
    # measured seed spread) around a known power law. ±2σ of d₀ must cover the true d₀ about
    # 95 % of the time; the fit's error alone (one seed's worth of information) does not

    f0 = Geometry.from_scenario(quick).fluence_per_m2
    rng = np.random.default_rng(0)
    seen = {True: [], False: []}
    for _ in range(300):
        rows = []
        for f in simres.CALIBRATION_FACTORS:
            v = 100e-9 * f ** -0.25 * np.exp(rng.normal(0, 0.15, 3))
            rows.append({"resolution_simulated_m": v.mean(),
                         "resolution_simulated_std_m": v.std(ddof=1), "unresolved": False})
        monkeypatch.setattr(simres, "measure_many", lambda pts, rows=rows, **_: rows)
        for floor in (True, False):
            c = simres.calibrate(quick, seeds=3 if floor else 1)
            seen[floor].append(abs(c.d0_m - 100e-9) <= 2 * c.d0_std_m)
    assert np.mean(seen[True]) >= 0.93
    assert np.mean(seen[False]) < 0.9
