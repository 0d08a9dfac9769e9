"""twin score: registration of what phase retrieval cannot fix, metrics against an independent
prediction, foreign file layouts."""

import json

import h5py
import numpy as np
import pytest
from scipy import ndimage

from twin.analysis import metrics, score as sc
from twin.core.errors import TwinInputError
from twin.io import files as tio
from twin.io.products import read_product

DX = 20e-9
N, PROBE = 160, 32


def _truth(seed=0):
    """A smooth random complex object: phase σ ≈ 0.5 rad, no wraps, weak absorption."""
    rng = np.random.default_rng(seed)
    ph = ndimage.gaussian_filter(rng.normal(size=(N, N)), 1.0)
    ph *= 0.5 / ph.std()
    amp = 1 - 0.1 * (ph - ph.min()) / np.ptp(ph)
    return (amp * np.exp(1j * ph)).astype(np.complex128)


def _positions():
    g = (np.arange(7) - 3) * 8 * DX          # 7 × 7 grid, region ≈ 64 px
    x, y = np.meshgrid(g, g)
    return np.stack([x.ravel(), y.ravel()], axis=1)


def _mangled(t, shift=(3.4, -2.7), ramp=(0.03, -0.02), offset=1.1, conj=True, flip=True):
    o = metrics.fourier_shift(t, shift)
    yy, xx = np.mgrid[:N, :N]
    o = o * np.exp(1j * (offset + ramp[0] * yy + ramp[1] * xx))
    if flip:
        o = o[::-1, ::-1]
    return np.conj(o) if conj else o


@pytest.mark.parametrize("conj,flip", [(False, False), (True, False), (True, True)])
def test_registration_undoes_shift_ramp_phase_and_twin_image(conj, flip):
    t = _truth()
    s = sc.score(_mangled(t, conj=conj, flip=flip), t, DX, _positions(), PROBE)
    assert s.pcc_phase > 0.995
    assert s.transform == {(False, False): "identity", (True, False): "conjugate",
                           (True, True): "conjugate+flip"}[(conj, flip)]
    assert s.phase_rms_error_rad < 0.05
    assert s.frc_resolution_m < 1.2 * DX      # correlated (nearly) up to Nyquist


def test_noise_lowers_pcc_as_predicted():
    t = _truth(1)
    sigma = 0.3
    noise = np.random.default_rng(5).normal(0, sigma, t.shape)
    clean = sc.score(_mangled(t, flip=False, conj=False), t, DX, _positions(), PROBE)
    noisy = sc.score(_mangled(t * np.exp(1j * noise), flip=False, conj=False), t, DX,
                     _positions(), PROBE)
    # independent prediction: phase + independent noise of variance σ² over the same region
    h, w = noisy.region_px
    region = np.angle(t[N // 2 - h // 2:N // 2 - h // 2 + h, N // 2 - w // 2:N // 2 - w // 2 + w])
    var = region.var()
    predicted = np.sqrt(var / (var + sigma ** 2))
    assert clean.pcc_phase > 0.995
    assert noisy.pcc_phase == pytest.approx(predicted, abs=0.02)
    assert noisy.frc_resolution_m > clean.frc_resolution_m


def test_resampled_reconstruction_at_its_own_pixel_size(tmp_path):
    t = _truth(2)
    coarse = (ndimage.zoom(t.real, 0.5, order=3) + 1j * ndimage.zoom(t.imag, 0.5, order=3))
    p = tmp_path / "r.npz"
    np.savez(p, object=coarse, pixel_size_m=2 * DX)
    s = sc.score(read_product(p), t, DX, _positions(), PROBE)
    # resampling cannot restore the lost band: the FRC resolution is near 2 px of the coarse grid
    assert s.pcc_phase > 0.9
    assert 1.2 * DX < s.frc_resolution_m < 5 * DX


def _twin_cxi(path, t):
    with h5py.File(path, "w") as f:
        f["entry_1/data_1/data"] = np.ones((49, PROBE, PROBE), np.float32)
        f["entry_1/data_1/translation"] = np.concatenate([_positions(), np.zeros((49, 1))], 1)
        f["entry_1/instrument_1/detector_1/distance"] = 1.0
        f["entry_1/instrument_1/detector_1/x_pixel_size"] = 75e-6
        f["entry_1/instrument_1/source_1/energy"] = 8e3 * 1.602176634e-19
        g = f.create_dataset("entry_1/sample_1/ground_truth", data=t.astype(np.complex64))
        g.attrs["pixel_size_m"] = DX


def test_foreign_layouts_and_cli(tmp_path):
    from typer.testing import CliRunner

    from twin.cli import app

    t = _truth(3)
    truth = tmp_path / "data.cxi"
    _twin_cxi(truth, t)
    m = _mangled(t, conj=False, flip=False).astype(np.complex64)
    pos = _positions()
    # pty-chi (PEAR recon_Niter*.h5): (slices, H, W), positions in (row, col) pixels
    ptychi = tmp_path / "recon_Niter100.h5"
    with h5py.File(ptychi, "w") as f:
        f["object"] = m[None]
        f["probe"] = np.ones((1, 1, PROBE, PROBE), np.complex64)
        f["positions_px"] = pos[:, ::-1] / DX
        f["obj_pixel_size_m"] = DX
    # PtyPy .ptyr
    ptyr = tmp_path / "recon.ptyr"
    with h5py.File(ptyr, "w") as f:
        g = f.create_group("content/obj/S0000")
        g["data"] = m[None]
        g["_psize"] = np.array([DX, DX])
        g["_origin"] = -np.array([N // 2, N // 2]) * DX
    # twin's own §4 and CXI product
    own = tmp_path / "recon.h5"
    tio.write_reconstruction(own, m, np.ones((1, PROBE, PROBE)), pos, [1.0], DX)
    prod = tmp_path / "recon.cxi"
    tio.write_cxi_product(prod, m, np.ones((1, PROBE, PROBE)), pos, DX, energy_kev=8.0)
    npy = tmp_path / "recon.npy"
    np.save(npy, m)
    runner = CliRunner()
    for path, source in ((ptychi, "ptychi"), (ptyr, "ptypy"), (own, "twin"), (prod, "cxi"),
                         (npy, "npy")):
        r = runner.invoke(app, ["score", str(path), "--truth", str(truth), "--json"])
        assert r.exit_code == 0, r.output
        d = json.loads(r.stdout)
        assert d["source"] == source and d["pcc_phase"] > 0.995, (source, d)
        csv_path = tmp_path / (path.stem + ".frc.csv")
        assert csv_path.exists() and (tmp_path / (path.stem + ".frc.png")).exists()
        assert d["frc_csv"] == str(csv_path)
        rows = np.genfromtxt(csv_path, delimiter=",", names=True)
        assert len(rows) > 10 and np.all(np.isfinite(rows["frc"]))
    bad = tmp_path / "bad.h5"
    with h5py.File(bad, "w") as f:
        f["nothing"] = 1
    r = runner.invoke(app, ["score", str(bad), "--truth", str(truth)])
    assert r.exit_code == 2 and "no object found" in r.output
    r = runner.invoke(app, ["score", str(npy), "--truth", str(tmp_path / "missing.cxi")])
    assert r.exit_code == 2


def test_truth_without_ground_truth_is_bad_input(tmp_path):
    p = tmp_path / "a.cxi"
    _twin_cxi(p, _truth())
    with h5py.File(p, "a") as f:
        del f["entry_1/sample_1/ground_truth"]
    np.save(tmp_path / "r.npy", _truth())
    with pytest.raises(TwinInputError, match="ground_truth"):
        sc.score_files(tmp_path / "r.npy", p)
