"""Files other software reads unchanged: plain h5py (no plugins), Ptychodus's own CXI readers,
the Data Exchange layout of dxchange/TomoPy."""

import subprocess
import sys

import h5py
import numpy as np
import pytest

from twin.core.errors import TwinInputError
from twin.io.cxi import CXIWriter, read_cxi, write_cxi_product
from twin.io.dataexchange import read_dxchange, write_dxchange
from twin.io.products import read_product


def _cxi(path, compression="gzip", n=6, side=16):
    rng = np.random.default_rng(0)
    frames = rng.poisson(50, (n, side, side)).astype(np.uint16)
    with CXIWriter(path, n, (side, side), np.uint16, distance_m=2.0, pixel_size_m=75e-6,
                   energy_kev=6.2, compression=compression, exposure_s=3e-4,
                   frame_rate_hz=3000.0, photons_per_frame=1.5e6, title="t") as w:
        w.write_frames(0, frames)
        w.write("entry_1/data_1/translation", np.zeros((n, 3)))
    return frames


def test_default_cxi_needs_no_plugin(tmp_path):
    p = tmp_path / "a.cxi"
    frames = _cxi(p)
    # a fresh interpreter with h5py only and an empty plugin path: no hdf5plugin anywhere
    code = ("import sys, h5py, numpy as np; f = h5py.File(sys.argv[1], 'r'); "
            "d = f['entry_1/data_1/data']; print(d.compression, d.shuffle, int(d[()].sum()), "
            "f['entry_1/instrument_1/detector_1/count_time'][()]); "
            "assert 'hdf5plugin' not in sys.modules")
    env = {"HDF5_PLUGIN_PATH": str(tmp_path), "PATH": "/usr/bin:/bin"}
    r = subprocess.run([sys.executable, "-c", code, str(p)], capture_output=True, text=True,
                       env=env, timeout=60)
    assert r.returncode == 0, r.stderr
    comp, shuffle, total, count_time = r.stdout.split()
    assert comp == "gzip" and shuffle == "True" and int(total) == int(frames.sum())
    assert float(count_time) == pytest.approx(3e-4)
    with h5py.File(p) as f:
        assert f["entry_1/definition"][()] == b"NXcxi_ptycho"
        assert f["entry_1/instrument_1/detector_1/data"].shape == frames.shape
        assert f["entry_1/instrument_1/detector_1/count_time"].attrs["units"] == "s"
    assert read_cxi(p).exposure_s == pytest.approx(3e-4)


def test_bitshuffle_stays_available(tmp_path):
    p = tmp_path / "b.cxi"
    frames = _cxi(p, compression="bitshuffle")
    assert np.array_equal(read_cxi(p).frames, frames)
    with pytest.raises(TwinInputError, match="--compression"):
        _cxi(tmp_path / "c.cxi", compression="zstd")


def test_ptychodus_reads_simulated_diffraction_data(tmp_path):
    cxi_file = pytest.importorskip("ptychodus.plugins.cxi_file")
    p = tmp_path / "d.cxi"
    frames = _cxi(p)
    ds = cxi_file.CXIDiffractionFileReader().read(p)
    md = ds.get_metadata()
    assert md.exposure_time_s == pytest.approx(3e-4)
    assert md.detector_distance_m == pytest.approx(2.0)
    assert md.detector_pixel_geometry.width_m == pytest.approx(75e-6)
    assert md.photon_energy_eV == pytest.approx(6200.0, rel=1e-9)
    assert md.probe_photon_count == 1_500_000
    bad = ds.get_bad_pixels()                     # no mask written: every pixel valid
    assert bad is None or not np.any(bad)
    assert np.array_equal(np.concatenate([a.get_patterns() for a in ds]), frames)


def test_ptychodus_opens_a_twin_reconstruction(tmp_path):
    cxi_file = pytest.importorskip("ptychodus.plugins.cxi_file")
    rng = np.random.default_rng(1)
    obj = (rng.normal(size=(40, 50)) + 1j * rng.normal(size=(40, 50))).astype(np.complex64)
    probe = (rng.normal(size=(2, 16, 16)) + 1j).astype(np.complex64)
    pos = rng.uniform(-1e-7, 1e-7, (9, 2))
    dx = 1e-8
    p = tmp_path / "recon.cxi"
    write_cxi_product(p, obj, probe, pos, dx, energy_kev=8.0, distance_m=3.0,
                      detector_pixel_m=75e-6, cost=[3.0, 2.0, 1.0], exposure_s=1e-3)
    product = cxi_file.CXIProductFileIO().read(p)
    assert np.array_equal(product.object_.get_array()[0], obj)
    assert np.array_equal(product.probes.get_array()[0], probe)
    geom = product.object_.get_geometry()
    assert geom.pixel_width_m == pytest.approx(dx) and geom.pixel_height_m == pytest.approx(dx)
    np.testing.assert_allclose(product.probe_positions.get_coordinates_x_m(), pos[:, 0])
    np.testing.assert_allclose(product.probe_positions.get_coordinates_y_m(), pos[:, 1])
    # position 0 lands on twin's origin pixel (H//2, W//2) in Ptychodus's own mapping
    from ptychodus.api.probe_positions import ProbePosition

    at = geom.map_coordinates_probe_to_object(ProbePosition(0, 0.0, 0.0))
    assert (at.y_px, at.x_px) == pytest.approx((20, 25))
    assert [loss.value for loss in product.losses] == [3.0, 2.0, 1.0]
    assert product.metadata.detector_distance_m == pytest.approx(3.0)
    # and twin reads it back at the same origin
    back = read_product(p)
    assert back.source == "cxi" and back.origin_px == pytest.approx((20, 25))


def test_data_exchange_layout(tmp_path):
    p = tmp_path / "p.h5"
    write_dxchange(p, np.ones((4, 3, 8)), np.linspace(0, 180, 4), 1e-7)
    with h5py.File(p) as f:
        assert f["implements"][()].decode().startswith("exchange")
        assert f["exchange/theta"].attrs["units"] == "degrees"
        white, dark = f["exchange/data_white"][()], f["exchange/data_dark"][()]
        data = f["exchange/data"][()]
    # a TomoPy-style flat/dark normalisation leaves the line integrals unchanged
    np.testing.assert_array_equal((data - dark) / (white - dark), data)
    assert read_dxchange(p).voxel_size_m == 1e-7
