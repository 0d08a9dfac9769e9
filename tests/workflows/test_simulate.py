import h5py
import numpy as np
import pytest

from twin import scenario

from twin.io.cxi import read_cxi

from twin.operators import ptychography
from twin.operators.farfield import FineFarField

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
    data = read_cxi(out)
    assert data.object_pixel_m == pytest.approx(summary.object_pixel_m, rel=1e-9)
    assert data.truth.pixel_size_m == pytest.approx(summary.object_pixel_m, rel=1e-9)


def test_frames_follow_the_contract_model(quick, tmp_path):
    """With the realism switched off (oversampling 1, no detector response, no dead time, no
    blur) counts are Poisson draws of I = Σ|F P·O|² built from the file's own arrays
    (CONTRACTS §3): its ground truth, true probe modes and (true) translations."""
    s, _, _ = quick
    ideal = s.with_values({"detector.dead_time_s": 0.0, "scan.blur_samples": 1,
                           "simulation.oversampling": 1, "simulation.detector_response": False})
    out = tmp_path / "ideal.cxi"
    simulate.simulate(ideal, out, n_frames=120)
    d = read_cxi(out)
    true = d.truth.translations_m
    modes = d.truth.probe_modes[0]
    pos = ptychography.positions_from_translations(true, d.truth.pixel_size_m,
                                                   d.ground_truth.shape, modes.shape)
    model = ptychography.FarFieldPtychography(modes, pos, d.ground_truth.shape)
    lam = model.intensity(d.ground_truth).astype(np.float64)
    assert d.frames.sum() == pytest.approx(lam.sum(), rel=2e-3)
    bright = lam > 20
    chi2 = np.mean((d.frames[bright] - lam[bright]) ** 2 / lam[bright])
    assert chi2 == pytest.approx(1.0, abs=0.05)          # Poisson: variance = mean
    # with the translations written in the file (the captured ones) the model fits as well
    cap = ptychography.positions_from_translations(d.translations_m, d.truth.pixel_size_m,
                                                   d.ground_truth.shape, modes.shape)
    assert np.allclose(cap, pos, atol=0.05)


def test_default_data_are_not_the_reconstruction_model(quick):
    """By default (issue 10 §1) the same file-built model misfits far beyond Poisson noise,
    and the illumination handed to the reconstruction is not the simulated probe."""
    s, out, _ = quick
    d = read_cxi(out)
    modes = d.truth.probe_modes[0]
    assert d.illumination.shape[0] == 1
    # a coherent, aberration-free zone plate: the model is close to the truth, never equal
    assert not np.array_equal(d.illumination[0], modes[0])
    pos = ptychography.positions_from_translations(d.truth.translations_m, d.truth.pixel_size_m,
                                                   d.ground_truth.shape, modes.shape)
    lam = ptychography.FarFieldPtychography(modes, pos, d.ground_truth.shape).intensity(
        d.ground_truth).astype(np.float64)
    bright = lam > 20
    chi2 = np.mean((d.frames[bright] - lam[bright]) ** 2 / lam[bright])
    assert chi2 > 1.5


def _gaussian_plan(oversampling: int, sigma_px: float):
    """A quickstart plan whose fine probe is a Gaussian beam (intensity rms sigma_px
    reconstruction pixels) on an empty object."""
    from pathlib import Path

    s = scenario.load(Path(__file__).resolve().parents[2] / "scenarios" / "quickstart.toml")
    s = s.with_values({"simulation.oversampling": oversampling})
    p = simulate.plan(s, n_frames=1)
    N, dxf = p.n_window, p.fine_pixel_m
    x = (np.arange(N) - N // 2) * dxf
    sig = sigma_px * p.dx_m
    amp = np.exp(-(x[:, None] ** 2 + x[None, :] ** 2) / (4 * sig ** 2))
    amp = amp / np.sqrt(np.sum(amp ** 2)) * np.sqrt(1e6)
    p.fine_probes = amp[None, None].astype(np.complex64)
    p.fine_slices = np.ones_like(p.fine_slices)
    p._cache.clear()
    return p, sig


@pytest.mark.parametrize("oversampling", [1, 2, 3])
def test_pixels_integrate_the_far_field(oversampling):
    """A Gaussian beam's far field, integrated over each detector pixel in closed form
    (products of error functions), against the simulated detector intensity: with
    oversampling the pixels integrate, without they point-sample."""
    from scipy.special import erf

    p, sig = _gaussian_plan(oversampling, sigma_px=3.0)
    n = p.n_native
    op = simulate._operator(p, 0)
    got = op.intensity(p.fine_top_left_px(p.trajectory.positions_m[:1]))[0].astype(np.float64)
    # |FT|² of exp(−r²/(4σ²)) is Gaussian with rms σ_q = 1/(4πσ); pixels are 1/(n·dx) wide
    sq = 1 / (4 * np.pi * sig) * n * p.dx_m                 # in pixels
    k = np.arange(n) - n // 2
    cdf = 0.5 * (1 + erf((k[:, None] + np.array([-0.5, 0.5])) / (sq * np.sqrt(2))))
    row = cdf[:, 1] - cdf[:, 0]
    integrated = 1e6 * row[:, None] * row[None, :]
    point = np.exp(-k ** 2 / (2 * sq ** 2))
    point = 1e6 * np.outer(point, point) / np.sum(point) ** 2
    # Parseval: every photon reaches the detector (the beam's far field is narrow)
    assert got.sum() == pytest.approx(1e6, rel=1e-4)
    err_int = np.abs(got - integrated).max() / integrated.max()
    err_pt = np.abs(got - point).max() / point.max()
    if oversampling == 1:
        assert err_pt < 1e-3 < err_int
    else:
        # the midpoint rule with s² points per pixel: error ∝ 1/s²
        assert err_int < 0.03 / oversampling ** 2 < err_pt


def test_fine_object_grid_and_ground_truth():
    """The ground truth is the box average of the fine object over each reconstruction
    pixel, and the fine grid's pixels are centred inside the reconstruction pixels."""
    from pathlib import Path

    s = scenario.load(Path(__file__).resolve().parents[2] / "scenarios" / "quickstart.toml")
    p = simulate.plan(s, n_frames=4)
    o = p.oversampling
    assert o == 2 and p.n_window == o * o * p.n_native
    fine = p.fine_slices.prod(axis=0)
    h, w = p.object.shape
    assert fine.shape == (h * o, w * o)
    box = fine.reshape(h, o, w, o).mean(axis=(1, 3))
    assert np.allclose(box, p.object, atol=1e-6)
    # the fine object is not the reconstruction-grid object upsampled: sub-pixel detail
    up = np.repeat(np.repeat(p.object, o, axis=0), o, axis=1)
    assert np.abs(fine - up).max() > 0.05


def test_reproducible_and_prefix(quick, tmp_path):
    s, out, _ = quick
    again = tmp_path / "again.cxi"
    simulate.simulate(s, again, n_frames=120)
    prefix = tmp_path / "prefix.cxi"
    simulate.simulate(s, prefix, n_frames=50)
    other = tmp_path / "other.cxi"
    simulate.simulate(s, other, n_frames=50, seed=99)
    a, b = read_cxi(out).frames, read_cxi(again).frames
    assert np.array_equal(a, b)
    assert np.array_equal(read_cxi(prefix).frames, a[:50])
    assert not np.array_equal(read_cxi(other).frames, a[:50])


def test_110khz_photon_statistics(tmp_path):
    from pathlib import Path

    s = scenario.load(Path(__file__).resolve().parents[2] / "scenarios"
                      / "siemens_star_selun_110khz.toml")
    out = tmp_path / "star.cxi"
    summary = simulate.simulate(s, out, n_frames=600)
    d = read_cxi(out)
    per_frame_max = d.frames.reshape(len(d.frames), -1).max(axis=1)
    # seed 000 §2.2.2: a few counts per pixel in 7 µs, at most 22; none beyond 32 pixels
    assert 10 <= np.median(per_frame_max) <= 25
    r = np.hypot(*np.mgrid[-32:32, -32:32])
    total = d.frames.sum(axis=0)
    assert total[r > 30].sum() < 1e-3 * total.sum()
    # incident photons per frame: 2e8/s × 7 µs = 1400, of which the 450 µm Si sensor
    # photo-absorbs (μ_photo/μ)(1 − e^(−μt)) (NIST XCOM-like cross sections via xraylib)
    import xraylib

    mu = xraylib.CS_Total_CP("Si", 11.1) * 2.33 * 100
    qe = xraylib.CS_Photo_CP("Si", 11.1) * 2.33 * 100 / mu * (1 - np.exp(-mu * 450e-6))
    assert d.frames.sum(axis=(1, 2)).mean() == pytest.approx(1400 * qe, rel=0.05)
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
    fine = simulate.plan(two, n_frames=4).fine_probes
    assert np.sum(np.abs(fine) ** 2) == pytest.approx(incident, rel=1e-3)
    # on the reconstruction window the coded beams' wide tails are partly cut off
    assert 0.8 * incident < np.sum(np.abs(probes) ** 2) < incident
    assert frames.sum(axis=(1, 2)).mean() < incident


def _device_case(quick):
    """A multislice, two-beam plan and a few blurred positions of each beam."""
    s, _, _ = quick
    two = s.with_values({"scan.n_beams": 2, "simulation.multislice": "on",
                         "simulation.slices": 3})
    p = simulate.plan(two, n_frames=6)
    p.backend = "numpy"             # the CPU path, also on a machine with a GPU
    sub = p.trajectory.sub_positions(p.blur_samples)[:6].reshape(-1, 2)
    return p, sub


def _array_operator(p, beam, xp):
    """The plan's detector model run as array code (what a GPU runs) on ``xp``."""
    return FineFarField(xp.asarray(p.fine_probes[beam]), xp.asarray(p.fine_slices),
                        p.oversampling, p.n_native, p.fine_pixel_m, p.slice_spacing_m,
                        p.wavelength_m, fused=False)


def test_device_path_is_the_cpu_path(quick):
    """The GPU path's code (flat-index gathers, per-key shifts, padded chunks), run here on
    NumPy, gives the CPU kernels' intensities: same slabs, shifts, propagation and pixel
    integration (to rounding: the kernels contract products into FMAs)."""
    p, sub = _device_case(quick)
    assert p.fine_slices.shape[0] == 3
    for beam, off in enumerate(p.beam_offsets_m):
        tl = p.fine_top_left_px(sub + off)
        cpu = simulate._operator(p, beam).intensity(tl)
        dev = _array_operator(p, beam, np).intensity(tl)
        assert cpu.sum() > 0
        np.testing.assert_allclose(dev, cpu, rtol=1e-4, atol=1e-6 * cpu.max())
    # a plan whose slabs are replaced is not computed from a stale operator
    p.fine_slices = np.ones_like(p.fine_slices)
    tl = p.fine_top_left_px(sub)
    np.testing.assert_allclose(_array_operator(p, 0, np).intensity(tl),
                               simulate._operator(p, 0).intensity(tl), rtol=1e-4,
                               atol=1e-6 * p.photons_per_frame)


def test_simulation_backend_is_checked(quick, monkeypatch):
    s, _, _ = quick
    monkeypatch.setenv("TWIN_SIM_BACKEND", "gpu")
    with pytest.raises(TwinInputError, match="TWIN_SIM_BACKEND"):
        simulate.plan(s, n_frames=2)


@pytest.mark.skipif(not __import__("twin.core.xp", fromlist=["x"]).gpu_available(),
                    reason="CuPy and a GPU")
def test_gpu_intensities_match_cpu(quick):
    import cupy

    p, sub = _device_case(quick)
    for beam, off in enumerate(p.beam_offsets_m):
        tl = p.fine_top_left_px(sub + off)
        cpu = _array_operator(p, beam, np).intensity(tl)
        gpu = _array_operator(p, beam, cupy).intensity(tl)
        np.testing.assert_allclose(gpu, cpu, rtol=2e-4, atol=1e-6 * cpu.max())


def test_one_forward_model(quick):
    """At oversampling 1, with one slice and no motion blur, simulation's noiseless
    intensities are bit for bit the reconstruction operator's frames
    (``FarFieldPtychography.intensity``) of the plan's object, probe modes and positions: one
    forward model, whose geometry (windows, sub-pixel shifts, centring) the two share."""
    s, _, _ = quick
    one = s.with_values({"simulation.oversampling": 1, "simulation.multislice": "off",
                         "scan.blur_samples": 1, "beam.coherent_fraction": 0.8})
    p = simulate.plan(one, n_frames=40)
    assert p.oversampling == 1 and p.fine_slices.shape[0] == 1 and p.blur_samples == 1
    assert p.fine_probes.shape[1] > 1                   # several modes
    got = simulate.expected_frames(p, 0, 40)
    tl = p.fine_top_left_px(p.trajectory.positions_m[:40])
    assert np.any(tl % 1 > 0.1)                         # the frames are shifted sub-pixel
    op = ptychography.FarFieldPtychography(p.fine_probes[0], tl, p.fine_slices.shape[1:],
                                           subpixel_quantum=simulate.SUBPIXEL_QUANTUM)
    ref = op.intensity(p.fine_slices[0])
    assert got.sum() > 0
    np.testing.assert_array_equal(got, ref)
    # and the shared model is the contract's: Σ_m |centred DFT(P_m shifted · O)|², here in
    # double precision with NumPy's FFTs, the shifts rounded to the quantum
    o = np.floor(tl).astype(int)
    f = np.round((tl - o) * 32) / 32
    n = p.n_native
    k = np.fft.fftfreq(n)
    ramp = np.exp(-2j * np.pi * (f[:, 0, None, None] * k[None, :, None]
                                 + f[:, 1, None, None] * k[None, None, :]))
    pr = p.fine_probes[0].astype(np.complex128)
    shifted = np.fft.ifft2(np.fft.fft2(pr)[None] * ramp[:, None])
    win = np.stack([p.fine_slices[0][r:r + n, c:c + n] for r, c in o])
    far = np.fft.fftshift(np.fft.fft2(shifted * win[:, None], norm="ortho"), axes=(-2, -1))
    lam = (np.abs(far) ** 2).sum(axis=1)
    np.testing.assert_allclose(got, lam, rtol=1e-4, atol=1e-6 * lam.max())


def test_frames_do_not_depend_on_the_core_count(quick):
    """The same frames, bit for bit, with one FFT worker and one kernel thread (a child
    process) as with every core here: each frame is computed on its own, in a fixed order."""
    import hashlib
    import os
    import subprocess
    import sys

    s, _, _ = quick
    thick = s.with_values({"simulation.multislice": "on", "simulation.slices": 2})
    code = ("import hashlib, sys; from twin import scenario; from twin.workflows import "
            "simulate; s = scenario.Scenario.model_validate_json(sys.stdin.read()); "
            "p = simulate.plan(s, n_frames=30); "
            "print(hashlib.sha1(simulate.expected_frames(p, 0, 30).tobytes()).hexdigest())")
    def run(**threads):
        # a fresh process each (as `twin simulate` is): nothing an earlier test left behind
        env = dict(os.environ, TWIN_SIM_BACKEND="numpy", **threads)
        for k in ("TWIN_FFT_WORKERS", "NUMBA_NUM_THREADS"):
            if k not in threads:
                env.pop(k, None)
        return subprocess.run([sys.executable, "-c", code], input=thick.model_dump_json(),
                              env=env, capture_output=True, text=True,
                              check=True).stdout.strip()

    one = run(TWIN_FFT_WORKERS="1", NUMBA_NUM_THREADS="1")
    every = run()
    assert len(one) == 40 and one == every


@pytest.mark.parametrize("n_beams", [1, 2])
def test_plan_to_data_is_what_the_file_reads(quick, tmp_path, n_beams):
    """A plan's in-memory data (``Plan.to_data``, what the calibration and the ptycho-tomography
    chain reconstruct) equal what ``read_cxi`` gives of the file ``simulate`` writes."""
    s, _, _ = quick
    s = s.with_values({"scan.n_beams": n_beams})
    out = tmp_path / "f.cxi"
    simulate.simulate(s, out, n_frames=12)
    p = simulate.plan(s, n_frames=12)
    assert p.geometry.n_beams == n_beams and p.geometry.object_pixel_m == p.dx_m
    mem = p.to_data(np.concatenate([c for _, c in simulate.frames(p)]))
    disk = read_cxi(out)
    assert mem.frames.dtype == np.float32
    np.testing.assert_array_equal(mem.frames, disk.frames)
    for name in ("translations_m", "illumination", "beam_offsets_m", "beam_illumination"):
        np.testing.assert_array_equal(getattr(mem, name), getattr(disk, name), err_msg=name)
    for name in ("distance_m", "pixel_size_m", "energy_kev", "exposure_s", "frame_rate_hz",
                 "upsampling"):
        assert getattr(mem, name) == pytest.approx(getattr(disk, name), rel=1e-12), name
    np.testing.assert_array_equal(mem.truth.object, disk.truth.object)
    np.testing.assert_array_equal(mem.truth.translations_m, disk.truth.translations_m)
    assert mem.truth.pixel_size_m == pytest.approx(disk.truth.pixel_size_m, rel=1e-12)
    # the file holds no mask where every pixel is valid: the plan's is then all ones
    assert disk.mask is None and mem.mask.all() or np.array_equal(mem.mask, disk.mask)
    # a part of the frames: the same first rows
    part = p.to_data(mem.frames[:5])
    np.testing.assert_array_equal(part.translations_m, disk.translations_m[:5])
    assert len(part.truth.translations_m) == 5
