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
more than 1). A diagnostic: the forecast reads the whole shells and the band across the axis.
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
    from twin.analysis.resolution import azimuthal_correlations
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
    reg = simvol.register_volume(vol, truth) * disc
    cones = azimuthal_correlations(reg, truth * disc, sub.voxel_m, axis=0, step_deg=a.step,
                                   half_angle_deg=a.half_angle)
    print(f"{s.name} ×{a.factor:g}, seed {a.seed}: {len(angles)} projections at "
          f"{np.round(angles, 1).tolist()}°, volume {vol.shape}, voxel {sub.voxel_m * 1e9:.1f} nm")
    print(f"cones of {a.half_angle:g}° across the rotation axis; half period, half-bit vs truth")
    for (az, c), share in zip(cones, _power_shares(truth * disc, a.step, a.half_angle)):
        d = simres._resolution(c, sub.beam_diameter_m, against_truth=True)
        bound = simres._resolution(c, sub.beam_diameter_m, against_truth=True, bound=True)
        print(f"  azimuth {az:5.1f}°  {'unresolved, bound ' if bound else ''}{d * 1e9:6.0f} nm"
              f"   truth's power in the cone {share:.3f}")


def _power_shares(truth: np.ndarray, step: float, half_angle: float) -> list[float]:
    """Share of the (mean-free, Hann-windowed) truth's spectral power in each cone across axis
    0, in the order of :func:`twin.analysis.resolution.azimuthal_correlations`."""
    from twin.analysis.resolution import _spectra

    ft, _ = _spectra(truth, truth, True)
    p = np.abs(ft) ** 2
    g = np.meshgrid(*[np.fft.fftshift(np.fft.fftfreq(n)) for n in p.shape], indexing="ij",
                    sparse=True)
    r = np.sqrt(g[0] ** 2 + g[1] ** 2 + g[2] ** 2)
    cos_a = np.cos(np.radians(half_angle))
    out = []
    for az in np.arange(0.0, 180.0 - 1e-9, step):
        t = np.radians(az)
        m = (np.abs(np.cos(t) * g[1] + np.sin(t) * g[2]) >= cos_a * r) & (r > 0)
        out.append(float(p[m].sum() / p.sum()))
    return out

if __name__ == "__main__":
    main()
