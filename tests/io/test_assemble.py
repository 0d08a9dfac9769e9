"""twin assemble: a `pandablocks hdf` capture of `twin panda` plus frames in the DECTRIS NeXus
layout become a CXI file that twin reconstruct and Ptychodus read; bad input exits 2."""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
from typer.testing import CliRunner

from twin.cli import app
from twin.io.cxi import read_cxi
from twin.io.nexus import cxi_to_nexus, read_nexus, write_nexus

ROOT = Path(__file__).resolve().parents[2]
HOST = "127.0.0.45"


def _cli(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def _small_scenario(path: Path) -> Path:
    """quickstart on a 3 × 3 µm² field: 100 frames of 64 × 64."""
    text = (ROOT / "scenarios" / "quickstart.toml").read_text()
    for a, b in (("fov_x_um = 6.0", "fov_x_um = 3.0"), ("fov_y_um = 6.0", "fov_y_um = 3.0"),
                 ("width_um = 6.0", "width_um = 4.0"), ("height_um = 6.0", "height_um = 4.0")):
        assert a in text
        text = text.replace(a, b)
    path.write_text(text)
    return path


def _capture(scenario: Path, out: Path) -> Path:
    """Run `twin panda` and take one acquisition with `pandablocks hdf`."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    panda = subprocess.Popen([sys.executable, "-m", "twin", "panda", str(scenario), "--host",
                              HOST, "--speed", "20"], env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 300
        while True:
            try:
                socket.create_connection((HOST, 8888), timeout=1).close()
                break
            except OSError:
                assert panda.poll() is None, panda.stderr.read().decode()
                assert time.monotonic() < deadline, "twin panda did not start"
                time.sleep(0.2)
        r = subprocess.run([sys.executable, "-m", "pandablocks", "hdf", HOST,
                            str(out.parent / "capture_%d.h5"), "--arm"],
                           capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr
    finally:
        panda.terminate()
        panda.wait(10)
    return out.parent / "capture_1.h5"


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    from twin import scenario
    from twin.workflows import simulate

    d = tmp_path_factory.mktemp("assemble")
    scn = _small_scenario(d / "small.toml")
    cxi = d / "small.cxi"
    simulate.simulate(scenario.load(scn), cxi)
    capture = _capture(scn, d / "capture.h5")
    master = d / "scan_master.h5"
    cxi_to_nexus(cxi, master, frames_per_file=40)        # three data files, the last short
    out = d / "assembled.cxi"
    r = _cli("assemble", "--panda", capture, "--frames", master, "-o", out)
    assert r.exit_code == 0, r.output
    return {"dir": d, "scenario": scenario.load(scn), "cxi": cxi, "capture": capture,
            "master": master, "out": out}


def test_assembled_file_is_the_simulated_acquisition(chain):
    with h5py.File(chain["cxi"]) as a, h5py.File(chain["out"]) as b:
        raw_a, raw_b = a["entry_1/data_1/data"][()], b["entry_1/data_1/data"][()]
        centre = b["entry_1/data_1/translation"].attrs["scan_centre_m"]
        assert b["cxi_version"][()] == 150
    assert raw_b.dtype == raw_a.dtype and np.array_equal(raw_a, raw_b)      # bit for bit
    sim, got = read_cxi(chain["cxi"]), read_cxi(chain["out"])
    assert got.truth.object is None and got.illumination is None
    # the field's centre, as the captured rows' midrange, from the simulated positions
    tr = sim.translations_m[:, :2]
    np.testing.assert_allclose(centre, (tr.min(0) + tr.max(0)) / 2, rtol=0, atol=1e-9)
    res_m = chain["scenario"].scan.encoder_resolution_nm * 1e-9 or 1e-10
    err = np.abs(got.translations_m[:, :2] + centre - tr)
    assert err.max() <= res_m / 2 + 1e-15
    assert np.all(got.translations_m[:, 2] == 0)
    assert got.distance_m == sim.distance_m and got.pixel_size_m == sim.pixel_size_m
    assert got.energy_kev == pytest.approx(sim.energy_kev, rel=1e-12)
    assert got.exposure_s == pytest.approx(sim.exposure_s, rel=1e-12)
    assert got.mask is None


def test_reconstruction_of_assembled_data_matches_the_original(chain):
    from twin.analysis.score import score_files

    pcc = {}
    for name in ("cxi", "out"):
        rec = chain["dir"] / f"rec_{name}.h5"
        r = _cli("reconstruct", chain[name], "-o", rec, "--algorithm", "rpie", "--modes", "1",
                 "--position-correction", "none", "--iterations", "30")
        assert r.exit_code == 0, r.output
        pcc[name] = score_files(rec, chain["cxi"]).pcc_phase
    # the assembled file has no starting probe (twin models one from the frames): close to
    # the simulated file's reconstruction from its zone-plate model (measured 0.879 vs 0.903)
    assert pcc["out"] > 0.8 and pcc["out"] > pcc["cxi"] - 0.05, pcc


def test_ptychodus_reads_the_nexus_frames_and_the_assembled_file(chain):
    velo = pytest.importorskip(
        "ptychodus.plugins.aps33id_velociprobe.aps33id_velociprobe_diffraction_file")
    cxi_file = pytest.importorskip("ptychodus.plugins.cxi_file")
    raw = read_cxi(chain["cxi"]).frames
    ds = velo.VelociprobeDiffractionFileReader().read(chain["master"])
    md = ds.get_metadata()
    assert md.num_patterns_per_array == [40, 40, 20]
    assert md.detector_distance_m == pytest.approx(2.0)
    assert md.photon_energy_eV == pytest.approx(8000.0)
    assert (md.beam_center.x_px, md.beam_center.y_px) == (32, 32)
    assert np.array_equal(np.concatenate([a.get_patterns() for a in ds]), raw)
    ds = cxi_file.CXIDiffractionFileReader().read(chain["out"])
    md = ds.get_metadata()
    assert md.detector_pixel_geometry.width_m == pytest.approx(75e-6)
    assert md.photon_energy_eV == pytest.approx(8000.0)
    assert np.array_equal(np.concatenate([a.get_patterns() for a in ds]), raw)


# ----------------------------------------------------------------------------- synthetic


def _write_capture(path, columns: dict):
    """A file laid out as `pandablocks hdf` writes it: one 1D dataset per field."""
    with h5py.File(path, "w") as f:
        for name, v in columns.items():
            f.create_dataset(name, data=np.asarray(v))
    return path


@pytest.fixture
def detector(tmp_path):
    """12 random 64 × 64 frames inside a 76 × 90 detector, beam at column 40.4, row 35; a
    gap row outside the frames and a hot pixel inside, both in the pixel mask."""
    rng = np.random.default_rng(3)
    frames = rng.poisson(30, (12, 64, 64)).astype(np.uint16)
    full = np.full((12, 76, 90), 7, np.uint16)
    full[:, 3:67, 8:72] = frames
    mask = np.zeros((76, 90), np.uint32)
    mask[70] = 1                                   # gap
    mask[3 + 10, 8 + 20] = 8                       # hot pixel inside the frames
    full[:, 70] = 65535
    full[:, 13, 28] = 65535
    master = tmp_path / "det_master.h5"
    write_nexus(master, full, pixel_size_m=75e-6, distance_m=3.5, energy_kev=6.2,
                beam_center_px=(40.4, 35.0), count_time_s=1e-3, frame_time_s=2e-3,
                pixel_mask=mask, frames_per_file=5)
    gx, gy = np.meshgrid(np.arange(4) * 0.5, np.arange(3) * 0.4)      # mm
    jitter = rng.uniform(-0.05, 0.05, (2, 12))        # mean ≠ midrange
    x = 12.0 + gx.ravel() + jitter[0]
    y = -3.0 + gy.ravel() + jitter[1]
    cap = _write_capture(tmp_path / "cap.h5", {
        "PCAP.TS_TRIG.Value": np.arange(12) * 2e-3, "INENC1.VAL.Mean": x,
        "INENC1.VAL.Value": x + 1.0, "INENC2.VAL.Value": y})
    return {"frames": frames, "master": master, "capture": cap, "x_mm": x, "y_mm": y,
            "dir": tmp_path}


def test_crop_mask_units_centre_and_sign(detector):
    d = detector
    out = d["dir"] / "a.cxi"
    r = _cli("assemble", "--panda", d["capture"], "--frames", d["master"], "-o", out,
             "--position-unit", "mm", "--y-field=-INENC2.VAL")
    assert r.exit_code == 0, r.output
    got = read_cxi(out)
    expect = d["frames"].astype(np.float32)
    expect[:, 10, 20] = 0
    # default crop: the largest even 5-smooth square around the beam (room 35 → 70 → 64)
    assert np.array_equal(got.frames, expect)
    assert got.mask.shape == (64, 64) and got.mask.sum() == 64 * 64 - 1 and got.mask[10, 20] == 0
    x = d["x_mm"] * 1e-3                           # the Mean, not the Value
    y = -d["y_mm"] * 1e-3
    np.testing.assert_allclose(got.translations_m[:, 0], x - (x.min() + x.max()) / 2,
                               rtol=0, atol=1e-15)
    np.testing.assert_allclose(got.translations_m[:, 1], y - (y.min() + y.max()) / 2,
                               rtol=0, atol=1e-15)
    assert got.distance_m == 3.5 and got.energy_kev == pytest.approx(6.2, rel=1e-12)
    assert got.exposure_s == 1e-3
    with h5py.File(out) as f:
        assert f["entry_1/instrument_1/detector_1/frame_time"][()] == pytest.approx(2e-3)
    # an explicit crop keeps the centre pixel; no centring keeps the positions as captured
    r = _cli("assemble", "--panda", d["capture"], "--frames", d["master"], "-o", out,
             "--position-unit", "1e-3", "--crop", "32", "--no-centre")
    assert r.exit_code == 0, r.output
    got = read_cxi(out)
    assert np.array_equal(got.frames, expect[:, 16:48, 16:48])
    np.testing.assert_allclose(got.translations_m[:, 0], x, rtol=1e-15)


def _expect_2(*args, needle):
    r = _cli("assemble", *args)
    assert r.exit_code == 2, r.output
    assert needle in r.stderr and "Traceback" not in r.stderr, r.stderr


def test_bad_input_exits_2_naming_it(detector, tmp_path):
    d = detector
    out = tmp_path / "bad.cxi"
    base = ["--panda", d["capture"], "--frames", d["master"], "-o", out, "--position-unit",
            "mm"]
    short = _write_capture(tmp_path / "short.h5", {"INENC1.VAL.Value": np.zeros(10),
                                                   "INENC2.VAL.Value": np.zeros(10)})
    _expect_2("--panda", short, "--frames", d["master"], "-o", out, needle="10 rows")
    r = _cli("assemble", "--panda", short, "--frames", d["master"], "-o", out)
    assert r.exit_code == 2 and "12 frames" in r.stderr
    r = _cli("assemble", "--panda", short, "--frames", d["master"], "-o", out, "--truncate")
    assert r.exit_code == 0 and len(read_cxi(out).frames) == 10
    out.unlink()
    _expect_2(*base, "--x-field", "FOO.BAR", needle="INENC1.VAL.Mean")
    _expect_2(*base[:-2], "--position-unit", "furlong", needle="--position-unit")
    _expect_2(*base, "--crop", "80", needle="--crop")
    _expect_2(*base, "--energy-kev", "-1", needle="--energy-kev")
    # a master without a pixel size; a data file gone; a data file cut short
    with h5py.File(d["master"], "a") as f:
        px = f["entry/instrument/detector/x_pixel_size"][()]
        del f["entry/instrument/detector/x_pixel_size"]
    _expect_2(*base, needle="x_pixel_size")
    with h5py.File(d["master"], "a") as f:
        f["entry/instrument/detector/x_pixel_size"] = px
    data3 = d["dir"] / "det_data_000003.h5"
    data3.rename(data3.with_suffix(".moved"))
    _expect_2(*base, needle="det_data_000003.h5")
    blob = data3.with_suffix(".moved").read_bytes()
    data3.write_bytes(blob[: len(blob) // 2])
    _expect_2(*base, needle="data_000003")
    cut = tmp_path / "cut.h5"
    cut.write_bytes(d["capture"].read_bytes()[:900])
    _expect_2("--panda", cut, "--frames", d["master"], "-o", out, needle="cut.h5")
    assert not out.exists() and not list(tmp_path.glob(".bad.cxi*"))


def test_nexus_reader_accepts_other_units_and_frames_in_the_master(tmp_path):
    frames = np.arange(2 * 4 * 6, dtype=np.uint32).reshape(2, 4, 6)
    master = tmp_path / "one.h5"
    with h5py.File(master, "w") as f:
        f["entry/data/data"] = frames
        det = f.create_group("entry/instrument/detector")
        for name, v, u in (("x_pixel_size", 55.0, "um"), ("y_pixel_size", 0.055, "mm"),
                           ("detector_distance", 1500.0, "mm")):
            det[name] = v
            det[name].attrs["units"] = u
        det["detectorSpecific/photon_energy"] = 12400.0
        det["detectorSpecific/photon_energy"].attrs["units"] = np.bytes_(b"eV")
    r = read_nexus(master)
    assert r.n_frames == 2 and r.frame_shape == (4, 6) and r.beam_center_px == (3.0, 2.0)
    assert r.pixel_size_m == pytest.approx((55e-6, 55e-6)) and r.distance_m == 1.5
    assert r.energy_kev == pytest.approx(12.4)
    assert np.array_equal(np.concatenate([b for _, b in r.iter_blocks()]), frames)
