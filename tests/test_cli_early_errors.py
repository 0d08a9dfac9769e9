"""Errors that came late or as exit 1 (issue 24, defect 8): refused before any work, exit 2,
naming the option or the file."""

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
QUICK = ROOT / "scenarios" / "quickstart.toml"


def twin(*args):
    env = {**os.environ, "COLUMNS": "200", "PYTHONPATH": str(ROOT)}
    env.pop("TWIN_DEBUG", None)
    return subprocess.run([sys.executable, "-m", "twin", *map(str, args)], capture_output=True,
                          text=True, env=env, timeout=300)


def test_simulate_into_a_directory_is_refused_before_simulating(tmp_path):
    r = twin("simulate", QUICK, "-o", tmp_path)
    assert r.returncode == 2, r.stderr
    assert "-o" in r.stderr and str(tmp_path) in r.stderr and "directory" in r.stderr
    assert "simulate:" not in r.stderr and "Traceback" not in r.stderr   # no progress bar
    assert list(tmp_path.iterdir()) == []


def test_unknown_compression_is_refused_before_simulating(tmp_path):
    r = twin("simulate", QUICK, "-o", tmp_path / "x.cxi", "--compression", "lzma")
    assert r.returncode == 2, r.stderr
    assert "--compression" in r.stderr and "lzma" in r.stderr and "gzip" in r.stderr
    assert "simulate:" not in r.stderr
    assert list(tmp_path.iterdir()) == []


def test_reconstruct_of_a_cxi_corrupted_mid_file_exits_2_naming_it(quick_cxi, tmp_path):
    bad = tmp_path / "corrupt.cxi"
    shutil.copy(quick_cxi, bad)
    with h5py.File(bad, "r") as f:
        ds = f["entry_1/data_1/data"]
        info = ds.id.get_chunk_info(ds.id.get_num_chunks() // 2)
    with open(bad, "r+b") as fh:                    # garbage in the middle of one chunk
        fh.seek(info.byte_offset + info.size // 3)
        fh.write(np.random.default_rng(0).integers(0, 256, 64, np.uint8).tobytes())
    r = twin("reconstruct", bad, "-o", tmp_path / "r.h5", "--iterations", "1")
    assert r.returncode == 2, r.stderr
    assert str(bad) in r.stderr and "/entry_1/data_1/data" in r.stderr
    assert "Traceback" not in r.stderr and not (tmp_path / "r.h5").exists()


def test_run_into_an_existing_file_is_refused(tmp_path):
    target = tmp_path / "taken.txt"
    target.write_text("mine")
    t0 = time.monotonic()
    r = twin("run", QUICK, "-o", target)
    assert r.returncode == 2, r.stderr
    assert "-o" in r.stderr and str(target) in r.stderr and "FileExistsError" not in r.stderr
    assert target.read_text() == "mine"
    assert time.monotonic() - t0 < 120
