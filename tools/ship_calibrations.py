"""Compute the simulated resolution calibrations of the seed scenarios that use
``resolution.model = "simulated"`` and ship their cache entries with twin.

    python tools/ship_calibrations.py [--all-models] [--out DIR] [--workers N] [SCENARIO.toml ...]

Each scenario's forecast is run with an empty cache (``TWIN_CACHE_DIR`` set to a temporary
folder): every simulated point and compression ratio it measures is written there, then copied
into ``twin/data/simulated/`` (:data:`twin.workflows.simres.SHIPPED`), or into ``--out``. A fresh
install then forecasts these scenarios at once; the entries are exactly what the forecast would
compute (``tests/workflows/test_simres.py`` recomputes one), and any change to the measurement's
inputs or :data:`twin.workflows.simres.VERSION` misses them.

``--all-models`` also calibrates scenarios whose forecast still uses a closed form (their
``resolution.model`` set to "simulated" for the run): the points a later switch of that scenario
needs, computed where the compute is (a GPU machine: ``benchmarks/gpu_calibrate.sh``).
``--cache`` keeps the points in a folder between calls (a call cut short by a time limit loses
only the point in progress). ``--workers`` sets the Dask workers (one per GPU is best there). ``--reuse`` keeps the shipped
entries and computes only the missing points (more seeds for a shipped calibration).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("scenarios", nargs="*")
    ap.add_argument("--all-models", action="store_true")
    ap.add_argument("--reuse", action="store_true")
    ap.add_argument("--out", type=Path, default=ROOT / "twin" / "data" / "simulated")
    ap.add_argument("--cache", type=Path, default=None,
                    help="a cache folder kept between calls (default: a new temporary one)")
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--seeds", type=int, default=None,
                    help="calibration seeds (default: each scenario's calibration_seeds)")
    a = ap.parse_args(argv)
    tmp = str(a.cache) if a.cache else tempfile.mkdtemp(prefix="twin-ship-")
    os.environ["TWIN_CACHE_DIR"] = tmp
    from twin import scenario
    from twin.workflows import simres

    paths = a.scenarios or [str(p) for p in sorted((ROOT / "scenarios").glob("*.toml"))]
    if not a.reuse:
        simres.SHIPPED = Path(tmp) / "none"            # measure everything afresh
    failed = []
    for p in paths:
        s = scenario.load(p)
        if s.resolution.model != "simulated":
            if not a.all_models:
                continue
            s = s.with_values({"resolution.model": "simulated"})
        seeds = a.seeds or s.resolution.calibration_seeds
        t0 = time.perf_counter()
        base = s.model_copy(update={"sweep": {}})
        todo = simres.missing_points(base, seeds)
        try:
            cal = simres.calibrate(base, seeds=seeds, progress=True, n_workers=a.workers)
        except Exception as exc:  # noqa: BLE001 - report, and calibrate the other scenarios
            failed.append(p)
            print(f"{Path(p).name}: failed after {time.perf_counter() - t0:.0f} s: {exc}",
                  flush=True)
            continue
        pts = ", ".join(f"{f * 1e-12:.3g}: {d * 1e9:.1f}" for f, d in cal.points)
        print(f"{Path(p).name}: {todo} points in {time.perf_counter() - t0:.0f} s; "
              f"d0 = {cal.d0_m * 1e9:.1f} ± {cal.d0_std_m * 1e9:.1f} nm, k = {cal.k:.3f} "
              f"± {cal.k_std:.3f}, turnover {cal.f_turn_photons_per_m2 * 1e-12:.3g} ph/µm², "
              f"compression {cal.compression_ratio:.2f}; points (ph/µm²: nm) {pts}", flush=True)
    a.out.mkdir(parents=True, exist_ok=True)
    n = 0
    for f in sorted((Path(tmp) / "simulated").glob("*.json")):
        json.loads(f.read_text())                      # only complete entries
        shutil.copy(f, a.out / f.name)
        n += 1
    print(f"{n} entries written to {a.out}" + (f"; failed: {failed}" if failed else ""))


if __name__ == "__main__":
    main()
