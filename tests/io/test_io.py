import h5py
import numpy as np
import pytest

from twin.io.atomic import atomic_path
from twin.io.cxi import read_cxi
from twin.io.dataexchange import read_dxchange, write_dxchange
from twin.core.errors import TwinInputError


def _minimal_cxi(path, n=4, drop=None, nan=False, rows=None):
    with h5py.File(path, "w") as f:
        d = np.ones((n, 8, 8), np.float32)
        if nan:
            d[0, 0, 0] = np.nan
        f["entry_1/data_1/data"] = d
        f["entry_1/data_1/translation"] = np.zeros((rows or n, 3))
        f["entry_1/instrument_1/detector_1/distance"] = 1.0
        f["entry_1/instrument_1/detector_1/x_pixel_size"] = 75e-6
        f["entry_1/instrument_1/source_1/energy"] = 8e3 * 1.602176634e-19
        if drop:
            del f[drop]


def test_reads_any_contract_file(tmp_path):
    p = tmp_path / "a.cxi"
    _minimal_cxi(p)
    d = read_cxi(p)
    assert d.frames.shape == (4, 8, 8) and d.energy_kev == pytest.approx(8.0)
    assert d.illumination is None


@pytest.mark.parametrize("drop", ["entry_1/data_1/translation",
                                  "entry_1/instrument_1/detector_1/distance",
                                  "entry_1/instrument_1/source_1/energy"])
def test_missing_dataset_is_named(tmp_path, drop):
    p = tmp_path / "a.cxi"
    _minimal_cxi(p, drop=drop)
    with pytest.raises(TwinInputError, match=drop.split("/")[-1]):
        read_cxi(p)


def test_length_mismatch_and_nan(tmp_path):
    p = tmp_path / "a.cxi"
    _minimal_cxi(p, rows=3)
    with pytest.raises(TwinInputError, match="translation"):
        read_cxi(p)
    _minimal_cxi(p, nan=True)
    with pytest.raises(TwinInputError, match="finite"):
        read_cxi(p)


def test_truncated_file(tmp_path):
    p = tmp_path / "a.cxi"
    _minimal_cxi(p, n=200)
    raw = p.read_bytes()
    p.write_bytes(raw[: len(raw) // 3])
    with pytest.raises(TwinInputError, match="truncated"):
        read_cxi(p)


def test_dxchange_roundtrip_and_errors(tmp_path):
    p = tmp_path / "p.h5"
    write_dxchange(p, np.zeros((5, 3, 8)), np.linspace(0, 180, 5), 1e-7)
    pr = read_dxchange(p)
    assert pr.data.shape == (5, 3, 8) and pr.voxel_size_m == 1e-7
    write_dxchange(p, np.zeros((5, 3, 8)), np.linspace(0, 180, 4))
    with pytest.raises(TwinInputError, match="theta"):
        read_dxchange(p)


def test_atomic_path_cleans_up(tmp_path):
    target = tmp_path / "x.h5"
    with pytest.raises(ValueError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise ValueError("stop")
    assert list(tmp_path.iterdir()) == []


def test_frame_subset_applies_to_per_frame_extras(quick_cxi):
    d = read_cxi(quick_cxi, frames=50)
    assert len(d.frames) == 50 and len(d.translations_m) == 50
    assert len(d.truth.translations_m) == 50 and len(d.truth.captured) == 50
