"""The cost model (twin.analysis.costs): transforms counted, priced at measured FFT times."""

import math

import h5py
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


class _FFTWork:
    """Counts the transforms the code does, by wrapping ``scipy.fft`` (what ``twin.core.xp``
    calls on the CPU): each call adds (elements × axes transformed) / (2 N²), so a 2D FFT of one
    N × N array counts 1 and a 1D pass over its N rows ½ (a pruned pass over fewer lines less)."""

    def __init__(self, monkeypatch, n: int):
        import scipy.fft

        self.n2, self.units = n * n, 0.0
        for name, axes in (("fft", 1), ("ifft", 1), ("fft2", 2), ("ifft2", 2)):
            orig = getattr(scipy.fft, name)

            def wrapped(a, *args, _orig=orig, _axes=axes, **kw):
                self.units += np.size(a) * _axes / (2 * self.n2)
                return _orig(a, *args, **kw)

            monkeypatch.setattr(scipy.fft, name, wrapped)


def _per_unit(monkeypatch, n, run, small, large):
    """Transforms per unit of work: the difference of two runs of ``small`` and ``large`` units
    (caches warmed by the first, so one-off work such as the probes' spectra cancels)."""
    run(small)
    with monkeypatch.context() as m:
        c = _FFTWork(m, n)
        run(small)
        a = c.units
        run(large)
        b = c.units - a
    return (b - a) / (large - small)


@pytest.mark.parametrize("modes,slices", [(1, 1), (2, 3), (3, 2)])
def test_simulation_transforms_counted_in_the_operator(monkeypatch, modes, slices):
    """The simulation's detector model (FineFarField, the code `twin simulate` runs) at
    oversampling 1, where no pruning applies, does the model's count per window."""
    from twin.operators.farfield import FineFarField

    n = 16
    rng = np.random.default_rng(0)
    probes = (rng.normal(size=(modes, n, n)) + 1j * rng.normal(size=(modes, n, n)))
    slabs = np.exp(1j * rng.normal(0, 0.1, (slices, n + 20, n + 20)))
    op = FineFarField(probes.astype(np.complex64), slabs.astype(np.complex64), 1, n,
                      1e-8, 1e-7, 1e-10)
    corners = rng.integers(0, 20, (12, 2)).astype(float)      # whole pixels: no new shifts
    per_window = _per_unit(monkeypatch, n, lambda k: op.intensity(corners[:k]), 3, 10)
    assert per_window == pytest.approx(costs.simulation_work(n, 1, 1, modes, slices).transforms)


def test_oversampled_far_field_does_at_most_the_models_transforms(monkeypatch):
    """At oversampling s the far field is pruned: the model is an upper bound, by at most half
    a transform per mode (the column pass is the most pruning can skip)."""
    from twin.operators.farfield import FineFarField

    s, n, modes, slices = 2, 8, 2, 2
    N = s * s * n
    rng = np.random.default_rng(1)
    probes = (rng.normal(size=(modes, N, N)) + 0j).astype(np.complex64)
    slabs = np.exp(1j * rng.normal(0, 0.1, (slices, N + 20, N + 20))).astype(np.complex64)
    op = FineFarField(probes, slabs, s, n, 1e-8, 1e-7, 1e-10)
    corners = rng.integers(0, 20, (12, 2)).astype(float)
    per_window = _per_unit(monkeypatch, N, lambda k: op.intensity(corners[:k]), 3, 10)
    model = costs.simulation_work(N, 1, 1, modes, slices).transforms
    assert model - modes / 2 <= per_window < model


def test_simulation_windows_per_frame_are_beams_times_blur_samples(scenario_path,
                                                                    monkeypatch):
    """The model multiplies by beams × blur samples: count the windows a tiny simulation hands
    its detector model per frame."""
    from twin.geometry import Geometry
    from twin.operators.farfield import FineFarField
    from twin.workflows import simulate

    s = scenario.load(scenario_path("quickstart")).with_values({"scan.n_beams": 3})
    g = Geometry.from_scenario(s)
    windows = []

    def count(self, top_left_px):
        k = len(np.asarray(top_left_px).reshape(-1, 2))
        windows.append(k)
        return np.zeros((k, self.n, self.n), np.float32)

    monkeypatch.setattr(FineFarField, "intensity", count)
    simulate.expected_frames(simulate.plan(s, n_frames=5), 0, 5)
    assert sum(windows) / 5 == g.n_beams * g.blur_samples(s)
    assert g.n_beams == 3 and g.blur_samples(s) > 1          # both factors exercised
    w = costs.simulation_work(64, g.n_beams, g.blur_samples(s), 1, 1)
    assert w.transforms == sum(windows) / 5 * costs.simulation_work(64, 1, 1, 1, 1).transforms


def _tiny_cxi(path, n=16, side=6, step=3.0):
    from twin.operators import ptychography

    rng = np.random.default_rng(1)
    yy, xx = np.meshgrid(np.arange(side), np.arange(side), indexing="ij")
    t_px = np.stack([xx.ravel(), yy.ravel()], 1) * step
    t_px = t_px - t_px.mean(axis=0)
    dx, lam, z = 20e-9, 1.5e-10, 2.0
    shape = (int(side * step + n + 8),) * 2
    pos = ptychography.positions_from_translations(t_px * dx, dx, shape, (n, n))
    r2 = ((np.mgrid[:n, :n] - n / 2) ** 2).sum(axis=0) / (n / 5) ** 2
    probe = (np.exp(-r2) * 30)[None].astype(np.complex64)
    obj = np.exp(1j * rng.uniform(0, 1, shape)).astype(np.complex64)
    frames = np.asarray(ptychography.FarFieldPtychography(probe, pos, shape).intensity(obj))
    with h5py.File(path, "w") as f:
        f["entry_1/data_1/data"] = frames.astype(np.float32)
        f["entry_1/data_1/translation"] = np.concatenate([t_px * dx, np.zeros((side ** 2, 1))],
                                                         1)
        det = "entry_1/instrument_1/detector_1/"
        f[det + "distance"] = z
        f[det + "x_pixel_size"] = f[det + "y_pixel_size"] = lam * z / (n * dx)
        f["entry_1/instrument_1/source_1/wavelength"] = lam
        f["entry_1/instrument_1/source_1/illumination"] = probe
    return path, side ** 2


@pytest.mark.parametrize("algorithm,modes,slices", [("rpie", 1, 1), ("epie", 2, 1),
                                                    ("lsqml", 3, 1), ("multislice", 1, 3)])
def test_reconstruction_transforms_counted_in_the_engines(tmp_path, monkeypatch, algorithm,
                                                          modes, slices):
    """Per frame and iteration, counted in a reconstruction of a tiny scan (iterations 2 and 4;
    the difference leaves out the start-up)."""
    from twin.io import cxi as tio
    from twin.recon import engines

    path, frames = _tiny_cxi(tmp_path / "t.cxi")
    data = tio.read_cxi(path)

    def run(iterations):
        engines.reconstruct(data, engines.Options(
            algorithm=algorithm, iterations=iterations, modes=modes, batch_size=8,
            slices=slices, slice_thickness_m=2e-7 if slices > 1 else 0.0))

    per_frame_iteration = _per_unit(monkeypatch, 16, run, 2, 4) / frames
    assert per_frame_iteration == pytest.approx(
        costs.reconstruction_work(16, 1, modes, slices).transforms)


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
