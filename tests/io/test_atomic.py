"""Atomic writes under interruption: a writer killed by SIGINT or SIGTERM in the middle of its
write leaves neither a temporary nor a changed target, and a later write removes the temporaries
of writers that died without cleaning up (SIGKILL)."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from twin.io import atomic

WRITER = textwrap.dedent("""
    import sys, time
    import h5py, numpy as np
    from twin.io.atomic import atomic_path
    target = sys.argv[1]
    with atomic_path(target) as tmp, h5py.File(tmp, "w") as f:
        d = f.create_dataset("frames", shape=(1000, 64, 64), dtype="u4", chunks=(1, 64, 64))
        for i in range(1000):
            d[i] = i
            f.flush()
            if i == 3:
                print("writing", flush=True)
            time.sleep(0.01)
    print("done", flush=True)
""")


def _default_sigint() -> None:
    # a test run started in the background (nohup, `&`) ignores SIGINT, and a child inherits
    # that: the child here gets the default action back, as a user's Ctrl-C would find it
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _start_writer(target: Path) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(target)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, preexec_fn=_default_sigint)
    line = proc.stdout.readline()
    assert line.strip() == "writing", proc.stderr.read()
    return proc


def _temporaries(target: Path) -> list[Path]:
    return sorted(target.parent.glob(f".{target.name}.*"))


@pytest.mark.parametrize("sig, status", [(signal.SIGINT, (1, -2, 130)), (signal.SIGTERM, (143,))])
def test_signal_mid_write_removes_the_temporary(tmp_path, sig, status):
    target = tmp_path / "out.h5"
    target.write_bytes(b"the previous result")
    proc = _start_writer(target)
    assert len(_temporaries(target)) == 1          # the write is under way, beside the target
    proc.send_signal(sig)
    rc = proc.wait(timeout=30)
    err = proc.stderr.read()
    assert rc in status, err
    if sig == signal.SIGINT:
        assert "KeyboardInterrupt" in err
    assert _temporaries(target) == []
    assert target.read_bytes() == b"the previous result"


def test_killed_writer_leftovers_are_removed_by_the_next_write(tmp_path):
    target = tmp_path / "out.h5"
    proc = _start_writer(target)
    proc.send_signal(signal.SIGKILL)                # no handler runs: the temporary stays
    proc.wait(timeout=30)
    left = _temporaries(target)
    assert len(left) == 1 and left[0].name.startswith(f".out.h5.{proc.pid}@")
    # a live writer's temporary (another process on this host) must survive
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        live = tmp_path / f".out.h5.{sleeper.pid}@{atomic._host_tag()}.abcdefgh.part"
        live.write_bytes(b"x")
        other = tmp_path / ".other.h5.1@somehost.abcdefgh.part"   # another target's
        other.write_bytes(b"x")
        with atomic.atomic_path(target) as tmp:
            tmp.write_bytes(b"new")
        assert target.read_bytes() == b"new"
        assert not left[0].exists()
        assert live.exists() and other.exists()
    finally:
        sleeper.kill()
        sleeper.wait()
    # once its writer is gone, that one is stale too
    assert atomic.remove_stale_temporaries(target) == [live]


def test_exception_in_block_keeps_the_target(tmp_path):
    target = tmp_path / "t.csv"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic.atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("boom")
    assert target.read_text() == "old" and _temporaries(target) == []


def test_cli_simulate_interrupted_leaves_no_partial_file(tmp_path):
    """The issue's report: SIGINT during ``twin simulate`` left ``.OUT.cxi.<random>.part``."""
    root = Path(__file__).resolve().parents[2]
    out = tmp_path / "d.cxi"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "twin", "simulate",
                             str(root / "scenarios" / "quickstart.toml"), "-o", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            preexec_fn=_default_sigint)
    deadline = time.time() + 60
    while time.time() < deadline and not _temporaries(out) and proc.poll() is None:
        time.sleep(0.02)
    if proc.poll() is not None:
        pytest.skip("the simulation finished before it could be interrupted")
    proc.send_signal(signal.SIGINT)
    rc = proc.wait(timeout=60)
    assert rc in (1, 130), proc.stderr.read()[-2000:]
    assert not out.exists() and _temporaries(out) == []


@pytest.mark.parametrize("mask, expected", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_atomic_write_gets_the_mode_the_umask_gives(tmp_path, mask, expected):
    # a file written through the temporary ends with the mode an ordinary open() would give it
    # under the same umask (colleagues on a shared file system can read it under 022)
    old = os.umask(mask)
    try:
        with atomic.atomic_path(tmp_path / "out.h5") as tmp:
            tmp.write_bytes(b"x")
        with open(tmp_path / "plain.txt", "w") as fh:    # the independent reference
            fh.write("x")
    finally:
        os.umask(old)
    plain = (tmp_path / "plain.txt").stat().st_mode & 0o777
    assert plain == expected
    assert (tmp_path / "out.h5").stat().st_mode & 0o777 == plain


def test_a_signal_while_the_temporary_is_made_leaves_nothing(tmp_path, monkeypatch):
    # SIGINT arriving just after the temporary exists, before the writer has its name (the
    # window the CLI test above once hit under load, and CI again where threads left by earlier
    # tests took the process-wide signal that the main thread masked): it must still be removed
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        pytest.skip("SIGINT is ignored in this process (a suite started with nohup or `&`): "
                    "twin rightly installs no cleanup for a signal the process ignores")
    target = tmp_path / "out.h5"
    made = []
    real_create = atomic._create_temporary

    def create_then_interrupted(name):
        real_create(name)
        made.append(name)
        os.kill(os.getpid(), signal.SIGINT)        # delivered at the next chance Python gets

    monkeypatch.setattr(atomic, "_create_temporary", create_then_interrupted)
    with pytest.raises(KeyboardInterrupt):
        with atomic.atomic_path(target) as tmp:
            tmp.write_bytes(b"never")
    assert made and not Path(made[0]).exists()
    assert _temporaries(target) == [] and not target.exists()



DISPLACED = textwrap.dedent("""
    import signal, sys, time
    from twin.io.atomic import atomic_path
    target = sys.argv[1]
    with atomic_path(target + ".first") as tmp:         # the first write installs twin's handler
        open(tmp, "w").write("x")
    signal.signal(signal.SIGTERM, signal.SIG_DFL)       # another library resets it since
    with atomic_path(target) as tmp:
        open(tmp, "w").write("half")
        print("writing", flush=True)
        time.sleep(30)
""")


def test_a_handler_reset_by_another_library_does_not_uncover_the_next_write(tmp_path):
    # twin's handler was installed once per process: a library that replaced it afterwards left
    # every later write to SIGTERM's default action, which kills without cleaning up
    target = tmp_path / "out.h5"
    proc = subprocess.Popen([sys.executable, "-c", DISPLACED, str(target)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "writing", proc.stderr.read()
    assert len(_temporaries(target)) == 1
    proc.send_signal(signal.SIGTERM)
    rc = proc.wait(timeout=30)
    assert rc == 143, (rc, proc.stderr.read())
    assert _temporaries(target) == [] and not target.exists()
