"""The FSC of a kept simulated sub-volume against its truth, direction by direction across the
rotation axis: where a shell's FSC gets its power, and which directions resolve.

    python tools/volume_directions.py CACHE_DIR SCENARIO.toml [--seed S] [--factor F]
                                      [--half-angle DEG] [--step DEG]

Reads the projections and truth that :func:`twin.workflows.simvol.measure_volume` keeps
(``CACHE_DIR/simulated/KEY.npz``), aligns and reconstructs the volume as the forecast's score
does, and prints for cones of ``--half-angle`` around directions in the plane across the
rotation axis (every ``--step`` degrees of azimuth, 0° along the slice's first axis, the beam
at the first projection) the half-bit half period against the truth (threshold as the
forecast's) and the share of the truth's power in the cone (cones overlap, so shares add to
more than 1); before them, the same in three bands of elevation from the axis (0–30°, 30–60°,
60–90°) with the reconstruction's power share beside the truth's: where the truth has no power
and the reconstruction has, a shell's FSC counts error against no signal. A diagnostic: the
forecast reads the whole shells and the band across the axis.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("cache", type=Path)
    ap.add_argument("scenario")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--factor", type=float, default=1.0)
    ap.add_argument("--half-angle", type=float, default=20.0)
    ap.add_argument("--step", type=float, default=15.0)
    a = ap.parse_args(argv)
    os.environ["TWIN_CACHE_DIR"] = str(a.cache)
    from twin import scenario
    from twin.analysis.resolution import CrossSpectra
    from twin.tomo import reconstruct as tomo
    from twin.workflows import simres, simvol

    s = simvol._at(scenario.load(a.scenario), a.factor)
    sub = simvol.sub_volume(s)
    path = simvol._arrays_path(simvol._key(sub.scenario, a.seed, None))
    if not path.exists():
        raise SystemExit(f"no kept arrays at {path}: measure the volume with this version first")
    with np.load(path) as z:
        angles, proj, truth = z["angles"], z["proj"], z["truth"]
    aligned, _ = tomo.align_projections(proj, angles)
    vol = simvol.tomography(aligned, angles, s.tomography.method)
    m = proj.shape[2]
    yy, xx = np.mgrid[:m, :m] - m // 2
    disc = ((xx ** 2 + yy ** 2) < (0.45 * m) ** 2)[None]
    sp = CrossSpectra.of(simvol.register_volume(vol, truth) * disc, truth * disc, sub.voxel_m)
    print(f"{s.name} ×{a.factor:g}, seed {a.seed}: {len(angles)} projections at "
          f"{np.round(angles, 1).tolist()}°, volume {vol.shape}, voxel {sub.voxel_m * 1e9:.1f} nm")
    total, total_rec = sp.power_b.sum(), sp.power_a.sum()
    print("elevation from the rotation axis; half period, half-bit vs truth; shares of the "
          "truth's and of the reconstruction's power (a shell's FSC counts both)")
    for lo, hi, mask in _elevation_parts(sp):
        c = sp.part(mask)
        d = simres._resolution(c, sub.beam_diameter_m, against_truth=True)
        bound = simres._resolution(c, sub.beam_diameter_m, against_truth=True, bound=True)
        print(f"  {lo:2.0f}–{hi:2.0f}°  {'unresolved, bound ' if bound else ''}{d * 1e9:6.0f} nm"
              f"   truth {sp.power_b[mask].sum() / total:.3f}"
              f"   reconstruction {sp.power_a[mask].sum() / total_rec:.3f}")
    print(f"cones of {a.half_angle:g}° across the rotation axis; half period, half-bit vs truth")
    for az, mask in sp.cone_masks(0, a.step, a.half_angle):
        c = sp.part(mask)
        d = simres._resolution(c, sub.beam_diameter_m, against_truth=True)
        bound = simres._resolution(c, sub.beam_diameter_m, against_truth=True, bound=True)
        print(f"  azimuth {az:5.1f}°  {'unresolved, bound ' if bound else ''}{d * 1e9:6.0f} nm"
              f"   truth's power in the cone {sp.power_b[mask].sum() / total:.3f}")

def _elevation_parts(sp, edges=(0.0, 30.0, 60.0, 90.0)):
    """(low, high, mask) of the frequencies whose angle from the rotation axis (axis 0) lies in
    each interval of ``edges`` (degrees; the zero frequency left out)."""
    r2, cos2 = sp.axis_cos2(0)
    elev = np.degrees(np.arccos(np.sqrt(cos2)))
    for lo, hi in zip(edges[:-1], edges[1:]):
        yield lo, hi, (elev >= lo) & ((elev < hi) if hi < 90 else (elev <= hi)) & (r2 > 0)


if __name__ == "__main__":
    main()
