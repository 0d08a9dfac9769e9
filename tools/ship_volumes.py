"""Measure the 3D resolution of the 3D seed scenarios on simulated sub-volumes and ship the
entries with twin (issue 21 item 4).

    python tools/ship_volumes.py [--seeds K] [--factors 0.5,1,2] [--workers N]
                                [--scheduler ADDRESS] [--cache DIR] [--rescore]
                                [SCENARIO.toml ...]

Each volume (:func:`twin.workflows.simvol.measure_volume`) is simulated and reconstructed one
Dask task per projection into ``--cache`` (default a new temporary folder, ``TWIN_CACHE_DIR``),
then its ``vol*.json`` entry is copied into ``twin/data/simulated/``, where the forecast reads
it (``resolution_3d_method = "fsc_simulated_volume"``). A call cut short loses only the volume
in progress when ``--cache`` is kept. The cost is printed first (``twin calibrate --volume``);
the brain's volume is ~1.6 core-hours by the measured cost model. With ``--rescore`` nothing is
simulated: each volume whose arrays ``--cache`` kept (``KEY.npz``, written since the volumes
were scored along and across the rotation axis) is scored again by this version
(:func:`twin.workflows.simvol.rescore_volume`), and the new entries are shipped.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("scenarios", nargs="*")
    ap.add_argument("--seeds", type=int, default=None)
    ap.add_argument("--factors", default=None, help="fluence factors, comma-separated")
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--scheduler", default=None)
    ap.add_argument("--cache", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=ROOT / "twin" / "data" / "simulated")
    ap.add_argument("--rescore", action="store_true",
                    help="score the kept volumes again; simulate nothing")
    a = ap.parse_args(argv)
    cache = str(a.cache) if a.cache else tempfile.mkdtemp(prefix="twin-vol-")
    os.environ["TWIN_CACHE_DIR"] = cache
    from twin import scenario
    from twin.workflows import calibrate, simres

    factors = tuple(float(x) for x in a.factors.split(",")) if a.factors else None
    paths = a.scenarios or [str(p) for p in sorted((ROOT / "scenarios").glob("*.toml"))]
    for p in paths:
        s = scenario.load(p)
        if not s.is_3d or s.resolution.model != "simulated" or s.sample.phantom == "siemens_star":
            continue
        if a.rescore:
            _rescore(s, a.seeds, factors)
            continue
        calibrate.run_volume(s, seeds=a.seeds, scheduler=a.scheduler, n_workers=a.workers,
                             log=print, factors=factors)
    a.out.mkdir(parents=True, exist_ok=True)
    # the entries are written where every measurement is cached: the `simulated` folder under
    # the cache (simres.cache_dir), not the cache's top (which shipped nothing)
    for entry in sorted(simres.cache_dir().glob("vol*.json")):
        shutil.copy2(entry, a.out / entry.name)
        print("shipped", entry.name)


def _rescore(s, seeds: int | None, factors) -> None:
    """Score again every kept volume of ``s`` at ``factors`` × its flux and ``seeds`` seeds."""
    from twin.workflows import simvol

    for f in factors or simvol.VOLUME_FACTORS:
        for k in range(seeds or s.resolution.calibration_seeds):
            m = simvol.rescore_volume(simvol._at(s, f), s.seed + k)
            print(f"{s.name} ×{f:g} seed {s.seed + k}:",
                  "no kept arrays" if m is None else
                  {n: v for n, v in vars(m).items() if "resolution" in n or "unresolved" in n})


if __name__ == "__main__":
    main()
