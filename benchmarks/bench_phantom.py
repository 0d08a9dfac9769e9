"""Peak memory of phantom projections (issue 3: never materialise what does not fit).

A 100 µm brain-like cylinder at 60 nm voxels is ~4.6 × 10⁹ voxels (18 GB as float32). twin
projects it analytically (chord lengths) and makes voxel slices one row at a time. Run by hand:
``python benchmarks/bench_phantom.py``; each case runs in its own process so that its peak
resident memory is its own.
"""

from __future__ import annotations

import resource
import subprocess
import sys
import time

import numpy as np


def case(name: str) -> None:
    from twin.sample import phantoms

    t0 = time.perf_counter()
    dx = 60e-9
    n = int(100e-6 / dx)                                  # 1667 voxels across
    fb = phantoms.FibreBundle(shape=(n, n, n), voxel_size_m=dx, sample_diameter_m=100e-6,
                              seed=0)
    if name == "projection":
        y = (np.arange(-416, 417)) * dx                   # 50 µm of height, every row
        s = (np.arange(n) - n // 2) * dx
        proj = fb.projection_analytic(y, s, 30.0, 11.0)
        what = f"analytic projection {proj.shape} at 30°"
    else:
        lab = fb.row(n // 2)
        what = f"one voxel slice {lab.shape}"
    dt = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{what}: {dt:.1f} s, peak RSS {rss:.0f} MB "
          f"(the full volume would be {n ** 3 * 4 / 1e9:.1f} GB as float32)")


if __name__ == "__main__":
    if len(sys.argv) > 1:
        case(sys.argv[1])
    else:
        for c in ("projection", "slice"):
            subprocess.run([sys.executable, __file__, c], check=True)
