"""No input can exhaust the machine (issue 14 §3): a part of a huge scan costs only the part,
and a file that cannot be held is refused with its size named."""

import resource
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _huge(tmp_path: Path) -> Path:
    text = (ROOT / "scenarios" / "quickstart.toml").read_text().split("[sweep]")[0]
    text = (text.replace("width_um = 6.0", "width_um = 60000.0")
            .replace("height_um = 6.0", "height_um = 60000.0")
            .replace("fov_x_um = 6.0", "fov_x_um = 60000.0")
            .replace("fov_y_um = 6.0", "fov_y_um = 60000.0"))
    p = tmp_path / "huge.toml"
    p.write_text(text)
    return p


def _run(args, limit_gb=3):
    def cap():
        b = int(limit_gb * 2 ** 30)
        resource.setrlimit(resource.RLIMIT_AS, (b, b))
    return subprocess.run([sys.executable, "-m", "twin", *map(str, args)], capture_output=True,
                          text=True, timeout=300, preexec_fn=cap)


def test_a_few_frames_of_a_huge_scan_fit_in_little_memory(tmp_path):
    # 60 mm × 60 mm at 0.3 µm steps: 4·10¹⁰ frames in the scan, 10 asked for
    out = tmp_path / "part.cxi"
    r = _run(["simulate", _huge(tmp_path), "-o", out, "--frames", "10"])
    assert r.returncode == 0, r.stderr[-2000:]
    import h5py

    with h5py.File(out) as f:
        assert f["entry_1/data_1/data"].shape[0] == 10


def test_the_whole_huge_scan_is_refused_with_its_size(tmp_path):
    out = tmp_path / "all.cxi"
    r = _run(["simulate", _huge(tmp_path), "-o", out])
    assert r.returncode == 2
    assert "frames" in r.stderr and "TB" in r.stderr and "--frames" in r.stderr
    assert not out.exists() and not list(tmp_path.glob("*.part"))
