"""Two ``twin run`` on one output directory: the second is refused (exit 2) with the holder
named, and a holder that was killed leaves no lock behind."""

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from twin.core.errors import TwinInputError
from twin.workflows import pipeline

ROOT = Path(__file__).resolve().parents[2]

HOLDER = textwrap.dedent("""
    import sys, time
    from twin.workflows.pipeline import lock_run_dir
    with lock_run_dir(sys.argv[1], command="twin run quickstart.toml"):
        print("holding", flush=True)
        time.sleep(120)
""")


@pytest.fixture
def holder(tmp_path):
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(out)], stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout.readline().strip() == "holding"
    yield out, proc
    proc.kill()
    proc.wait()


def test_second_run_is_refused_naming_the_holder(holder):
    out, proc = holder
    r = subprocess.run([sys.executable, "-m", "twin", "run",
                        str(ROOT / "scenarios" / "quickstart.toml"), "-o", str(out)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2, r.stderr
    assert f"pid {proc.pid}" in r.stderr and "Traceback" not in r.stderr
    assert not (out / "summary.json").exists()          # nothing written by the refused run
    info = json.loads((out / pipeline.LOCK_NAME).read_text())
    assert info["pid"] == proc.pid and info["command"] == "twin run quickstart.toml"


def test_lock_of_a_killed_holder_is_free(holder):
    out, proc = holder
    with pytest.raises(TwinInputError):
        with pipeline.lock_run_dir(out):
            pass
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    with pipeline.lock_run_dir(out) as path:
        assert json.loads(path.read_text())["pid"] == os.getpid()
    assert path.read_text() == ""                          # released: no holder named


def test_report_refuses_a_held_run_directory(holder):
    out, proc = holder
    (out / "summary.json").write_text("{}")               # a run directory being written
    r = subprocess.run([sys.executable, "-m", "twin", "report", str(out)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2, r.stderr
    assert f"pid {proc.pid}" in r.stderr and "Traceback" not in r.stderr
    assert not (out / "report").exists()
