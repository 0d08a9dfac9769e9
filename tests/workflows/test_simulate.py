import h5py
import numpy as np
import pytest

from twin import scenario

from twin.io import files as io

from twin.operators import ptychography

from twin.workflows import simulate
from twin.core.errors import TwinInputError


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    from pathlib import Path

    s = scenario.load(Path(__file__).resolve().parents[2] / "scenarios" / "quickstart.toml")
    out = tmp_path_factory.mktemp("sim") / "q.cxi"
    summary = simulate.simulate(s, out, n_frames=120)
    return s, out, summary


def test_cxi_layout(quick):
    s, out, summary = quick
    with h5py.File(out, "r") as f:
        assert f["cxi_version"][()] == 150
        d = f["entry_1/data_1/data"]
        assert d.shape == (120, 64, 64) and d.chunks is not None and d.compression is not None
        assert f["entry_1/data_1/translation"].shape == (120, 3)
        assert f["entry_1/instrument_1/source_1/illumination"].dtype == np.complex64
        gt = f["entry_1/sample_1/ground_truth"]
        assert gt.dtype == np.complex64 and gt.attrs["pixel_size_m"] > 0
    data = io.read_cxi(out)
    assert data.object_pixel_m == pytest.approx(summary.object_pixel_m, rel=1e-9)
    assert data.truth.pixel_size_m == pytest.approx(summary.object_pixel_m, rel=1e-9)


def test_frames_follow_the_contract_model(quick, tmp_path):
    """Counts are Poisson draws of I = Σ|F P·O|² built from the file's own arrays (CONTRACTS §3):
    its ground truth, illumination and (true) translations. Dead time off, no motion blur."""
    s, _, _ = quick
    ideal = s.with_values({"detector.dead_time_s": 0.0, "scan.blur_samples": 1})
    out = tmp_path / "ideal.cxi"
    simulate.simulate(ideal, out, n_frames=120)
    d = io.read_cxi(out)
    true = d.truth.translations_m
    pos = ptychography.positions_from_translations(true, d.truth.pixel_size_m,
                                                   d.ground_truth.shape, d.illumination.shape)
    model = ptychography.FarFieldPtychography(d.illumination, pos, d.ground_truth.shape)
    lam = model.intensity(d.ground_truth).astype(np.float64)
    assert d.frames.sum() == pytest.approx(lam.sum(), rel=2e-3)
    bright = lam > 20
    chi2 = np.mean((d.frames[bright] - lam[bright]) ** 2 / lam[bright])
    assert chi2 == pytest.approx(1.0, abs=0.05)          # Poisson: variance = mean
    # with the translations written in the file (the captured ones) the model fits as well
    cap = ptychography.positions_from_translations(d.translations_m, d.truth.pixel_size_m,
                                                   d.ground_truth.shape, d.illumination.shape)
    assert np.allclose(cap, pos, atol=0.05)


def test_reproducible_and_prefix(quick, tmp_path):
    s, out, _ = quick
    again = tmp_path / "again.cxi"
    simulate.simulate(s, again, n_frames=120)
    prefix = tmp_path / "prefix.cxi"
    simulate.simulate(s, prefix, n_frames=50)
    other = tmp_path / "other.cxi"
    simulate.simulate(s, other, n_frames=50, seed=99)
    a, b = io.read_cxi(out).frames, io.read_cxi(again).frames
    assert np.array_equal(a, b)
    assert np.array_equal(io.read_cxi(prefix).frames, a[:50])
    assert not np.array_equal(io.read_cxi(other).frames, a[:50])


def test_110khz_photon_statistics(tmp_path):
    from pathlib import Path

    s = scenario.load(Path(__file__).resolve().parents[2] / "scenarios"
                      / "siemens_star_selun_110khz.toml")
    out = tmp_path / "star.cxi"
    summary = simulate.simulate(s, out, n_frames=600)
    d = io.read_cxi(out)
    per_frame_max = d.frames.reshape(len(d.frames), -1).max(axis=1)
    # seed 000 §2.2.2: a few counts per pixel in 7 µs, at most 22; none beyond 32 pixels
    assert 10 <= np.median(per_frame_max) <= 25
    r = np.hypot(*np.mgrid[-32:32, -32:32])
    total = d.frames.sum(axis=0)
    assert total[r > 30].sum() < 1e-3 * total.sum()
    # incident photons per frame: 2e8/s × 7 µs = 1400
    assert d.frames.sum(axis=(1, 2)).mean() == pytest.approx(1400, rel=0.05)
    # the PandA interpolation leaves nm-scale errors on the frames between captures
    assert 1e-9 < summary.position_error_rms_m < 20e-9
    assert d.upsampling == 2 and d.illumination.shape[-1] == 128


def test_failure_leaves_no_file(quick, tmp_path, monkeypatch):
    s, _, _ = quick
    out = tmp_path / "broken.cxi"

    def boom(*a, **k):
        raise RuntimeError("disk full")
        yield  # pragma: no cover

    monkeypatch.setattr(simulate, "frames", boom)
    with pytest.raises(RuntimeError):
        simulate.simulate(s, out, n_frames=10)
    assert not out.exists()
    assert not list(tmp_path.iterdir())


def test_bad_frames_option(quick, tmp_path):
    s, _, _ = quick
    with pytest.raises(TwinInputError, match="--frames"):
        simulate.simulate(s, tmp_path / "x.cxi", n_frames=0)


def test_undersampled_zone_plate_is_named(quick, tmp_path):
    s, _, _ = quick
    bad = s.with_values({"optics.outermost_zone_nm": 30.0})
    with pytest.raises(TwinInputError, match="outermost_zone_nm"):
        simulate.simulate(bad, tmp_path / "x.cxi", n_frames=4)


def test_multibeam_frames_sum_the_beams(quick, tmp_path):
    s, _, _ = quick
    two = s.with_values({"scan.n_beams": 2, "detector.dead_time_s": 0.0})
    out = tmp_path / "mb.cxi"
    simulate.simulate(two, out, n_frames=40)
    with h5py.File(out) as f:
        probes = f["entry_1/twin/probes"][()]
        offsets = f["entry_1/twin/beam_offsets_m"][()]
        frames = f["entry_1/data_1/data"][()]
    assert probes.shape[0] == 2 and offsets.shape == (2, 2)
    assert abs(offsets[1, 1] - offsets[0, 1]) > 0
    # coded apertures make the beams distinct
    a, b = probes[0, 0].ravel(), probes[1, 0].ravel()
    assert abs(np.vdot(a, b)) < 0.5 * np.linalg.norm(a) * np.linalg.norm(b)
    # the flux is shared: both beams together bring the single beam's photons
    incident = s.beam.flux_photons_per_s * s.exposure_s
    assert np.sum(np.abs(probes) ** 2) == pytest.approx(incident, rel=1e-3)
    assert frames.sum(axis=(1, 2)).mean() < incident
