"""`twin sweep --simulate`: every grid point simulated and reconstructed, cached; and the size
limits of a sweep (issue 10 §2, issue 14 §3)."""

import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[2]


def _twin(*args, env_cache, timeout=600):
    import os

    env = {**os.environ, "TWIN_CACHE_DIR": str(env_cache)}
    return subprocess.run([sys.executable, "-m", "twin", *args], capture_output=True, text=True,
                          timeout=timeout, env=env)


def _scenario(tmp_path: Path, sweep: str) -> Path:
    text = (ROOT / "scenarios" / "quickstart.toml").read_text()
    text = text.split("[sweep]")[0].replace("iterations = 30", "iterations = 15")
    p = tmp_path / "s.toml"
    p.write_text(text + "[sweep]\n" + sweep)
    return p


def test_simulated_sweep_adds_measured_columns_and_reuses_its_cache(tmp_path):
    scn = _scenario(tmp_path, '"beam.flux_photons_per_s" = [1e6, 1e8]\n')
    out = tmp_path / "sweep.csv"
    cache = tmp_path / "cache"
    r = _twin("sweep", str(scn), "-o", str(out), "--simulate", "--no-plots", env_cache=cache)
    assert r.returncode == 0, r.stderr
    t = pd.read_csv(out)
    for col in ("resolution_simulated_m", "resolution_simulated_std_m", "frc_halves_m",
                "pcc_simulated", "resolution_forecast_m", "total_time_s"):
        assert col in t.columns
    d = t["resolution_simulated_m"].to_numpy()
    assert (d > 0).all() and d[1] < d[0]          # 100× the photons resolve finer
    assert (t["pcc_simulated"] > 0).all()
    # a re-run finds every point in its cache: the same rows
    r2 = _twin("sweep", str(scn), "-o", str(tmp_path / "again.csv"), "--simulate",
               "--no-plots", env_cache=cache)
    assert r2.returncode == 0, r2.stderr
    pd.testing.assert_frame_equal(t, pd.read_csv(tmp_path / "again.csv"))


def test_a_huge_sweep_is_refused_with_its_size(tmp_path):
    values = ", ".join(str(1e7 + i) for i in range(100))
    rates = ", ".join(str(100.0 + i) for i in range(100))
    steps = ", ".join(str(0.3 + i * 1e-3) for i in range(100))
    dist = ", ".join(str(2.0 + i * 1e-2) for i in range(100))
    scn = _scenario(tmp_path, f'"beam.flux_photons_per_s" = [{values}]\n'
                              f'"scan.frame_rate_hz" = [{rates}]\n'
                              f'"scan.fast_step_um" = [{steps}]\n'
                              f'"detector.distance_m" = [{dist}]\n')
    t0 = time.perf_counter()
    r = _twin("sweep", str(scn), "-o", str(tmp_path / "x.csv"), env_cache=tmp_path / "c",
              timeout=120)
    assert r.returncode == 2
    assert "100,000,000 points" in r.stderr and "--yes" in r.stderr
    assert time.perf_counter() - t0 < 60
    assert not (tmp_path / "x.csv").exists()
