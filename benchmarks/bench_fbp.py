"""FBP of a 256³ volume from 400 projections (issue 6 target: faster than scikit-image's
iradon and astra-toolbox's CPU FBP, measured in the same run).

    python benchmarks/bench_fbp.py [--n 256] [--angles 400] [--sk-rows 16]

scikit-image reconstructs one slice at a time; it is timed on ``--sk-rows`` rows and scaled to
the volume (its time per slice is constant). astra runs if importable (``pip install
astra-toolbox``), on all rows. Accuracy: rms error against the phantom inside the circle.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from skimage.data import shepp_logan_phantom
from skimage.transform import iradon, radon, resize

from twin.tomo import reconstruct as tomo


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=256)
    ap.add_argument("--angles", type=int, default=400)
    ap.add_argument("--sk-rows", type=int, default=16)
    args = ap.parse_args()
    n, na = args.n, args.angles
    img = resize(shepp_logan_phantom(), (n, n), anti_aliasing=True).astype(np.float32)
    th = np.linspace(0, 180, na, endpoint=False)
    row = radon(img, th, circle=True).T.astype(np.float32)
    scale = np.linspace(0.5, 1.5, n).astype(np.float32)
    sino = row[:, None, :] * scale[None, :, None]                 # (angles, rows, n)
    y, x = np.mgrid[:n, :n] - n // 2
    m = x * x + y * y < (n // 2 - 2) ** 2

    def err(rec):
        return float(np.sqrt(np.mean((rec / scale[:, None, None] - img[None])[:, m] ** 2)))

    tomo.fbp(sino[:, :2], th)                                     # builds the gridding matrix
    t0 = time.perf_counter()
    ours = tomo.fbp(sino, th)
    t_ours = time.perf_counter() - t0
    t0 = time.perf_counter()
    sk = np.stack([iradon(sino[:, z, :].T, th, circle=True, filter_name="ramp")
                   for z in range(args.sk_rows)])
    t_sk = (time.perf_counter() - t0) * n / args.sk_rows
    print(f"twin gridrec FBP : {t_ours:7.2f} s   rms error {err(ours):.4f}")
    sk_err = float(np.sqrt(np.mean((sk / scale[:args.sk_rows, None, None] - img[None])[:, m]
                                   ** 2)))
    print(f"skimage iradon   : {t_sk:7.2f} s   rms error {sk_err:.4f}"
          f"   (timed on {args.sk_rows} rows, scaled)   ratio {t_sk / t_ours:.1f}x")
    try:
        import astra  # noqa: F401
    except ImportError:
        print("astra-toolbox  : not installed (pip install astra-toolbox)")
        return
    t0 = time.perf_counter()
    ast = tomo.fbp(sino, th, backend="astra")
    t_ast = time.perf_counter() - t0
    print(f"astra CPU FBP    : {t_ast:7.2f} s   rms error {err(ast):.4f}   ratio "
          f"{t_ast / t_ours:.1f}x")
    print(f"twin first call including the gridding matrix: rebuild costs "
          f"{_matrix_time(n, th):.2f} s")


def _matrix_time(n, th):
    tomo._gridding_matrix.cache_clear()
    t0 = time.perf_counter()
    tomo._gridding_matrix(n, tuple(np.round(th, 9)), "ramp")
    return time.perf_counter() - t0


if __name__ == "__main__":
    main()
