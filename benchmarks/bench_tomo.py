"""Tomography speed and accuracy (issue 11 §4), twin against scikit-image in the same run.

    python benchmarks/bench_tomo.py [--n 128] [--rows 48] [--angles 181] [--sk-iterations 5]

1. Joint reprojection alignment (``twin tomo --align``) of an (angles, rows, n) stack of a 3D
   object projected by scikit-image, with known random shifts (±3 px): time (cold: including
   the projection matrix; warm: matrix cached) and the error of the recovered shifts in px,
   against scikit-image's radon + iradon over the stack ``--sk-iterations`` times (the cost of
   the same number of reconstruct/reproject rounds with scikit-image). Target: ≤ 1/5 of it.
2. Iterative methods: one SIRT/TV iteration (a projection and a back-projection of the whole
   stack) and one SART sweep with the sparse-matrix operator, against the previous gather/
   scatter operator (kept below as ``LegacyRadon``, timed on ``--legacy-rows`` rows and scaled
   linearly in rows). Target: ≥ 20×.
3. Reconstruction error (rms inside the circle, relative to the object's rms) of FBP and SIRT
   on the aligned stack, and what the automatic choice does with 21 angles over 140.8°.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from skimage.transform import iradon, radon

from twin.core.scatter import scatter_add
from twin.core.xp import array_module
from twin.operators import radon as tr
from twin.tomo import reconstruct as tomo


class LegacyRadon:
    """The projector before issue 11 (gathers over bilinear taps, scatter-add adjoint)."""

    def __init__(self, n, angles_deg):
        self.n = int(n)
        self.angles_deg = np.asarray(angles_deg, dtype=float)
        c = self.n // 2
        s = np.arange(self.n) - c
        self._taps = []
        for th in np.deg2rad(self.angles_deg):
            col = c + np.cos(th) * s[None, :] + np.sin(th) * s[:, None]
            row = c - np.sin(th) * s[None, :] + np.cos(th) * s[:, None]
            r0, c0 = np.floor(row).astype(int), np.floor(col).astype(int)
            fr, fc = row - r0, col - c0
            idx, wts = [], []
            for dr, dc, w in ((0, 0, (1 - fr) * (1 - fc)), (0, 1, (1 - fr) * fc),
                              (1, 0, fr * (1 - fc)), (1, 1, fr * fc)):
                rr, cc = r0 + dr, c0 + dc
                ok = (rr >= 0) & (rr < self.n) & (cc >= 0) & (cc < self.n)
                idx.append(np.where(ok, rr * self.n + cc, 0))
                wts.append(np.where(ok, w, 0.0))
            self._taps.append((np.stack(idx), np.stack(wts).astype(np.float32)))

    def fwd(self, images):
        flat = images.reshape(images.shape[:-2] + (self.n * self.n,))
        return np.stack([(flat[..., idx] * w).sum(axis=-3).sum(axis=-2)
                         for idx, w in self._taps], axis=-2)

    def adj(self, sino):
        xp = array_module(sino)
        nb = sino.shape[0]
        out = xp.zeros((nb, self.n * self.n), dtype=sino.dtype)
        for a, (idx, w) in enumerate(self._taps):
            vals = w[None] * sino[:, a][:, None, None, :]
            for b in range(nb):
                out[b] += scatter_add(self.n * self.n, idx, vals[b])
        return out.reshape(sino.shape[:-2] + (self.n, self.n))


def balls(rows, n, count, seed):
    rng = np.random.default_rng(seed)
    z, y, x = np.mgrid[:rows, :n, :n].astype(np.float32)
    y -= n // 2
    x -= n // 2
    vol = np.zeros((rows, n, n), np.float32)
    for _ in range(count):
        cz, cy, cx = rng.uniform(0, rows), *rng.uniform(-0.3 * n, 0.3 * n, 2)
        r = rng.uniform(0.04, 0.12) * n
        vol += rng.uniform(0.2, 1) * (((z - cz) ** 2 + (y - cy) ** 2 + (x - cx) ** 2) < r * r)
    return vol * (x * x + y * y < (0.45 * n) ** 2)


def clock(fn, *a, **k):
    t0 = time.perf_counter()
    out = fn(*a, **k)
    return time.perf_counter() - t0, out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=128)
    ap.add_argument("--rows", type=int, default=48)
    ap.add_argument("--angles", type=int, default=181)
    ap.add_argument("--shift-px", type=float, default=3.0)
    ap.add_argument("--sk-iterations", type=int, default=5)
    ap.add_argument("--legacy-rows", type=int, default=4)
    args = ap.parse_args()
    n, rows, na = args.n, args.rows, args.angles
    th = np.linspace(0, 180, na)
    vol = balls(rows, n, 60, 0)
    proj = np.stack([radon(v, th, circle=True).T for v in vol], axis=1).astype(np.float32)
    true = np.random.default_rng(1).uniform(-args.shift_px, args.shift_px, (na, 2))
    moved = tomo.shift_stack(proj, -true)
    y, x = np.mgrid[:n, :n] - n // 2
    disc = x * x + y * y < (0.45 * n - 2) ** 2
    vrms = float(np.sqrt(np.mean(vol[:, disc] ** 2)))

    def rel(rec):
        return float(np.sqrt(np.mean((rec - vol)[:, disc] ** 2))) / vrms

    print(f"stack: {na} angles x {rows} rows x {n}^2, shifts uniform ±{args.shift_px} px")

    # 1. alignment ------------------------------------------------------------------------
    def sk_rounds(k):
        v = None
        for _ in range(k):
            v = np.stack([iradon(moved[:, z, :].T, th, circle=True, filter_name="ramp")
                          for z in range(rows)])
            np.stack([radon(s, th, circle=True) for s in v])
        return v

    t_sk, _ = clock(sk_rounds, args.sk_iterations)
    tr.projection_matrix.cache_clear()
    tomo._gridding_matrix.cache_clear()
    t_cold, (aligned, shifts) = clock(tomo.align_projections, moved, th)
    t_warm, _ = clock(tomo.align_projections, moved, th)
    t_sirt, (_, sh_sirt) = clock(tomo.align_projections, moved, th, method="sirt",
                                 iterations=6, inner_iterations=5)
    q = tomo._gauge_modes(th, np)
    ref = tomo._remove_gauge(true, q)

    def err(sh):
        return float(np.sqrt(np.mean((tomo._remove_gauge(sh, q) - ref) ** 2)))

    print(f"scikit-image radon+iradon x{args.sk_iterations}: {t_sk:7.2f} s")
    print(f"twin align (auto: FBP, 6 its), cold  : {t_cold:7.2f} s   ratio "
          f"{t_sk / t_cold:5.1f}x   shift error {err(shifts):.3f} px rms "
          f"(before: {err(np.zeros_like(true)):.2f} px)")
    print(f"twin align, warm (matrix cached)     : {t_warm:7.2f} s   ratio {t_sk / t_warm:5.1f}x")
    print(f"twin align (SIRT 6x5 its, warm)      : {t_sirt:7.2f} s   ratio "
          f"{t_sk / t_sirt:5.1f}x   shift error {err(sh_sirt):.3f} px rms")
    print("  (shift errors in the volume's gauge: mean row shift and the column shifts' "
          "1, cos, sin components removed from both)")

    # 2. iterative methods against the previous operator ------------------------------------
    A = tr.Radon(n, th)
    xc = np.ascontiguousarray(vol.reshape(rows, -1).T)
    t_new = min(clock(lambda: A.adj_cols(A.fwd_cols(xc)))[0] for _ in range(3))
    lr = args.legacy_rows
    t_build_old, L = clock(LegacyRadon, n, th)
    t_old = clock(lambda: L.adj(L.fwd(vol[:lr])))[0] * rows / lr
    one = [LegacyRadon(n, [t]) for t in th[:10]]
    t_sart_old = clock(lambda: [o.adj(o.fwd(vol[:lr])) for o in one])[0] * rows / lr * na / 10
    t_sart_new, _ = clock(tomo.sart, proj, th, iterations=1)
    t_tv_new, _ = clock(tomo.tv_reconstruct, proj, th, iterations=10)
    print(f"SIRT/TV iteration (fwd+adj of the stack): sparse {t_new * 1e3:7.1f} ms, legacy "
          f"{t_old * 1e3:8.1f} ms   ratio {t_old / t_new:5.1f}x")
    print(f"SART sweep                              : sparse {t_sart_new * 1e3:7.1f} ms, legacy "
          f"{t_sart_old * 1e3:8.1f} ms   ratio {t_sart_old / t_sart_new:5.1f}x")
    print(f"TV, 10 iterations incl. FBP start       : {t_tv_new:.2f} s")
    t_old_align = 5 * 20 * t_old
    print(f"previous align (5 x 20 SIRT its, legacy operator), estimated: {t_old_align:.0f} s"
          f"   ratio {t_old_align / t_cold:.0f}x")

    # 3. reconstruction error ---------------------------------------------------------------
    print(f"FBP of the aligned stack  : error {rel(tomo.fbp(aligned, th)):.3f}   "
          f"(of the unshifted stack {rel(tomo.fbp(proj, th)):.3f}, of the shifted "
          f"{rel(tomo.fbp(moved, th)):.3f})")
    t, rec = clock(tomo.sirt, aligned, th, iterations=50, nonneg=True)
    print(f"SIRT 50 its, aligned stack: error {rel(rec):.3f}   {t:.2f} s")
    few = np.linspace(0, 140.8, 21)
    pf = np.stack([radon(v, few, circle=True).T for v in vol[:8]], axis=1).astype(np.float32)
    c = tomo.choose_algorithm(pf, few)
    e_fbp = float(np.sqrt(np.mean((tomo.fbp(pf, few, "shepp-logan") - vol[:8])[:, disc] ** 2)))
    t, rec = clock(tomo.tv_reconstruct, pf, few, iterations=100, nonneg=c.nonneg)
    e_tv = float(np.sqrt(np.mean((rec - vol[:8])[:, disc] ** 2)))
    print(f"21 angles over 140.8°: auto picks {c.algorithm} ({c.reason})")
    print(f"  rms error FBP {e_fbp / vrms:.3f}, TV {e_tv / vrms:.3f} ({t:.2f} s, 8 rows)")


if __name__ == "__main__":
    main()
