"""Measure the cost model's numbers on this machine and write ``twin/data/costs.json``.

    python tools/measure_costs.py [--frames K] [--iterations I] [--scenarios NAME ...]

* the CPU's FFT: core-seconds of one complex64 transform per size (one worker, best of 5);
* every seed scenario's simulation (the first K frames of its scan, all cores: the probe-shift
  cache warms up as in a whole scan)
  and reconstruction (those frames, I iterations, timed from the first iteration's end to the
  last's), as core-seconds per frame and per
  frame-iteration: wall time × the cores the process may use. Their shares of the FFT limit
  (transforms × t(n) over the measured time) price scenarios nobody measured;
* the GPU's FFT time and reconstruction share, read from ``reports/bench_recon/gpu_h200.txt``
  (the synthetic-data table of its last run), until a GPU session measures more.

Run it on a quiet machine: the numbers ship with twin and price every forecast.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from pathlib import Path

import numpy as np
import scipy.fft

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from twin.analysis import costs  # noqa: E402

SEEDS = ["quickstart", "siemens_star_selun_110khz", "brain_phantom_eiger_3khz", "ic_rapid_349",
         "brain_1mm3_dlsr", "brain_1mm3_dlsr_multibeam"]


def fft_core_seconds(n: int) -> float:
    """Core-seconds of one complex64 n × n transform (one worker, best of 5)."""
    batch = max(1, 2 ** 22 // (n * n))
    a = (np.random.default_rng(0).standard_normal((batch, n, n))
         + 0j).astype(np.complex64)
    scipy.fft.fft2(a, workers=1)
    best = np.inf
    for _ in range(5):
        t0 = time.perf_counter()
        scipy.fft.fft2(a, workers=1, overwrite_x=False)
        best = min(best, time.perf_counter() - t0)
    return best / batch


def gpu_from_report(path: Path) -> dict:
    """The H200's FFT time per transform and reconstruction share, from bench_recon's
    synthetic table (rows: size, modes, batch, frame-it/s, FFT limit, share)."""
    text = path.read_text()
    rows = re.findall(r"^\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+([\d.]+)%$", text, re.M)
    if not rows:
        return {}
    last: dict = {}
    for size, modes, _, fit, limit, share in rows:          # later runs overwrite earlier ones
        last[(int(size), int(modes))] = (float(fit), float(limit), float(share) / 100)
    fft = {str(n): 1.0 / (lim * 2 * m) for (n, m), (_, lim, _) in last.items() if m == max(
        mm for (nn, mm) in last if nn == n)}
    big = max(last)                                       # the largest window, most modes
    return {"fft_seconds": fft, "reconstruction_share": last[big][2],
            "source": f"{path.relative_to(ROOT)}: FFT limit and share of its synthetic table"}


def measure_scenario(name: str, frames: int, iterations: int, patch: bool = False) -> dict:
    """Core-seconds per simulated frame and per reconstructed frame-iteration of a scenario's
    calibration patch, with the work they did."""
    from twin import scenario as sc
    from twin.geometry import Geometry, reconstruction_options
    import twin.recon as engines
    from twin.workflows import simulate
    from twin.workflows.patch import patch_scenario

    s = sc.load(ROOT / "scenarios" / f"{name}.toml")
    # its first frames, one projection; or its calibration patch (several beams span the whole
    # field: the scan's first frames would need the object over all of it)
    ps = (patch_scenario(s) if patch
          else s.with_values({"tomography.n_projections": 0}))
    g = Geometry.from_scenario(ps)
    cores = len(os.sched_getaffinity(0))
    p = simulate.plan(ps, n_frames=frames, g=g)
    t0 = time.perf_counter()
    counts = np.concatenate([c for _, c in simulate.frames(p)])
    t_sim = (time.perf_counter() - t0) * cores / len(counts)
    data = p.to_data(counts)
    opts = reconstruction_options(ps, iterations=iterations)
    # the iterations alone, from the end of the first to the end of the last (the set-up is
    # paid once per reconstruction, not per frame-iteration)
    marks: list = []
    res = engines.reconstruct(data, opts, callback=lambda i, c: marks.append(
        time.perf_counter()))
    t_rec = (marks[-1] - marks[0]) * cores / (len(counts) * (len(marks) - 1))
    sim = costs.simulation_work(g.oversampling ** 2 * g.n_native, g.n_beams,
                                g.blur_samples(ps), g.simulated_modes(ps),
                                g.multislice_slices(ps))
    rec = costs.reconstruction_work(g.n_native, g.n_beams, res.probe.shape[-3],
                                    max(opts.slices, 1))
    return {"scenario": name, "frames": len(counts), "iterations": iterations,
            "simulation": (sim, t_sim), "reconstruction": (rec, t_rec)}


def _work_of(key: str) -> "costs.Work":
    """The :class:`~twin.analysis.costs.Work` a ``costs.json`` key names."""
    kind, *v = key.split(":")
    v = [int(x) for x in v]
    return (costs.simulation_work(*v) if kind == "sim" else costs.reconstruction_work(*v))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=768)
    ap.add_argument("--iterations", type=int, default=6)
    ap.add_argument("--scenarios", nargs="*", default=SEEDS)
    ap.add_argument("--patch", action="store_true",
                    help="measure on the calibration patch instead of the scan's first frames")
    a = ap.parse_args()
    sizes = [32, 64, 128, 256, 512, 1024, 2048]
    cpu = {"fft_seconds": {str(n): fft_core_seconds(n) for n in sizes}, "measured": {},
           "machine": f"{os.uname().machine}, {len(os.sched_getaffinity(0))} cores",
           "date": time.strftime("%Y-%m-%d")}
    for n in sizes:
        print(f"FFT {n:5d}²: {cpu['fft_seconds'][str(n)] * 1e6:10.1f} core-µs", flush=True)
    # stages measured by an earlier run on this machine stay unless measured again (a heavy
    # scenario can then be measured with fewer frames in a run of its own)
    old = costs.table().get("cpu", {})
    if old.get("machine") == cpu["machine"]:
        cpu["measured"].update(old.get("measured", {}))
        cpu.setdefault("scenarios", {}).update(old.get("scenarios", {}))
    shares: dict = {"simulation": [], "reconstruction": []}
    for key, t in cpu["measured"].items():
        stage = "simulation" if key.startswith("sim:") else "reconstruction"
        work = _work_of(key)
        shares[stage].append(work.transforms * costs.fft_seconds(work.window, "cpu",
                                                                  {"cpu": cpu}) / t)
    for name in a.scenarios:
        m = measure_scenario(name, a.frames, a.iterations, a.patch)
        for stage in ("simulation", "reconstruction"):
            work, t = m[stage]
            if work.key in cpu["measured"]:       # re-measured: its old share goes
                old_t = cpu["measured"][work.key]
                shares[stage].remove(work.transforms * costs.fft_seconds(
                    work.window, "cpu", {"cpu": cpu}) / old_t)
            cpu["measured"][work.key] = t
            cpu.setdefault("scenarios", {})[f"{name}:{stage}"] = work.key
            share = work.transforms * costs.fft_seconds(work.window, "cpu", {"cpu": cpu}) / t
            shares[stage].append(share)
            print(f"{name:34s} {stage:15s} {work.key:24s} {t * 1e3:10.2f} core-ms "
                  f"({work.transforms:g} transforms of {work.window}²: {100 * share:5.1f} % of "
                  "the FFT limit)", flush=True)
    for stage, v in shares.items():
        cpu[f"{stage}_share"] = float(np.median(v)) if v else float("nan")
    out = {"cpu": cpu, "gpu": gpu_from_report(ROOT / "reports" / "bench_recon" / "gpu_h200.txt")}
    tmp = costs.COSTS_FILE.with_suffix(".tmp")
    tmp.write_text(json.dumps(out, indent=1, sort_keys=True))
    os.replace(tmp, costs.COSTS_FILE)
    print(f"wrote {costs.COSTS_FILE.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
