"""Fuzzing the data files (issue 14 §3): a truncated file at any byte, missing datasets, NaN/inf
frames and wrong shapes are bad input (TwinInputError → exit 2) for the readers behind
`reconstruct`, `tomo` and `score`, never a crash."""

import shutil

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from twin.core.errors import TwinInputError
from twin.io.cxi import CXIWriter, read_cxi
from twin.io.dataexchange import read_dxchange, write_dxchange
from twin.io.products import write_reconstruction
from twin.io.products import read_product

SETTINGS = settings(max_examples=25, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def small_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("fuzz")
    cxi = d / "d.cxi"
    rng = np.random.default_rng(0)
    with CXIWriter(cxi, 16, (16, 16), np.uint16, distance_m=2.0, pixel_size_m=75e-6,
                   energy_kev=8.0) as w:
        w.write_frames(0, rng.poisson(5, (16, 16, 16)).astype(np.uint16))
        w.write("entry_1/data_1/translation", rng.normal(0, 1e-7, (16, 3)))
    dx = d / "p.h5"
    write_dxchange(dx, rng.random((8, 4, 16)).astype(np.float32), np.linspace(0, 180, 8))
    rec = d / "r.h5"
    write_reconstruction(rec, np.ones((32, 32), np.complex64),
                         np.ones((1, 16, 16), np.complex64), np.zeros((16, 2)), [1.0], 1e-8)
    return {"cxi": cxi, "dx": dx, "rec": rec}


READERS = {"cxi": read_cxi, "dx": read_dxchange, "rec": read_product}


@pytest.mark.parametrize("kind", ["cxi", "dx", "rec"])
@SETTINGS
@given(frac=st.floats(0.0, 0.999))
def test_truncated_at_any_byte_is_bad_input(small_files, tmp_path, kind, frac):
    src = small_files[kind]
    data = src.read_bytes()
    cut = tmp_path / f"cut{src.suffix}"
    cut.write_bytes(data[:int(len(data) * frac)])
    try:
        READERS[kind](cut)
    except TwinInputError:
        pass                                   # the only allowed failure


@pytest.mark.parametrize("dataset", ["entry_1/data_1/data", "entry_1/data_1/translation",
                                     "entry_1/instrument_1/detector_1/distance"])
def test_missing_dataset_names_it(small_files, tmp_path, dataset):
    f = tmp_path / "m.cxi"
    shutil.copy(small_files["cxi"], f)
    with h5py.File(f, "a") as h:
        del h[dataset]
    with pytest.raises(TwinInputError) as e:
        read_cxi(f)
    assert dataset.split("/")[-1] in str(e.value)


@SETTINGS
@given(value=st.sampled_from([np.nan, np.inf, -np.inf]), index=st.integers(0, 16 * 16 * 16 - 1))
def test_non_finite_frames_are_bad_input(small_files, tmp_path, value, index):
    f = tmp_path / "nan.cxi"
    with h5py.File(small_files["cxi"]) as src, h5py.File(f, "w") as dst:
        for k in src:
            src.copy(k, dst)
        frames = src["entry_1/data_1/data"][()].astype(np.float32).ravel()
        frames[index] = value
        del dst["entry_1/data_1/data"]
        dst["entry_1/data_1/data"] = frames.reshape(16, 16, 16)
    with pytest.raises(TwinInputError):
        read_cxi(f)


@SETTINGS
@given(shape=st.lists(st.integers(1, 5), min_size=1, max_size=4))
def test_wrong_shapes_are_bad_input(small_files, tmp_path, shape):
    f = tmp_path / "shape.cxi"
    shutil.copy(small_files["cxi"], f)
    with h5py.File(f, "a") as h:
        del h["entry_1/data_1/data"]
        h["entry_1/data_1/data"] = np.ones(shape, np.uint16)
    try:
        read_cxi(f)
    except TwinInputError:
        return
    # readable only if it is a stack of frames with one translation each
    assert len(shape) == 3 and shape[0] == 16
