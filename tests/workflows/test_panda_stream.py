"""`twin panda` on a huge scan (issue 24, defect 2): the rows are made block by block, equal to
the whole simulation plan's capture, in bounded memory, and the server starts in seconds."""

import os
import resource
import select
import signal
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from twin import scenario
from twin.services import panda as ps
from twin.workflows import panda as wp
from twin.workflows import simulate as sim

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("values", [
    {},
    {"scan.n_beams": 3, "scan.drift_nm_per_s": [500.0, -300.0], "scan.stage_vibration_nm": 4.0,
     "scan.stage_vibration_hz": 70.0, "scan.capture_jitter_s": 2e-6,
     "scan.encoder_noise_nm": 1.5, "scan.position_capture_rate_hz": 300.0},
    {"scan.drift_nm_per_s": [800.0, 400.0], "scan.capture_jitter_s": 1e-5,
     "scan.encoder_resolution_nm": 0.5}])
def test_streamed_rows_equal_the_plans_capture(monkeypatch, values):
    # the independent reference: the whole simulation plan, as `twin panda` built it before
    s = scenario.load(ROOT / "scenarios" / "quickstart.toml").with_values(values)
    ref = wp.rows_from_plan(sim.plan(s))
    monkeypatch.setattr(wp, "BLOCK_FRAMES", 50)         # many blocks of a few lines
    cap = wp.streamed_capture(s)
    blocks = list(cap.blocks())
    assert len(blocks) > 3
    np.testing.assert_array_equal(np.concatenate([b[0] for b in blocks]), ref.t_trigger_s)
    np.testing.assert_array_equal(np.concatenate([b[1] for b in blocks]), ref.counts)
    np.testing.assert_array_equal(cap.offset_m, ref.offset_m)
    assert cap.scale_m == ref.scale_m and cap.n_rows == len(ref.t_trigger_s)
    assert cap.duration_s == ref.t_trigger_s[-1]
    if values:
        assert np.any(ref.offset_m != 0)                # the origin is really tested


def test_huge_scan_is_prepared_in_bounded_memory():
    s = scenario.load(ROOT / "scenarios" / "brain_1mm3_dlsr.toml")
    tracemalloc.start()
    try:
        t0 = time.perf_counter()
        cap = wp.streamed_capture(s)
        setup_s = time.perf_counter() - t0
        first = next(iter(cap.blocks()))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert cap.n_rows > 10_000_000                      # 18.3 M rows, 1.5 GB of them at once
    assert cap.n_rows * 48 > 10 * peak                   # the whole (t, x, y, ...) never held
    assert peak < 150e6, f"peak {peak / 1e6:.0f} MB"
    assert len(first[0]) < cap.n_rows / 10
    assert setup_s < 60


def test_twin_panda_says_what_it_serves_soon_and_small(tmp_path):
    # the command as a user runs it, under a 2.5 GiB address-space limit (it used to grow to
    # 6.3 GB and print nothing for 84 s)
    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (5 * 2 ** 29, 5 * 2 ** 29))
        signal.signal(signal.SIGINT, signal.SIG_DFL)

    env = dict(os.environ, PYTHONPATH=str(ROOT), OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, "-m", "twin", "panda", "--host", "127.0.0.47",
                             str(ROOT / "scenarios" / "brain_1mm3_dlsr.toml")],
                            stderr=subprocess.PIPE, env=env, preexec_fn=limit)
    try:
        t0 = time.monotonic()
        text = b""
        while text.count(b"\n") < 2:
            ready, _, _ = select.select([proc.stderr], [], [], 90 - (time.monotonic() - t0))
            assert ready, f"nothing more said in 90 s: {text.decode()}"
            chunk = os.read(proc.stderr.fileno(), 65536)
            assert chunk, f"exited {proc.wait()}: {text.decode()}"
            text += chunk
        elapsed = time.monotonic() - t0
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
    text = text.decode()
    assert "18,334,000 rows" in text
    assert "127.0.0.47:8888" in text and "127.0.0.47:8889" in text
    assert elapsed < 90


def test_server_streams_every_block_in_order():
    import socket

    n, per = 50, 7                                       # 8 blocks, the last one short
    t = np.arange(n) * 1e-3
    counts = np.stack([np.arange(n) * 3 - 70, -np.arange(n)], axis=1).astype(np.int32)

    def blocks():
        for a in range(0, n, per):
            yield t[a:a + per], counts[a:a + per]

    cap = ps.StreamedPcapRows(n, t[-1], 1e-9, np.zeros(2), blocks)
    host = "127.0.0.49"
    with ps.PandaServer(cap, 1000.0, 5e-4, speed=10.0, host=host):
        with socket.create_connection((host, ps.DATA_PORT), timeout=10) as d:
            d.sendall(b"ASCII RAW\n")
            assert d.recv(3) == b"OK\n"
            with socket.create_connection((host, ps.CONTROL_PORT), timeout=5) as c:
                c.sendall(b"*PCAP.ARM=\n")
                assert c.recv(100).strip() == b"OK"
            buf = b""
            while b"END" not in buf:
                buf += d.recv(65536)
    text = buf.decode()
    assert f"END {n} Ok" in text
    rows = [line.split() for line in text.splitlines()
            if line.strip() and line.lstrip("- ").split()[0].lstrip("-").isdigit()
            and not line.startswith("END")]
    got = np.array([[int(v) for v in r[-2:]] for r in rows[-n:]])
    np.testing.assert_array_equal(got, counts)
