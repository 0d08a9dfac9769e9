"""A simulated sweep survives a killed Dask worker with rows identical to an undisturbed run,
and a sweep killed as a whole resumes from the points it had cached (issue 14 §3)."""

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from twin import scenario
from twin.workflows import simres

ROOT = Path(__file__).resolve().parents[2]


def _points():
    s = scenario.load(ROOT / "scenarios" / "quickstart.toml").with_values(
        {"reconstruction.iterations": 8})
    return [s.with_values({"beam.flux_photons_per_s": f}) for f in (1e7, 3e7, 1e8)]


def _run(cache: Path, kill: bool) -> tuple[list[dict], bool]:
    from dask.distributed import Client, LocalCluster

    os.environ["TWIN_CACHE_DIR"] = str(cache)       # the workers inherit it when spawned
    killed = threading.Event()
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None, silence_logs=40) as cluster, \
            Client(cluster) as client:
        def assassin():
            t0 = time.time()
            while time.time() - t0 < 120:
                busy = [a for a, keys in client.processing().items() if keys]
                if busy:
                    time.sleep(1.0)                     # well inside the task
                    for nanny in cluster.workers.values():
                        if nanny.worker_address == busy[0]:
                            os.kill(nanny.process.process.pid, signal.SIGKILL)
                            killed.set()
                            return
                time.sleep(0.05)

        th = threading.Thread(target=assassin, daemon=True)
        if kill:
            th.start()
        rows = simres.measure_many(_points(), scheduler=cluster.scheduler_address, points=64)
        if kill:
            th.join()
    return rows, killed.is_set()


def test_a_killed_worker_leaves_the_rows_unchanged(tmp_path, monkeypatch):
    monkeypatch.setenv("TWIN_CACHE_DIR", str(tmp_path))
    calm, _ = _run(tmp_path / "calm", kill=False)
    hit, killed = _run(tmp_path / "killed", kill=True)
    assert killed, "no worker was killed during the sweep"
    import pandas as pd

    # every column of every row, exactly (NaN where both have NaN)
    pd.testing.assert_frame_equal(pd.DataFrame(hit), pd.DataFrame(calm), check_exact=True)


def test_a_killed_sweep_resumes_from_its_cache(tmp_path):
    text = (ROOT / "scenarios" / "quickstart.toml").read_text().split("[sweep]")[0]
    text = text.replace("iterations = 30", "iterations = 8")
    scn = tmp_path / "s.toml"
    scn.write_text(text + '[sweep]\n"beam.flux_photons_per_s" = [1e7, 2e7, 4e7, 8e7]\n')
    cache = tmp_path / "cache"
    env = {**os.environ, "TWIN_CACHE_DIR": str(cache)}
    cmd = [sys.executable, "-m", "twin", "sweep", str(scn), "-o", str(tmp_path / "a.csv"),
           "--simulate", "--no-plots"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    entries = cache / "simulated"
    t0 = time.time()
    try:
        while time.time() - t0 < 300:                     # until the first points are cached
            done = [p for p in entries.glob("*.json") if not p.name.startswith("cr-")]
            if len(done) >= 2:
                break
            if proc.poll() is not None:
                pytest.fail("the sweep finished before it could be killed")
            time.sleep(0.2)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)                # the whole run: client and workers
        proc.wait()
    assert not (tmp_path / "a.csv").exists()
    before = {p.name: p.stat().st_mtime_ns for p in entries.glob("*.json")}
    assert len(before) >= 2
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    after = {p.name: p.stat().st_mtime_ns for p in entries.glob("*.json")}
    assert all(after[k] == v for k, v in before.items())    # cached points were not redone
    assert (tmp_path / "a.csv").exists()
