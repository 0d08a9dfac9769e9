"""Validation of seed 000 §2.2.2: the 110 kHz Siemens star, binned 2×2 on the SELUN,
reconstructed with reciprocal-space upsampling ×2, 2 probe modes and position correction from
PandA-interpolated positions. The central 4 × 4 µm² of the star (where the spokes are finest)
is simulated with the scenario's own beam, steps, frame rate and detector; the resolution is
measured as the paper did, from the star's line profiles, and by FRC against the ground truth.

    python benchmarks/validate_star.py [--iterations 40]     (~5 minutes on 2 cores)
Writes reports/validation/star.json and star.png.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from twin import scenario

from twin.io.cxi import read_cxi

from twin.analysis import metrics

import twin.recon as reconstruct

from twin.workflows import simulate

from twin.analysis import truth as validate

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--iterations", type=int, default=40)
    ap.add_argument("--fov-um", type=float, default=4.0)
    args = ap.parse_args()
    s = scenario.load(ROOT / "scenarios" / "siemens_star_selun_110khz.toml")
    # the star keeps its 20 µm size; only the scanned field shrinks to its centre
    s = s.with_values({"scan.fov_x_um": args.fov_um, "scan.fov_y_um": args.fov_um,
                       "sample.star.spokes": s.sample.star.spokes})
    out = ROOT / "reports" / "validation"
    out.mkdir(parents=True, exist_ok=True)
    res = {}
    with tempfile.TemporaryDirectory() as tmp:
        cxi = Path(tmp) / "star.cxi"
        summ = simulate.simulate(s, cxi)
        d = read_cxi(cxi)
        res["frames"] = summ.n_frames
        res["position_error_rms_nm"] = summ.position_error_rms_m * 1e9
        for label, pc in (("interpolated positions", "none"),
                          ("with position correction", "gradient")):
            t0 = time.perf_counter()
            r = reconstruct.reconstruct(d, reconstruct.Options(
                algorithm="rpie", iterations=args.iterations, modes=2, position_correction=pc,
                position_correction_start=5))
            c = validate.compare(r.object, d.ground_truth, r.pixel_size_m,
                                 d.truth.translations_m, r.probe.shape[-1])
            # the star's line-profile resolution, as seed 000 measured it
            ph = c.aligned_phase
            star_res, _ = metrics.siemens_star_resolution(
                -ph, r.pixel_size_m, s.sample.star.spokes,
                r_max_px=0.45 * min(ph.shape))
            tstar, _ = metrics.siemens_star_resolution(
                -c.truth_phase, r.pixel_size_m, s.sample.star.spokes,
                r_max_px=0.45 * min(ph.shape))
            err = r.positions_m - d.truth.translations_m[:, :2]
            err -= err.mean(axis=0)
            res[label] = {"pcc_phase": c.pcc_phase, "frc_half_bit_nm": c.frc_resolution_m * 1e9,
                          "frc_1_7_nm": c.frc_resolution_7_m * 1e9,
                          "star_line_profile_nm": star_res * 1e9,
                          "truth_star_line_profile_nm": tstar * 1e9,
                          "position_error_after_nm": float(np.sqrt(np.mean(np.sum(err ** 2,
                                                                                    axis=1)))
                                                           * 1e9),
                          "seconds": time.perf_counter() - t0,
                          "pixel_nm": r.pixel_size_m * 1e9}
            print(label, json.dumps(res[label], indent=1))
            if pc == "gradient":
                import matplotlib

                matplotlib.use("Agg")
                import matplotlib.pyplot as plt

                fig, ax = plt.subplots(1, 3, figsize=(15, 4.6))
                for a, img, t in ((ax[0], c.truth_phase, "ground truth"),
                                  (ax[1], c.aligned_phase, "reconstruction"),
                                  (ax[2], c.aligned_phase - c.truth_phase, "difference")):
                    im = a.imshow(img, cmap="gray" if a is not ax[2] else "RdBu")
                    a.set_title(f"{t} (phase, rad)")
                    fig.colorbar(im, ax=a, fraction=0.046)
                fig.tight_layout()
                fig.savefig(out / "star.png", dpi=90)
    res["paper_resolution_nm"] = 285.0
    (out / "star.json").write_text(json.dumps(res, indent=2))
    rows = ["| positions | PCC (phase) | star line profiles | FRC half-bit | FRC 1/7 | "
            "position error after |", "|---|---|---|---|---|---|"]
    for label in ("interpolated positions", "with position correction"):
        r = res[label]
        rows.append(f"| {label} | {r['pcc_phase']:.3f} | {r['star_line_profile_nm']:.0f} nm | "
                    f"{r['frc_half_bit_nm']:.0f} nm | {r['frc_1_7_nm']:.0f} nm | "
                    f"{r['position_error_after_nm']:.1f} nm |")
    g = res["with position correction"]
    (out / "star.md").write_text(
        f"{res['frames']} frames ({args.fov_um} × {args.fov_um} µm² of the star's centre, "
        f"pixel {g['pixel_nm']:.1f} nm); PandA interpolation error "
        f"{res['position_error_rms_nm']:.1f} nm rms.\n\n" + "\n".join(rows) + "\n\n"
        f"Seed 000 measured 285 nm from the star's line profiles; the ground truth's own line "
        f"profiles give {g['truth_star_line_profile_nm']:.0f} nm at this pixel size (the "
        f"method's floor). The FRC against the ground truth is dominated here by the star's "
        f"large uniform areas and low-frequency phase offsets; the line profiles are the "
        f"measure to compare with the paper.\n\n```{{figure}} ../reports/validation/star.png\n:width: 100%\n\nThe centre of the "
        f"110 kHz star: truth, reconstruction with position correction, difference.\n```\n")


if __name__ == "__main__":
    main()
