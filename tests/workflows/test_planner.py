"""Inverse planning (``twin plan``): grid, feasibility, Pareto front, command line."""

import itertools
import json

import numpy as np
import pytest
from typer.testing import CliRunner

from twin import scenario
from twin.cli import app
from twin.workflows import forecast, planner


def brute_front(obj: np.ndarray) -> set[int]:
    """O(n²): rows no other row dominates (≤ everywhere, < somewhere), NaN as +∞."""
    obj = np.where(np.isnan(obj), np.inf, obj)
    keep = set()
    for i in range(len(obj)):
        if not any(np.all(obj[j] <= obj[i]) and np.any(obj[j] < obj[i])
                   for j in range(len(obj)) if j != i):
            keep.add(i)
    return keep


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_pareto_front_against_brute_force(seed):
    rng = np.random.default_rng(seed)
    obj = rng.integers(0, 6, size=(300, 3)).astype(float)    # many ties and duplicates
    obj[rng.integers(0, 300, 10), rng.integers(0, 3, 10)] = np.nan
    assert set(planner.pareto_front(obj).tolist()) == brute_front(obj)
    cont = rng.lognormal(size=(400, 3))
    assert set(planner.pareto_front(cont).tolist()) == brute_front(cont)


def quick(scenario_path):
    # a closed-form resolution model: nothing calibrated, so every point is exact
    return scenario.load(scenario_path("brain_phantom_eiger_3khz")).with_values(
        {"resolution.model": "howells"})


def test_plan_returns_exactly_the_feasible_front_of_the_scalar_forecast(scenario_path):
    base = quick(scenario_path)
    varies = [planner.parse_vary("beam.flux_photons_per_s=2e6:2e9", base),
              planner.parse_vary("tomography.n_projections=100:800", base),
              planner.parse_vary("scan.n_beams=1:3", base)]
    budget, target = 4.0, 400e-9
    result = planner.plan(base, budget, target, varies, points_per_field=4)
    # independently: every grid point through the one-scenario forecast
    grid = list(itertools.product(*(v.values(4) for v in varies)))
    rows = []
    for point in grid:
        vals = dict(zip([v.path for v in varies], point))
        f = forecast.forecast(base.with_values(vals)).values
        res = f["resolution_3d_forecast_m"]
        if f["total_time_s"] <= budget * 8 * 3600 and not f["flags"] and res <= target:
            rows.append((point, [f["total_time_s"], f["dose_gy"], res]))
    assert rows and len(rows) < len(grid)          # the budget and target both cut
    front = brute_front(np.array([r[1] for r in rows]))
    expected = {rows[i][0] for i in front}
    got = {tuple(p[v.path] for v in varies) for p in result.points}
    assert got == expected
    assert result.n_feasible == len(rows) and result.n_evaluated == len(grid)
    for p in result.points:        # every returned point is feasible, its forecast complete
        assert p["shifts"] <= budget and p["flags"] == []
        assert p["resolution_3d_forecast_m"] <= target
        assert p["total_time_s"] == pytest.approx(p["shifts"] * 8 * 3600)


def test_a_budget_nothing_fits_is_an_empty_answer(scenario_path, tmp_path):
    path = tmp_path / "q.toml"
    from twin.workflows import scenario_tools

    path.write_text(scenario_tools.annotated_toml(quick(scenario_path)))
    r = CliRunner().invoke(app, ["plan", str(path), "--budget-shifts", "1e-6", "--json",
                                 "--vary", "scan.n_beams=1:2"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout) == []
    assert "no feasible point" in r.stderr


@pytest.mark.parametrize("spec", [
    "beam.flux=1:2",                       # no such field
    "beam.flux_photons_per_s=2e9:1e9",     # LO > HI
    "beam.flux_photons_per_s=a:b",         # not numbers
    "beam.flux_photons_per_s",             # no range
    "beam.flux_photons_per_s=1e9",         # no colon
    "scan.mode=1:2",                       # not numeric
    "scan.n_beams=1.5:3",                  # an integer field
    "scan.n_beams=0:3",                    # an invalid scenario at LO
    "beam=1:2",                            # a table, not a field
])
def test_malformed_vary_exits_2_naming_it(scenario_path, spec):
    r = CliRunner().invoke(app, ["plan", str(scenario_path("quickstart")), "--budget-shifts",
                                 "1", "--vary", spec])
    assert r.exit_code == 2, r.output
    assert "--vary" in r.stderr and spec.split("=")[0] in r.stderr
    assert "Traceback" not in r.output


def test_bad_budget_exits_2(scenario_path):
    r = CliRunner().invoke(app, ["plan", str(scenario_path("quickstart")), "--budget-shifts",
                                 "-1"])
    assert r.exit_code == 2 and "--budget-shifts" in r.stderr


def test_plan_of_the_1mm3_brain_answers_in_seconds_with_forecast_keys(scenario_path, tmp_path,
                                                                     monkeypatch):
    # "in seconds": the plan never simulates (a simulated point would take minutes); its
    # wall time is a benchmark's business, not a test's (shared machines are noisy)
    from twin.workflows import simres, simvol

    def never(*a, **k):
        raise AssertionError("twin plan started a simulation")

    monkeypatch.setattr(simres, "measure", never)
    monkeypatch.setattr(simvol, "measure_volume", never)
    path = str(scenario_path("brain_1mm3_dlsr"))
    runner = CliRunner()
    one = json.loads(runner.invoke(app, ["forecast", path, "--json"]).stdout)
    r = runner.invoke(app, ["plan", path, "--budget-shifts", "60", "--json",
                            "--plot", str(tmp_path / "front.png")])
    assert r.exit_code == 0, r.output
    pts = json.loads(r.stdout)
    assert pts
    varied = ["beam.flux_photons_per_s", "scan.frame_rate_hz", "scan.n_beams",
              "tomography.n_projections"]
    for p in pts:
        assert set(one) <= set(p) and set(varied) <= set(p)
        assert p["shifts"] <= 60 and p["flags"] == []
    assert (tmp_path / "front.png").stat().st_size > 1000


def test_version():
    from importlib import metadata

    r = CliRunner().invoke(app, ["--version"])
    assert r.exit_code == 0
    try:
        expected = metadata.version("ptycho-twin")
    except metadata.PackageNotFoundError:
        import twin
        expected = twin.__version__
    assert r.stdout.strip() == f"twin {expected}"


def test_sweep_rows_carry_the_flags(scenario_path):
    from twin.workflows import sweep

    base = quick(scenario_path)
    dose = forecast.forecast(base).values["dose_gy"]
    s = base.with_values({"beamtime.dose_limit_gy": dose * 1.5})
    flux = base.beam.flux_photons_per_s
    table = sweep.evaluate_chunk(s, ["beam.flux_photons_per_s"], [(flux,), (flux * 2,)])
    # dose is proportional to the flux: the doubled flux crosses a limit 1.5 × the dose
    assert list(table["flags"]) == ["", "dose_limit"]
    assert list(table["dose_limit_exceeded"]) == [False, True]


def test_the_report_puts_the_flags_first(scenario_path):
    from twin.report import book

    s = quick(scenario_path).with_values({"beamtime.dose_limit_gy": 1.0})
    fc = forecast.forecast(s).as_dict()
    topics = book.limits(fc, s.model_dump())
    assert topics[0]["topic"] == "Feasibility" and "dose_limit_gy" in topics[0]["text"]
    clean = forecast.forecast(quick(scenario_path)).as_dict()
    assert "Feasibility" not in [t["topic"] for t in book.limits(clean, s.model_dump())]


def test_a_field_varied_twice_exits_2(scenario_path):
    r = CliRunner().invoke(app, ["plan", str(scenario_path("quickstart")), "--budget-shifts",
                                 "1", "--vary", "scan.n_beams=1:2", "--vary", "scan.n_beams=2:3"])
    assert r.exit_code == 2 and "--vary" in r.stderr


def test_default_grid_of_a_2d_scenario_varies_no_projections(scenario_path):
    base = scenario.load(scenario_path("quickstart"))
    paths = [v.path for v in planner.default_vary(base)]
    assert "tomography.n_projections" not in paths and "beam.flux_photons_per_s" in paths
    top = base.detector.resolved().max_frame_rate_hz
    rate = next(v for v in planner.default_vary(base) if v.path == "scan.frame_rate_hz")
    assert rate.hi == top and rate.values()[-1] == pytest.approx(top)
    # log spacing over a decade or more: equal ratios between neighbours
    flux = np.array(planner.Vary("beam.flux_photons_per_s", 1e7, 1e9, False).values(5))
    assert np.allclose(flux[1:] / flux[:-1], 10 ** 0.5)
    assert planner.Vary("scan.n_beams", 1, 100, True).values(5) == [1, 3, 10, 32, 100]
