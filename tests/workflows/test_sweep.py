import numpy as np
import pandas as pd
import pytest

from twin import scenario
from twin.geometry import Geometry
from twin.analysis import laws

from twin.workflows import calibrate, forecast

from twin.workflows import sweep
from twin.core.errors import TwinInputError


@pytest.fixture(scope="module")
def quick():
    from pathlib import Path

    return scenario.load(Path(__file__).resolve().parents[2] / "scenarios" / "quickstart.toml")


def test_grid_order(quick):
    keys, points = sweep.grid(quick)
    assert keys == ["beam.flux_photons_per_s", "scan.frame_rate_hz"]
    assert len(points) == 9 and points[1] == (1e7, 1000.0)


def test_chunk_matches_single_forecasts(quick):
    keys, points = sweep.grid(quick)
    table = sweep.evaluate_chunk(quick, keys, points)
    for i, point in enumerate(points):
        single = forecast.forecast(quick.with_values(dict(zip(keys, point)))).values
        assert table.loc[i, "total_time_s"] == pytest.approx(single["total_time_s"])
        assert table.loc[i, "dose_gy"] == pytest.approx(single["dose_gy"])
    # physics: dose ∝ flux at a fixed frame rate; time ∝ 1/frame rate
    t = table.set_index(keys)
    assert t.loc[(1e9, 1000.0), "dose_gy"] / t.loc[(1e7, 1000.0), "dose_gy"] == pytest.approx(100)
    assert t.loc[(1e8, 100.0), "scan_time_s"] / t.loc[(1e8, 1000.0), "scan_time_s"] == \
        pytest.approx(10)


def test_local_cluster_and_files(quick, tmp_path):
    table = sweep.run_sweep(quick, n_workers=1, chunk_points=4)
    assert len(table) == 9
    keys, points = sweep.grid(quick)
    assert list(map(tuple, table[keys].to_numpy())) == points
    for suffix in (".csv", ".parquet"):
        path = tmp_path / f"t{suffix}"
        sweep.write_table(table, path)
        back = pd.read_csv(path) if suffix == ".csv" else pd.read_parquet(path)
        assert np.allclose(back["total_time_s"], table["total_time_s"])
    pngs = sweep.plot_sweep(table, quick, tmp_path / "t")
    assert all(p.exists() and p.stat().st_size > 1000 for p in pngs)


def test_existing_scheduler(quick):
    from dask.distributed import LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                      dashboard_address=None) as cluster:
        table = sweep.run_sweep(quick, scheduler=cluster.scheduler_address)
    assert len(table) == 9


def test_bad_sweep_value_names_field(quick):
    s = quick.model_copy(update={"sweep": {"scan.frame_rate_hz": [1000.0, 9000.0]}})
    with pytest.raises(TwinInputError, match="sweep.scan.frame_rate_hz"):
        sweep.run_sweep(s, n_workers=1)


def test_simulated_model_sweep_calibrates_each_non_flux_combination_once(quick, monkeypatch,
                                                                         tmp_path):
    # resolution.model = "simulated": one calibration per value of the swept fields other than
    # the flux (here the frame rate: exposure and blur change what is simulated), each point's
    # resolution that calibration's d(F) at the point's own fluence
    from twin.workflows import simres

    calls = []

    def fake_calibrate(s, seeds=1, **kw):
        calls.append(s.scan.frame_rate_hz)
        f0 = Geometry.from_scenario(s).fluence_per_m2
        return laws.Calibration(100e-9 * s.scan.frame_rate_hz / 1000, 5e-9, 0.25, 0.02, f0, [])

    monkeypatch.setenv("TWIN_CACHE_DIR", str(tmp_path))
    calibrate._CALIBRATIONS.clear()
    monkeypatch.setattr(simres, "calibrate", fake_calibrate)
    monkeypatch.setattr(calibrate, "compression_ratio", lambda s: 3.0)
    monkeypatch.setattr(sweep, "estimate_simulated_s", lambda *a, **k: 1.0)
    base = quick.model_copy(update={"resolution": quick.resolution.model_copy(
        update={"model": "simulated"})})
    table = sweep.run_sweep(base, n_workers=1, chunk_points=4)
    rates = sorted(set(table["scan.frame_rate_hz"]))
    assert sorted(calls) == rates and len(table) == 9
    for _, row in table.iterrows():
        flux, rate = row["beam.flux_photons_per_s"], row["scan.frame_rate_hz"]
        f = Geometry.from_scenario(base.with_values({"beam.flux_photons_per_s": flux,
                                                      "scan.frame_rate_hz": rate})).fluence_per_m2
        f0 = Geometry.from_scenario(base.with_values({"scan.frame_rate_hz": rate})).fluence_per_m2
        expect = max(100e-9 * rate / 1000 * (f / f0) ** -0.25, row["pixel_size_m"])
        assert row["resolution_forecast_m"] == pytest.approx(expect, rel=1e-6)
    calibrate._CALIBRATIONS.clear()


def test_an_uncalibrated_combination_is_left_empty_not_refused(quick, monkeypatch, tmp_path):
    # calibrating every swept frame rate would take hours: without --yes the sweep still
    # forecasts time, dose and data everywhere, the resolution only where a calibration is
    # cached (here the scenario's own rate), and says so
    from twin.workflows import simres

    own = quick.scan.frame_rate_hz

    def fake_calibrate(s, seeds=1, **kw):
        assert s.scan.frame_rate_hz == own, "an uncached combination was simulated"
        return laws.Calibration(100e-9, 5e-9, 0.25, 0.02,
                                Geometry.from_scenario(s).fluence_per_m2, [])

    monkeypatch.setenv("TWIN_CACHE_DIR", str(tmp_path))
    calibrate._CALIBRATIONS.clear()
    monkeypatch.setattr(simres, "calibrate", fake_calibrate)
    monkeypatch.setattr(simres, "missing_keys", lambda s, *a, **k: (
        set() if s.scan.frame_rate_hz == own else {f"k{s.scan.frame_rate_hz}"}))
    monkeypatch.setattr(calibrate, "compression_ratio", lambda s: 3.0)
    monkeypatch.setattr(sweep, "estimate_simulated_s", lambda *a, **k: 2 * 3600.0)
    base = quick.model_copy(update={"resolution": quick.resolution.model_copy(
        update={"model": "simulated"})})
    said = []
    table = sweep.run_sweep(base, n_workers=1, log=said.append)
    assert len(table) == 9 and table["total_time_s"].notna().all()
    mine = table["scan.frame_rate_hz"] == own
    assert mine.any() and (~mine).any()
    assert table.loc[mine, "resolution_forecast_m"].notna().all()
    assert table.loc[~mine, "resolution_forecast_m"].isna().all()
    assert any("--yes" in m and "NaN" in m for m in said)
    calibrate._CALIBRATIONS.clear()
