"""The cost model (twin.analysis.costs): transforms counted, priced at measured FFT times."""

import math

import numpy as np
import pytest

from twin import scenario
from twin.analysis import costs
from twin.workflows import calibrate, forecast

TABLE = {"cpu": {"fft_seconds": {"64": 2e-5, "128": 1e-4, "256": 5e-4},
                 "simulation_share": 0.5, "reconstruction_share": 0.25,
                 "measured": {"sim:64:1:1:1:1": 7.0}}}


def test_fft_time_is_the_measurement_at_measured_sizes_and_n2logn_between():
    for n, t in TABLE["cpu"]["fft_seconds"].items():
        assert costs.fft_seconds(int(n), "cpu", TABLE) == pytest.approx(t)
    # halfway in log2(n) between 64 and 128 the per-operation cost is the mean of the two
    n = 2 ** 6.5
    per_op = (2e-5 / (64 ** 2 * 12) + 1e-4 / (128 ** 2 * 14)) / 2
    assert costs.fft_seconds(n, "cpu", TABLE) == pytest.approx(
        per_op * n * n * math.log2(n * n))
    assert math.isnan(costs.fft_seconds(64, "gpu", TABLE))


def test_transform_counts_of_the_stages():
    # 9 beams × 4 blur samples × 3 modes through 28 slices: 27 propagations (a forward and an
    # inverse transform each) and the far field, 55 transforms per exit wave
    w = costs.simulation_work(512, 9, 4, 3, 28)
    assert w.transforms == 9 * 4 * 3 * 55
    # a reconstruction transforms forward and back, per mode and beam, through every slice
    assert costs.reconstruction_work(128, 1, 4, 1).transforms == 8
    assert costs.reconstruction_work(128, 1, 1, 2).transforms == 6


def test_a_measured_stage_wins_over_the_model():
    assert costs.seconds_per_unit(costs.simulation_work(64, 1, 1, 1, 1), "simulation", "cpu",
                                  TABLE) == 7.0
    w = costs.simulation_work(128, 1, 2, 3, 1)
    assert costs.seconds_per_unit(w, "simulation", "cpu", TABLE) == pytest.approx(
        6 * 1e-4 / 0.5)


def test_forecast_costs_scale_with_the_acquisition(scenario_path, monkeypatch):
    s = scenario.load(scenario_path("brain_phantom_eiger_3khz"))
    cal = calibrate.calibration(s)             # shipped; the variants below reuse it
    monkeypatch.setattr(calibrate, "calibration", lambda sc: cal)
    a = forecast.forecast(s).values
    b = forecast.forecast(s.with_values({"tomography.n_projections": 2 * 501})).values
    for k in ("simulation_core_hours", "reconstruction_core_hours"):
        assert a[k] > 0
        assert b[k] == pytest.approx(2 * a[k])
    # flux changes no transform: the cost stays
    c = forecast.forecast(s.with_values({"beam.flux_photons_per_s": 1e9})).values
    assert c["simulation_core_hours"] == pytest.approx(a["simulation_core_hours"])
    assert np.isfinite(a["reconstruction_gpu_hours"])
