"""Reconstruction controls (issue 24 item 3): starting probe/object, resume, checkpoints, the
CXI's mask, a background, the live preview, and their bad inputs (exit 2)."""

import dataclasses

import h5py
import numpy as np
import pytest

from twin.analysis import truth as validate
from twin import io
from twin.recon import controls
import twin.recon as recon
from twin.recon import engines

FAST = dict(algorithm="rpie", modes=1, position_correction="none", batch_size=32)


def run(data, iterations, start=None, **kw):
    return recon.reconstruct(data, recon.Options(iterations=iterations, **{**FAST, **kw}),
                             start=start)


def pcc(r, d):
    return validate.compare(r.object, d.ground_truth, r.pixel_size_m, d.translations_m,
                            r.probe.shape[-1]).pcc_phase


@pytest.fixture(scope="module")
def data(quick_cxi):
    return io.read_cxi(quick_cxi)


@pytest.fixture(scope="module")
def converged(data, tmp_path_factory):
    """12 iterations, written as twin's .h5 (CONTRACTS §4) and as its CXI product."""
    r = run(data, 12)
    d = tmp_path_factory.mktemp("conv")
    io.write_reconstruction(d / "r.h5", r.object, r.probe, r.positions_m, r.cost,
                            r.pixel_size_m)
    io.write_cxi_product(d / "r.cxi", r.object, r.probe, r.positions_m, r.pixel_size_m,
                         energy_kev=data.energy_kev, cost=r.cost)
    return r, d / "r.h5", d / "r.cxi"


def cli(*args):
    from typer.testing import CliRunner

    from twin.cli import app

    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.mark.parametrize("suffix", ["h5", "cxi"])
def test_start_from_a_converged_file_lowers_the_first_cost(data, converged, suffix):
    r, h5, cxi = converged
    f = h5 if suffix == "h5" else cxi
    start = controls.load_start(data, None, probe=f, obj=f)
    assert start.probe.shape == r.probe.shape and start.object.shape == r.object.shape
    fresh = run(data, 1)
    warm = run(data, 1, start=start)
    # the default start's first iteration is ≈ 4× the converged one's cost
    assert warm.cost[0] < 0.5 * fresh.cost[0]
    assert warm.cost[0] < 1.5 * r.cost[-1]


def test_start_from_a_ptychodus_written_product(data, converged, tmp_path):
    cxi_file = pytest.importorskip("ptychodus.plugins.cxi_file")
    r = converged[0]
    rw = cxi_file.CXIProductFileIO()
    rw.write(tmp_path / "p.cxi", rw.read(converged[2]))       # written by Ptychodus itself
    with h5py.File(tmp_path / "p.cxi") as f:
        assert f["/entry_1/image_1/data"].ndim == 4 and f["/entry_1/image_2/data"].ndim == 3
    start = controls.load_start(data, None, probe=tmp_path / "p.cxi", obj=tmp_path / "p.cxi")
    np.testing.assert_allclose(start.object, r.object, atol=1e-6)
    assert run(data, 1, start=start).cost[0] < 0.5 * run(data, 1).cost[0]


def test_start_probe_resampled_and_modes(data, converged, tmp_path):
    r = converged[0]
    # the probe at half the pixel size (twice the samples): resampled back to the data's grid
    from scipy import ndimage

    fine = (ndimage.zoom(r.probe[0].real, 2, order=1)
            + 1j * ndimage.zoom(r.probe[0].imag, 2, order=1))[None]
    p = tmp_path / "fine.h5"
    io.write_reconstruction(p, r.object, fine, r.positions_m, r.cost, r.pixel_size_m / 2)
    start = controls.load_start(data, None, probe=p)
    ref = r.probe[0]
    c = abs(np.vdot(ref, start.probe[0])) / (np.linalg.norm(ref) * np.linalg.norm(start.probe))
    assert start.probe.shape == r.probe.shape and c > 0.98
    two = run(data, 1, start=start, modes=3)          # fewer modes in the file: extra ones added
    assert two.probe.shape[0] == 3
    r3 = run(data, 1, modes=3)
    io.write_reconstruction(tmp_path / "m.h5", r3.object, r3.probe, r3.positions_m, r3.cost,
                            r3.pixel_size_m)
    three = controls.load_start(data, None, probe=tmp_path / "m.h5")
    one = run(data, 1, start=three, modes=2)          # more: the first two kept
    assert one.probe.shape[0] == 2


def test_resume_continues_the_cost_curve(data, tmp_path):
    straight = run(data, 10)
    first = run(data, 6)
    io.write_reconstruction(tmp_path / "six.h5", first.object, first.probe, first.positions_m,
                            first.cost, first.pixel_size_m)
    start = controls.load_start(data, None, resume=tmp_path / "six.h5")
    rest = run(data, 4, start=start)
    assert len(rest.cost) == 10 and rest.cost[:6] == pytest.approx(first.cost)
    # continues where the first run stopped (a fresh start's first cost is ≈ 4× higher)
    assert abs(rest.cost[6] - first.cost[5]) < 0.1 * first.cost[5]
    # the batch order continues too: the same iterations as a straight run of 10
    assert rest.cost[-4:] == pytest.approx(straight.cost[-4:], rel=1e-4)
    diff = np.linalg.norm(rest.object - straight.object) / np.linalg.norm(straight.object)
    assert diff < 1e-4


def test_checkpoint_left_by_a_run_that_fails(quick_cxi, tmp_path, monkeypatch):
    calls = []
    orth = engines.orthogonalize_modes

    def failing(p, xp):                                   # once per iteration: fail in the 5th
        calls.append(1)
        if len(calls) == 5:
            raise RuntimeError("killed")
        return orth(p, xp)

    monkeypatch.setattr(engines, "orthogonalize_modes", failing)
    out = tmp_path / "ck.h5"
    r = cli("reconstruct", quick_cxi, "-o", out, "--algorithm", "rpie", "--modes", 1,
            "--position-correction", "none", "--iterations", 8, "--checkpoint-every", 2)
    assert r.exit_code == 1
    with h5py.File(out) as f:                             # checkpoints after iterations 2 and 4
        assert len(f["cost"]) == 4 and f["object"].attrs["pixel_size_m"] > 0
    assert [p.name for p in tmp_path.iterdir()] == ["ck.h5"]
    with h5py.File(out) as f:
        before = f["cost"][()]
    monkeypatch.setattr(engines, "orthogonalize_modes", orth)
    r = cli("reconstruct", quick_cxi, "-o", out, "--algorithm", "rpie", "--modes", 1,
            "--position-correction", "none", "--iterations", 2, "--resume", out)
    assert r.exit_code == 0, r.output
    with h5py.File(out) as f:                             # the checkpoint's 4, then 2 more
        cost = f["cost"][()]
    assert len(cost) == 6 and np.array_equal(cost[:4], before)
    assert abs(cost[4] - cost[3]) < 0.1 * cost[3]


def test_preview_png_and_cxi_checkpoint(quick_cxi, tmp_path):
    out, png = tmp_path / "r.cxi", tmp_path / "p.png"
    r = cli("reconstruct", quick_cxi, "-o", out, "--algorithm", "rpie", "--modes", 1,
            "--position-correction", "none", "--iterations", 3, "--checkpoint-every", 1,
            "--preview", png, "--preview-every", 1, "--frames", 200)
    assert r.exit_code == 0, r.output
    import matplotlib.image

    img = matplotlib.image.imread(png)
    assert img.ndim == 3 and img.shape[1] > 2 * img.shape[0]        # three panels side by side
    with h5py.File(out) as f:
        assert len(f["/entry_1/ptychodus/loss_values"]) == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.png", "r.cxi"]


def _corrupt(data, mask_fraction=0.05, value=1e6):
    rng = np.random.default_rng(3)
    nd = data.frames.shape[-1]
    bad = rng.random((nd, nd)) < mask_fraction
    frames = data.frames.copy()
    frames[:, bad] = value
    return frames, (~bad).astype(np.uint8)


def test_masked_pixels_do_not_enter(data):
    frames, mask = _corrupt(data)
    clean = run(dataclasses.replace(data, mask=mask), 8)
    masked = run(dataclasses.replace(data, frames=frames, mask=mask), 8)
    unmasked = run(dataclasses.replace(data, frames=frames, mask=None), 8)
    d = np.linalg.norm(masked.object - clean.object) / np.linalg.norm(clean.object)
    assert d < 1e-4
    assert masked.cost == pytest.approx(clean.cost, rel=1e-4)
    assert pcc(masked, data) > 0.85 and pcc(unmasked, data) < pcc(masked, data) - 0.2


def test_mask_read_from_the_cxi(quick_cxi, tmp_path, data):
    import shutil

    f = tmp_path / "m.cxi"
    shutil.copy(quick_cxi, f)
    frames, mask = _corrupt(data)
    with h5py.File(f, "r+") as h:
        h["/entry_1/data_1/data"][...] = frames
        det = "/entry_1/instrument_1/detector_1/"
        if det + "mask" in h:
            del h[det + "mask"]
        h[det + "mask"] = mask
    d = io.read_cxi(f)
    assert pcc(run(d, 8), data) > 0.85


def test_background_in_the_model(data):
    b = 0.5 * float(np.mean(data.frames))                # counts per pixel and frame
    with_bg = dataclasses.replace(data, frames=data.frames + np.float32(b))
    clean = pcc(run(data, 10), data)
    modelled = pcc(run(dataclasses.replace(with_bg, background=b), 10), data)
    ignored = pcc(run(with_bg, 10), data)
    assert modelled > clean - 0.02
    assert ignored < modelled - 0.05


@pytest.mark.parametrize("case", ["missing_file", "missing_dataset", "wrong_shape",
                                  "bad_background", "resume_positions"])
def test_bad_inputs_exit_2(quick_cxi, tmp_path, case, converged):
    args = ["reconstruct", quick_cxi, "-o", tmp_path / "o.h5", "--algorithm", "rpie",
            "--modes", 1, "--position-correction", "none", "--iterations", 1]
    if case == "missing_file":
        args += ["--probe", tmp_path / "nope.h5"]
    elif case == "missing_dataset":
        with h5py.File(tmp_path / "e.h5", "w") as f:
            f["other"] = 1
        args += ["--object", tmp_path / "e.h5"]
    elif case == "wrong_shape":
        r = converged[0]
        flat = np.ones((1, 256, 256), np.complex64)       # 64 × 64 keeps 6 % of its power
        io.write_reconstruction(tmp_path / "w.h5", r.object, flat, r.positions_m, r.cost,
                                r.pixel_size_m)
        args += ["--probe", tmp_path / "w.h5"]
    elif case == "bad_background":
        np.save(tmp_path / "b.npy", np.ones((3, 3)))
        args += ["--background", tmp_path / "b.npy"]
    else:
        args += ["--resume", converged[1], "--frames", 100]
    r = cli(*args)
    assert r.exit_code == 2, r.output
    assert not (tmp_path / "o.h5").exists()
