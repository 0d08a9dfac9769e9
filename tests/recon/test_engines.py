import h5py
import numpy as np
import pytest

from twin import scenario

from twin.io import files as io

from twin.recon import engines as reconstruct

from twin.workflows import simulate

from twin.analysis import truth as validate
from twin.core.errors import TwinInputError


@pytest.fixture
def backend(xp):
    """The engines' backend option for the ``xp`` fixture's module (numpy; cupy on a GPU)."""
    return xp.__name__


def run(data, **kw):
    kw.setdefault("iterations", 25)
    kw.setdefault("batch_size", 32)
    return reconstruct.reconstruct(data, reconstruct.Options(**kw))


def score(r, data):
    return validate.compare(r.object, data.ground_truth, r.pixel_size_m, data.translations_m,
                            r.probe.shape[-1])


@pytest.mark.parametrize("algorithm,min_pcc", [("rpie", 0.93), ("epie", 0.9), ("lsqml", 0.9)])
def test_recovers_ground_truth(quick_cxi, algorithm, min_pcc, backend):
    d = io.read_cxi(quick_cxi)
    r = run(d, algorithm=algorithm, backend=backend)
    assert r.cost[-1] < 0.6 * r.cost[0]
    c = score(r, d)
    assert c.pcc_phase > min_pcc
    assert c.frc_resolution_m < 3 * r.pixel_size_m


def test_poisson_lsqml_and_modes(quick_cxi, backend):
    d = io.read_cxi(quick_cxi)
    r = run(d, algorithm="lsqml", noise_model="poisson", modes=2, iterations=20,
            backend=backend)
    assert r.probe.shape[0] == 2
    g = np.abs(np.vdot(r.probe[0], r.probe[1]))
    assert g < 1e-3 * np.linalg.norm(r.probe[0]) * np.linalg.norm(r.probe[1])
    assert np.sum(np.abs(r.probe[0]) ** 2) > np.sum(np.abs(r.probe[1]) ** 2)
    assert score(r, d).pcc_phase > 0.8


def test_probe_from_model_when_file_has_none(quick_cxi):
    d = io.read_cxi(quick_cxi)
    d.illumination = None
    r = run(d, algorithm="rpie", iterations=40)
    assert score(r, d).pcc_phase > 0.9


@pytest.mark.parametrize("method", ["gradient", "annealing"])
def test_position_correction_reduces_errors(quick_cxi, method, backend):
    d = io.read_cxi(quick_cxi)
    rng = np.random.default_rng(3)
    true = d.translations_m.copy()
    px = 64.58e-9
    d.translations_m = true + np.concatenate(
        [rng.normal(0, 1.5 * px, (len(true), 2)), np.zeros((len(true), 1))], axis=1)
    before = np.sqrt(np.mean(np.sum((d.translations_m[:, :2] - true[:, :2]) ** 2, axis=1)))
    r = run(d, algorithm="rpie", iterations=30, position_correction=method,
            position_correction_start=3, backend=backend)
    after_xy = r.positions_m - (r.positions_m - true[:, :2]).mean(axis=0)   # global offset free
    after = np.sqrt(np.mean(np.sum((after_xy - true[:, :2]) ** 2, axis=1)))
    assert after < 0.7 * before


def test_upsampling_reconstructs_binned_data(tmp_path):
    from pathlib import Path

    s = scenario.load(Path(__file__).resolve().parents[2] / "scenarios"
                      / "siemens_star_selun_110khz.toml")
    # a small, well-lit patch of the 110 kHz star: 2×2-binned SELUN frames, 44.5 nm pixels
    s = s.with_values({"scan.fov_x_um": 3.0, "scan.fov_y_um": 3.0, "scan.fast_step_um": 0.25,
                       "scan.slow_step_um": 0.25, "scan.frame_rate_hz": 1000.0,
                       "scan.exposure_s": 5e-4, "scan.stage_vibration_nm": 0.0,
                       "optics.beam_diameter_um": 1.5})
    out = tmp_path / "binned.cxi"
    simulate.simulate(s, out)
    d = io.read_cxi(out)
    assert d.frames.shape[-1] == 64 and d.illumination.shape[-1] == 128
    r = run(d, algorithm="rpie", iterations=30)
    assert r.probe.shape[-1] == 128                     # upsampled ×2 from the file
    assert score(r, d).pcc_phase > 0.8


def test_multislice_runs_and_fits(quick_cxi, backend):
    d = io.read_cxi(quick_cxi)
    r = run(d, algorithm="multislice", slices=2, slice_thickness_m=0.5e-6, iterations=15,
            backend=backend)
    assert r.slices.shape[0] == 2
    assert r.cost[-1] < 0.5 * r.cost[0]
    assert score(r, d).pcc_phase > 0.85


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_divergence_keeps_last_good_state(quick_cxi):
    d = io.read_cxi(quick_cxi)
    with pytest.warns(UserWarning, match="diverged"):
        r = run(d, algorithm="rpie", iterations=10, object_step=50.0, probe_step=50.0,
                divergence_factor=2.0)
    assert r.stopped_early and len(r.cost) < 10
    assert np.all(np.isfinite(r.object))


def test_bad_inputs(quick_cxi, tmp_path):
    d = io.read_cxi(quick_cxi)
    d.illumination = d.illumination[:, :40, :40]
    with pytest.raises(TwinInputError, match="illumination"):
        run(d)
    with pytest.raises(TwinInputError, match="--algorithm"):
        reconstruct.Options(algorithm="magic")
    bad = tmp_path / "bad.cxi"
    with h5py.File(quick_cxi) as f, h5py.File(bad, "w") as g:
        for k in ("entry_1/data_1/data", "entry_1/instrument_1/detector_1/distance",
                  "entry_1/instrument_1/detector_1/x_pixel_size",
                  "entry_1/instrument_1/source_1/energy"):
            g[k] = f[k][()]
        g["entry_1/data_1/translation"] = f["entry_1/data_1/translation"][:10]
    with pytest.raises(TwinInputError, match="translation"):
        io.read_cxi(bad)


def test_output_file_contract(quick_cxi, tmp_path):
    d = io.read_cxi(quick_cxi)
    r = run(d, iterations=3)
    out = tmp_path / "rec.h5"
    io.write_reconstruction(out, r.object, r.probe, r.positions_m, r.cost, r.pixel_size_m)
    with h5py.File(out) as f:
        assert f["object"].dtype == np.complex64 and f["object"].attrs["pixel_size_m"] > 0
        assert f["probe"].ndim == 3 and f["positions_m"].shape == (len(d.frames), 2)
        assert f["cost"].shape == (3,)
    # the object's centre pixel is the translations' origin: the refined positions equal the
    # given translations when nothing was refined
    assert np.allclose(r.positions_m, d.translations_m[:, :2], atol=1e-12)


@pytest.mark.parametrize("shift", ["cubic", "bilinear"])
def test_interpolated_subpixel_models_reconstruct(quick_cxi, shift):
    # the cheaper sub-pixel models of the operator run the same engine to nearly the same result
    d = io.read_cxi(quick_cxi)
    exact = score(run(d, algorithm="rpie", iterations=15), d).pcc_phase
    other = score(run(d, algorithm="rpie", iterations=15, subpixel_shift=shift), d).pcc_phase
    assert other > exact - 0.02
    with pytest.raises(TwinInputError, match="--subpixel-shift"):
        reconstruct.Options(subpixel_shift="sinc")
