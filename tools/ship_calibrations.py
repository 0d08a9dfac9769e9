"""Compute the simulated resolution calibrations of the seed scenarios that use
``resolution.model = "simulated"`` and ship their cache entries with twin.

    python tools/ship_calibrations.py [SCENARIO.toml ...]

Each scenario's forecast is run with an empty cache (``TWIN_CACHE_DIR`` set to a temporary
folder): every simulated point and compression ratio it measures is written there, then copied
into ``twin/data/simulated/`` (:data:`twin.workflows.simres.SHIPPED`). A fresh install then
forecasts these scenarios at once; the entries are exactly what the forecast would compute
(``tests/workflows/test_simres.py`` recomputes one), and any change to the measurement's inputs
or :data:`twin.workflows.simres.VERSION` misses them.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(paths: list[str]) -> None:
    tmp = tempfile.mkdtemp(prefix="twin-ship-")
    os.environ["TWIN_CACHE_DIR"] = tmp
    from twin import scenario
    from twin.workflows import forecast, simres

    if not paths:
        paths = [str(p) for p in sorted((ROOT / "scenarios").glob("*.toml"))]
    simres.SHIPPED = Path(tmp) / "none"               # measure everything afresh
    for p in paths:
        s = scenario.load(p)
        if s.resolution.model != "simulated":
            continue
        t0 = time.perf_counter()
        v = forecast.forecast(s).values
        print(f"{Path(p).name}: d = {v['resolution_forecast_m'] * 1e9:.1f} nm "
              f"(± {(v['resolution_simulated_std_m'] or float('nan')) * 1e9:.1f}), "
              f"k = {v['resolution_exponent_k']:.3f}, {time.perf_counter() - t0:.0f} s",
              flush=True)
    dest = ROOT / "twin" / "data" / "simulated"
    dest.mkdir(parents=True, exist_ok=True)
    n = 0
    for f in sorted((Path(tmp) / "simulated").glob("*.json")):
        json.loads(f.read_text())                      # only complete entries
        shutil.copy(f, dest / f.name)
        n += 1
    print(f"{n} entries shipped in {dest}")


if __name__ == "__main__":
    main(sys.argv[1:])
