"""Forecast sweep throughput (issue 2 target: a 10,000-point sweep in seconds).

Run by hand: ``python benchmarks/bench_sweep.py [N_POINTS]``. Prints points per second for
(a) the baseline: one scalar ``forecast()`` per point, measured on a sample of points in the
same run, (b) the vectorised chunk evaluation on one core, (c) the whole ``run_sweep`` on a
local Dask cluster including its start, and the ratios (b)/(a) and (c)/(a).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from twin import scenario

from twin.workflows import forecast

from twin.workflows import sweep

ROOT = Path(__file__).resolve().parents[1]


def main(n: int = 10_000) -> None:
    base = scenario.load(ROOT / "scenarios" / "brain_1mm3_dlsr.toml")
    side = int(np.ceil(n ** 0.5))
    flux = list(np.geomspace(1e9, 1e12, side))
    rate = list(np.linspace(1e4, 1.2e5, side))
    s = base.model_copy(update={"sweep": {"beam.flux_photons_per_s": flux,
                                          "scan.frame_rate_hz": rate}})
    keys, points = sweep.grid(s)
    print(f"{len(points)} points")

    sample = points[:: max(1, len(points) // 500)]
    t0 = time.perf_counter()
    for p in sample:
        forecast.forecast(s.with_values(dict(zip(keys, p))))
    scalar = len(sample) / (time.perf_counter() - t0)

    t0 = time.perf_counter()
    sweep.evaluate_chunk(s.model_copy(update={"sweep": {}}), keys, points)
    chunk_t = time.perf_counter() - t0
    chunk = len(points) / chunk_t

    t0 = time.perf_counter()
    table = sweep.run_sweep(s)
    dask_t = time.perf_counter() - t0
    assert len(table) == len(points)

    print(f"baseline scalar forecast : {scalar:10.0f} points/s")
    print(f"vectorised chunk, 1 core : {chunk:10.0f} points/s  ({chunk / scalar:.2f}x) "
          f"{chunk_t:.2f} s")
    print(f"run_sweep on local Dask  : {len(points) / dask_t:10.0f} points/s  "
          f"({len(points) / dask_t / scalar:.2f}x) {dask_t:.2f} s including cluster start")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000)
