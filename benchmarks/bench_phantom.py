"""Peak memory of phantom projections (issue 3: never materialise what does not fit).

A 100 µm brain-like cylinder at 60 nm voxels is ~4.6 × 10⁹ voxels (18 GB as float32). twin
projects it analytically (chord lengths) and makes voxel slices one row at a time. Run by hand:
``python benchmarks/bench_phantom.py``; each case runs in its own process so that its peak
resident memory is its own.

The ``circuit`` case times the tilted projection of a voxel circuit (the 3D truth of the 21-angle
IC's sub-volume: 660 rows of a 122 × 954 plate) against the baseline it replaced, measured in the
same run: each row's whole zero-padded square through the Radon matrix, row by row.
"""

from __future__ import annotations

import resource
import subprocess
import sys
import time

import numpy as np


def circuit() -> None:
    from twin.operators.radon import Radon
    from twin.sample import phantoms

    ic = phantoms.IntegratedCircuit(shape=(660, 122, 954), voxel_size_m=4.7e-9,
                                    thickness_m=0.56e-6, n_layers=4, seed=1,
                                    substrate_thickness_m=0.1e-6, min_pitch_m=40e-9,
                                    max_pitch_m=200e-9)
    angle, e = 25.5, 8.8
    t0 = time.perf_counter()
    got = ic.projection([angle], e)[0]
    t_new = time.perf_counter() - t0
    t0 = time.perf_counter()
    ny, nz, nx = ic.shape
    n = max(nz, nx)
    z0, x0 = (n - nz) // 2, (n - nx) // 2
    lut = phantoms.refractive_indices(ic.materials, e)
    radon, sq = Radon(n, [angle]), np.zeros((n, n), complex)
    ref = np.empty_like(got)
    for y in range(ny):
        sq[z0:z0 + nz, x0:x0 + nx] = lut[ic.row(y)]
        ref[y] = radon.fwd(sq)[0, x0:x0 + nx] * ic.voxel_size_m
    t_ref = time.perf_counter() - t0
    err = np.abs(got - ref).max() / np.abs(ref).max()
    print(f"circuit {ic.shape} at {angle}°: {t_new:.2f} s, the square row by row {t_ref:.2f} s, "
          f"{t_ref / t_new:.1f}× faster; max difference {err:.1e} of the peak")


def case(name: str) -> None:
    from twin.sample import phantoms

    if name == "circuit":
        return circuit()

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
        for c in ("projection", "slice", "circuit"):
            subprocess.run([sys.executable, __file__, c], check=True)
