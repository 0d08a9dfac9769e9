"""twin's reconstruction against pty-chi (PyPI ``ptychi``, CPU torch), same data, same
iterations, same run, whole process to whole process (issue 5 target: ≥ 2× its speed on the
CPU at equal or better PCC).

    python benchmarks/bench_ptychi.py --ptychi-python /path/to/venv/bin/python [--frames N]

The pty-chi environment needs ``pip install torch==2.14.1 torchvision==0.29.1 ptychi`` and twin
itself (for hdf5plugin and the comparison). Data: the quickstart star enlarged to N frames,
simulated by twin; both codes start from the file's illumination and true positions.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from twin import scenario

from twin.io.cxi import read_cxi

from twin.workflows import simulate

from twin.analysis import truth as validate

ROOT = Path(__file__).resolve().parents[1]


def timed(cmd: list[str]) -> tuple[float, str]:
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True)
    dt = time.perf_counter() - t0
    if r.returncode != 0:
        raise RuntimeError(f"{cmd[:3]} failed:\n{r.stderr[-3000:]}")
    return dt, r.stdout + r.stderr


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ptychi-python", required=True)
    ap.add_argument("--frames", type=int, default=1600)
    ap.add_argument("--iterations", type=int, default=30)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--algorithms", default="rpie,lsqml")
    args = ap.parse_args()

    s = scenario.load(ROOT / "scenarios" / "quickstart.toml")
    side = float(np.sqrt(args.frames) * 0.3)
    s = s.with_values({"scan.fov_x_um": side, "scan.fov_y_um": side, "sample.width_um": side,
                       "sample.height_um": side})
    with tempfile.TemporaryDirectory() as tmp:
        cxi = Path(tmp) / "bench.cxi"
        simulate.simulate(s, cxi)
        data = read_cxi(cxi)
        print(f"data: {len(data.frames)} frames of {data.frames.shape[-1]}², "
              f"{args.iterations} iterations, batch {args.batch_size}")
        for alg in args.algorithms.split(","):
            out = Path(tmp) / f"twin_{alg}.h5"
            t_twin, _ = timed([sys.executable, "-m", "twin", "reconstruct", str(cxi), "-o",
                               str(out), "--algorithm", alg, "--iterations",
                               str(args.iterations), "--batch-size", str(args.batch_size)])
            import h5py

            with h5py.File(out) as f:
                obj = f["object"][()]
            c_twin = validate.compare(obj, data.ground_truth, data.object_pixel_m,
                                      data.translations_m, data.frames.shape[-1])
            npz = Path(tmp) / f"ptychi_{alg}.npz"
            t_pc, _ = timed([args.ptychi_python, str(ROOT / "benchmarks" / "ptychi_runner.py"),
                             str(cxi), str(npz), alg, str(args.iterations),
                             str(args.batch_size)])
            z = np.load(npz)
            c_pc = validate.compare(z["object"], data.ground_truth, data.object_pixel_m,
                                    data.translations_m, data.frames.shape[-1])
            print(f"{alg:6} twin   {t_twin:7.1f} s  PCC {c_twin.pcc_phase:.4f}  "
                  f"FRC {c_twin.frc_resolution_m * 1e9:6.1f} nm")
            print(f"{alg:6} ptychi {t_pc:7.1f} s  PCC {c_pc.pcc_phase:.4f}  "
                  f"FRC {c_pc.frc_resolution_m * 1e9:6.1f} nm  "
                  f"(its reconstruction alone {float(z['seconds_recon']):.1f} s)")
            print(f"{alg:6} speed ratio twin/ptychi (whole process): {t_pc / t_twin:.2f}x")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS of this process {rss:.0f} MB; "
          f"children {resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
