"""twin panda: the real PandABlocks clients (the `pandablocks` CLI and Python API) against the
emulator; robustness against bad clients."""

import socket
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest

from twin.core.errors import TwinInputError
from twin.services import panda as ps

pandablocks = pytest.importorskip("pandablocks")


def _synthetic(n=50):
    t = np.arange(n) * 1e-3
    counts = np.stack([np.arange(n) * 7 - 100, np.full(n, 42)], axis=1).astype(np.int32)
    return ps.PcapRows(t, counts, 1e-9, np.array([-3e-9, 5e-9]), np.ones(n, bool))


def _ask(host, line, port=ps.CONTROL_PORT):
    with socket.create_connection((host, port), timeout=5) as c:
        c.sendall(line.encode() + b"\n")
        buf = b""
        while not (buf.endswith(b"\n") and (not buf.startswith(b"!") or buf.endswith(b".\n"))):
            chunk = c.recv(4096)
            if not chunk:
                break
            buf += chunk
        return buf.decode()


def test_pandablocks_hdf_captures_the_simulated_scan(quick_cxi, tmp_path):
    from pathlib import Path

    from twin import scenario
    from twin.io.cxi import read_cxi
    from twin.workflows import panda as wp
    from twin.workflows import simulate as sim

    s = scenario.load(Path(__file__).parents[2] / "scenarios" / "quickstart.toml")
    p = sim.plan(s)
    cap = wp.rows_from_plan(p)
    host = "127.0.0.31"
    with ps.PandaServer(cap, s.scan.frame_rate_hz, p.exposure_s, speed=20.0, host=host):
        r = subprocess.run([sys.executable, "-m", "pandablocks", "hdf", host,
                            str(tmp_path / "scan_%d.h5"), "--arm"],
                           capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    data = read_cxi(quick_cxi)
    with h5py.File(tmp_path / "scan_1.h5", "r") as f:
        x = f["INENC1.VAL.Value"][()]
        y = f["INENC2.VAL.Value"][()]
        ts = f["PCAP.TS_TRIGGER.Value"][()]
    tr = data.translations_m
    assert len(x) == len(tr) == p.n_frames
    captured = data.truth.captured
    # frames the box caught: the file's translation exactly; the others within half a count
    np.testing.assert_allclose(x[captured], tr[captured, 0], rtol=0, atol=1e-15)
    np.testing.assert_allclose(y[captured], tr[captured, 1], rtol=0, atol=1e-15)
    assert np.max(np.abs(x - tr[:, 0])) <= cap.scale_m / 2 + 1e-15
    assert np.max(np.abs(y - tr[:, 1])) <= cap.scale_m / 2 + 1e-15
    np.testing.assert_allclose(ts, p.trajectory.t_start_s, atol=ps.TICK_S)


def test_blocking_client_and_bad_clients():
    from pandablocks.blocking import BlockingClient
    from pandablocks.commands import (Arm, Get, GetBlockInfo, GetChanges, GetFieldInfo, Put)
    from pandablocks.responses import EndData, FrameData, StartData

    host = "127.0.0.32"
    cap = _synthetic()
    with ps.PandaServer(cap, 1000.0, 5e-4, speed=50.0, host=host) as server:
        # unknown commands, garbage, and clients that vanish
        assert _ask(host, "FOO.BAR?").startswith("ERR")
        assert _ask(host, "*NONSENSE").startswith("ERR")
        assert _ask(host, "\xff\xfe??==").startswith("ERR")
        with socket.create_connection((host, ps.CONTROL_PORT)) as c:
            c.sendall(b"*IDN")                      # no newline, then gone
        with socket.create_connection((host, ps.DATA_PORT)) as c:
            c.sendall(b"XML FRAMED RAW\n")          # subscribes, never reads, then gone
        stalled = socket.create_connection((host, ps.DATA_PORT))
        stalled.sendall(b"ASCII SCALED\n")           # stays connected, never reads
        with BlockingClient(host) as client:
            blocks = client.send(GetBlockInfo())
            assert {"PCAP", "INENC", "PULSE"} <= set(blocks)
            fields = client.send(GetFieldInfo("INENC"))
            assert fields["VAL"].type == "pos_out"
            assert client.send(Get("PCAP.ACTIVE")) == "0"
            client.send(Put("INENC2.VAL.CAPTURE", "No"))
            changes = client.send(GetChanges())
            assert changes.values["INENC2.VAL.CAPTURE"] == "No"
            rows = []
            for d in client.data(scaled=True, frame_timeout=10):
                if isinstance(d, StartData):
                    names = [f.name for f in d.fields]
                    assert names == ["PCAP.TS_TRIGGER", "INENC1.VAL"]
                if type(d).__name__ == "ReadyData":
                    client.send(Arm())
                if isinstance(d, FrameData):
                    rows.append(d.data)
                if isinstance(d, EndData):
                    assert d.reason.value == "Ok" and d.samples == len(cap.t_trigger_s)
                    break
        got = np.concatenate(rows)
        np.testing.assert_allclose(got["INENC1.VAL.Value"],
                                   cap.counts[:, 0] * cap.scale_m + cap.offset_m[0], rtol=1e-12)
        np.testing.assert_allclose(got["PCAP.TS_TRIGGER.Value"], cap.t_trigger_s, atol=1e-8)
        stalled.close()
        assert server.acquisitions == 1
        # still serving after all of it
        assert _ask(host, "*IDN?").startswith("OK =PandA SW: ")
        assert _ask(host, "*BLOCKS?").endswith(".\n")


def test_arm_streams_in_real_time_scaled_by_speed():
    host = "127.0.0.33"
    cap = ps.PcapRows(np.array([0.0, 0.2, 0.4]), np.zeros((3, 2), np.int32), 1e-9,
                     np.zeros(2), np.ones(3, bool))
    with ps.PandaServer(cap, 5.0, 0.1, speed=1.0, host=host):
        with socket.create_connection((host, ps.DATA_PORT), timeout=10) as d:
            d.sendall(b"ASCII SCALED\n")
            assert d.recv(3) == b"OK\n"
            t0 = time.monotonic()
            assert _ask(host, "*PCAP.ARM=").strip() == "OK"
            assert _ask(host, "*PCAP.ARM=").startswith("ERR")      # already armed
            buf = b""
            while b"END" not in buf:
                buf += d.recv(4096)
            elapsed = time.monotonic() - t0
    text = buf.decode()
    assert "END 3 Ok" in text and "fields:" in text
    assert 0.35 < elapsed < 2.0          # the last trigger is 0.4 s after arming


def test_bad_options_and_ports():
    with pytest.raises(TwinInputError):
        ps.PandaServer(_synthetic(), 1000.0, 5e-4, speed=0.0)
    host = "127.0.0.34"
    with ps.PandaServer(_synthetic(), 1000.0, 5e-4, host=host):
        with socket.create_connection((host, ps.DATA_PORT), timeout=5) as d:
            d.sendall(b"FRAMED NONSENSE\n")
            assert d.recv(100).startswith(b"ERR")
        with pytest.raises(TwinInputError, match="--host"):
            ps.PandaServer(_synthetic(), 1000.0, 5e-4, host=host).start()
