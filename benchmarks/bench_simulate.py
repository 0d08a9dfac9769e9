"""Simulation targets of issue 4, run by hand:

* the full 100,000-frame projection of the 3 kHz scenario (128 × 128 crop) with peak memory
  ≤ 2 GB;
* the whole 56,000-frame 110 kHz Siemens-star scan in minutes on 2 cores;
* frames per second with the full detector model ≥ half the bare forward model's;
* issue 10: each scan also at ``simulation.oversampling = 1`` (the old, reconstruction-grid
  simulation) in the same run, so the price of the realistic default is a ratio.

``python benchmarks/bench_simulate.py [--quick]`` (quick: 2000 frames of the star, 300 of the brain phantom). Peak memory
is the process's maximum resident set size (``resource.getrusage``), which includes Python and
the libraries (~200 MB).
"""

from __future__ import annotations

import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from twin import scenario

from twin.acquisition import detector

from twin.workflows import simulate

ROOT = Path(__file__).resolve().parents[1]


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run(name: str, n_frames: int | None, oversampling: int | None = None) -> None:
    s = scenario.load(ROOT / "scenarios" / f"{name}.toml")
    if oversampling is not None:
        s = s.with_values({"simulation.oversampling": oversampling})
        name = f"{name} (oversampling {oversampling})"
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "x.cxi"
        t0 = time.perf_counter()
        summary = simulate.simulate(s, out, n_frames=n_frames)
        dt = time.perf_counter() - t0
        size = out.stat().st_size
    print(f"{name}: {summary.n_frames} frames {summary.frame_shape} in {dt:.1f} s "
          f"({summary.n_frames / dt:.0f} frames/s), blur samples {summary.blur_samples}, "
          f"file {size / 1e6:.1f} MB, peak RSS so far {peak_rss_mb():.0f} MB")


def detector_overhead(name: str, n: int = 256) -> None:
    s = scenario.load(ROOT / "scenarios" / f"{name}.toml")
    p = simulate.plan(s, n)
    t0 = time.perf_counter()
    lam = simulate.expected_frames(p, 0, n)
    bare = n / (time.perf_counter() - t0)
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    lam = simulate.expected_frames(p, 0, n)
    detector.count_frames(lam, p.det, p.exposure_s, rng, mask=p.mask)
    full = n / (time.perf_counter() - t0)
    print(f"{name}: bare forward {bare:.0f} frames/s, with detector {full:.0f} frames/s, "
          f"ratio {full / bare:.2f} (target ≥ 0.5)")


if __name__ == "__main__":
    quick = "--quick" in sys.argv
    if "--one" in sys.argv:      # child process: one scan, so that its peak memory is its own
        name = sys.argv[sys.argv.index("--one") + 1]
        ovs = (int(sys.argv[sys.argv.index("--oversampling") + 1])
               if "--oversampling" in sys.argv else None)
        run(name, (300 if "brain" in name else 2000) if quick else None, ovs)
        sys.exit(0)
    import subprocess

    detector_overhead("brain_phantom_eiger_3khz")
    detector_overhead("siemens_star_selun_110khz")
    # issue 10: the realistic default (oversampling 2, pixel integration, coherence modes,
    # multislice where thick) against the reconstruction-grid simulation (oversampling 1) in
    # the same run: the ratio is the price of realism
    for name in ("siemens_star_selun_110khz", "brain_phantom_eiger_3khz"):
        for ovs in (["--oversampling", "1"], []):
            args = ([sys.executable, __file__, "--one", name] + (["--quick"] if quick else [])
                    + ovs)
            subprocess.run(args, check=True)
