"""Projection alignment and the rotation axis (CONTRACTS §5 geometry).

* :func:`align_projections` — joint iterative reconstruction and reprojection (Gürsoy et al.,
  Sci. Rep. 7, 11818, 2017): reconstruct, reproject, register each projection to its
  reprojection, shift, repeat; registration (:func:`register_stack`) and shifting
  (:func:`shift_stack`) are batched over the stack, and the shifts are reported in the
  volume's gauge (its free translation removed).
* :func:`find_center` — the rotation axis by the sharpest reconstruction of a slice.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.fft as sfft

from twin.core.errors import TwinInputError
from twin.core.xp import WORKERS, array_module
from twin.operators.radon import Radon
from twin.tomo.choice import choose_algorithm
from twin.tomo.fbp import _circle, fbp
from twin.tomo.iterative import _SIRT, _pixels, _prepare, _rays, _to_numpy, _unrays


def find_center(sino, theta_deg, row: int | None = None, search_px: float = 20.0,
                step: float = 0.5) -> float:
    """Rotation-axis column that gives the sharpest FBP of one row (largest gradient energy
    over the reconstruction's total variation, a scale-free sharpness).

    Parameters
    ----------
    sino : ndarray (n_angles, rows, n)
        Projections (CONTRACTS §5).
    theta_deg : array_like (n_angles,)
        Angles in degrees.
    row : int or None
        The detector row reconstructed; None: the middle one.
    search_px : float
        Half-width of the searched range of columns around the detector's centre (px).
    step : float
        Spacing of the searched columns (px).

    Returns
    -------
    float
        The column of the rotation axis (px).
    """
    sino = np.asarray(sino, dtype=np.float32)
    n = sino.shape[-1]
    z = sino.shape[1] // 2 if row is None else row
    one = sino[:, z:z + 1, :]
    best, best_score = n // 2, -np.inf
    for c in np.arange(n // 2 - search_px, n // 2 + search_px + step / 2, step):
        img = fbp(one, theta_deg, "shepp-logan", center=c)[0] * _circle(n)
        gz, gx = np.gradient(img)
        score = float(np.sum(gz ** 2 + gx ** 2) / (np.sum(np.abs(gz) + np.abs(gx)) ** 2 + 1e-30)
                      * img.size)
        if score > best_score:
            best, best_score = c, score
    return float(best)



def _fft2(a, inverse: bool = False):
    xp = array_module(a)
    if xp is np:
        f = sfft.ifft2 if inverse else sfft.fft2
        return f(a, axes=(-2, -1), workers=WORKERS)
    return (xp.fft.ifft2 if inverse else xp.fft.fft2)(a, axes=(-2, -1))  # pragma: no cover


def register_stack(ref, mov, upsample: int = 10):
    """Shifts (B, 2) (dy, dx) in pixels that, applied to each ``mov[b]``, best match ``ref[b]``.

    The batched form of :func:`twin.analysis.alignment.register_shift`: the cross-correlation
    peak by FFT, refined by a local upsampled DFT on a ±1 px neighbourhood at 1/``upsample``
    px (Guizar-Sicairos, Thurman & Fienup, Opt. Lett. 33, 156, 2008), for all B pairs at once.

    Parameters
    ----------
    ref, mov : ndarray (B, H, W)
        Reference and moving images, NumPy or CuPy.
    upsample : int
        Sub-pixel refinement factor (1: whole pixels).

    Returns
    -------
    ndarray (B, 2)
        (dy, dx) in px for each pair.
    """
    xp = array_module(ref)
    F = _fft2(ref) * xp.conj(_fft2(mov))
    B, H, W = F.shape
    cc = xp.abs(_fft2(F, inverse=True)).reshape(B, -1)
    flat = xp.argmax(cc, axis=1)
    py, px = (flat // W).astype(float), (flat % W).astype(float)
    py = xp.where(py > H // 2, py - H, py)
    px = xp.where(px > W // 2, px - W, px)
    if upsample <= 1:
        return xp.stack([py, px], axis=1)
    # the true peak lies within ±0.5 px of the integer one: a ±1 px window is enough
    m = int(math.ceil(1.0 * upsample))
    offs = xp.arange(-m, m + 1) / upsample
    ky = xp.asarray(np.fft.fftfreq(H))
    kx = xp.asarray(np.fft.fftfreq(W))
    c64 = xp.complex64
    ey = xp.exp(2j * np.pi * (py[:, None] + offs)[:, :, None] * ky[None, None, :]).astype(c64)
    ex = xp.exp(2j * np.pi * kx[None, :, None] * (px[:, None] + offs)[:, None, :]).astype(c64)
    # einsum's own loops: NumPy's stacked complex matmul (and BLAS threads on a loaded
    # machine) are many times slower for these small (L × H × W) products
    local = xp.einsum("blh,bhm->blm", ey, xp.einsum("bhw,bwl->bhl", F.astype(c64), ex))
    local = xp.abs(local).reshape(B, -1)
    k = xp.argmax(local, axis=1)
    L = 2 * m + 1
    return xp.stack([py + offs[k // L], px + offs[k % L]], axis=1)


def shift_stack(stack, shifts):
    """``stack`` (B, H, W) real, each image translated by ``shifts[b]`` (dy, dx) px with a
    Fourier phase ramp (periodic), as :func:`twin.analysis.alignment.fourier_shift`.

    Parameters
    ----------
    stack : ndarray (B, H, W)
        Real images, NumPy or CuPy.
    shifts : array_like (B, 2)
        (dy, dx) in px for each image.

    Returns
    -------
    ndarray (B, H, W) float32
        The shifted images.
    """
    xp = array_module(stack)
    B, H, W = stack.shape
    shifts = xp.asarray(shifts, dtype=float)
    ky = xp.asarray(np.fft.fftfreq(H))[None, :, None]
    kx = xp.asarray(np.fft.fftfreq(W))[None, None, :]
    ramp = xp.exp(-2j * np.pi * (ky * shifts[:, 0, None, None] + kx * shifts[:, 1, None, None]))
    return _fft2(_fft2(stack) * ramp.astype(xp.complex64), inverse=True).real.astype(xp.float32)


def _gauge_modes(theta_deg, xp):
    """Orthonormal (n_angles, 3) basis of the column shifts that move the volume, not the data:
    1 (with the row shift's mean: the volume's height and the axis offset, fixed at the
    centre by CONTRACTS §5) and cos θ, sin θ (a translation within the slice plane)."""
    th = np.deg2rad(np.asarray(theta_deg, dtype=float))
    M = np.stack([np.ones_like(th), np.cos(th), np.sin(th)], axis=1)
    q, r = np.linalg.qr(M)
    keep = np.abs(np.diag(r)) > 1e-6 * np.abs(r).max()     # 0° and 180° alone: fewer modes
    return xp.asarray(q[:, keep])


def _remove_gauge(shifts, q):
    """``shifts`` (n_angles, 2) less their mean row shift and their column shifts' projection
    on the volume's translations ``q``: the reconstruction's position is free, so the shifts
    are reported in the gauge where the volume sits where the unshifted data put it."""
    out = shifts.copy()
    out[:, 0] -= out[:, 0].mean()
    out[:, 1] -= q @ (q.T @ out[:, 1])
    return out


def align_projections(proj, theta_deg, iterations: int = 6, method: str = "auto",
                      inner_iterations: int = 10, upsample: int = 10,
                      progress: bool = False, tol_px: float = 0.05,
                      relaxation: tuple[float, float] = (1.0, 1.5)
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Joint iterative reconstruction and reprojection (Gürsoy et al., Sci. Rep. 7, 11818, 2017).

    Reconstruct, reproject, register every projection to its reprojection, shift, repeat. The
    SIRT volume is carried from one outer iteration to the next (warm start), and projection,
    registration and shifting are batched over the whole stack.

    Parameters
    ----------
    proj : ndarray (n_angles, rows, n)
        Projections (CONTRACTS §5), NumPy or CuPy.
    theta_deg : array_like (n_angles,)
        Angles in degrees.
    iterations : int
        Outer iterations (at most; stops when no shift update exceeds ``tol_px``).
    method : {"auto", "sirt", "fbp"}
        Reconstruction in each outer iteration; "auto": FBP where :func:`choose_algorithm`
        would use it (enough angles, no missing wedge), else warm-started SIRT.
    inner_iterations : int
        SIRT sweeps per outer iteration.
    upsample : int
        Sub-pixel registration factor (1/upsample px).
    progress : bool
        Print the mean shift update of each iteration.
    tol_px : float
        Stop when the largest shift update is below this (px).
    relaxation : (float, float)
        Factors on each (row, column) shift update. The column shifts converge slowly (each
        reconstruction from still-misaligned data is blurred along the detector), so their
        update is over-relaxed by default; 2 no longer converges (benchmarks/bench_tomo.py).

    Returns
    -------
    aligned : ndarray (n_angles, rows, n) float32
        The shifted projections.
    shifts : ndarray (n_angles, 2)
        The shifts (rows, cols) in px applied to each projection, less the volume's free
        translation: mean row shift zero, no column-shift component along 1, cos θ, sin θ.
    """
    xp, proj, theta = _prepare(proj, theta_deg)
    if method == "auto":
        method = "fbp" if choose_algorithm(proj, theta).algorithm == "fbp" else "sirt"
    if method not in ("sirt", "fbp"):
        raise TwinInputError("method", method, "allowed: auto, sirt, fbp")
    return _align(proj, theta, method, iterations, inner_iterations, upsample, tol_px,
                  relaxation, progress, xp)


def _align(proj, theta, method: str, iterations: int, inner_iterations: int, upsample: int,
           tol_px: float, relaxation: tuple[float, float], progress: bool, xp):
    """The outer iterations of :func:`align_projections` (reconstruct, reproject, register,
    shift) once its arguments are checked.

    Parameters
    ----------
    proj : (n_angles, rows, n) float32 array
        The projections on the array module ``xp``.
    theta : (n_angles,) ndarray
        Angles, degrees.
    method : {"sirt", "fbp"}
        The reconstruction of each outer iteration.
    iterations, inner_iterations, upsample, tol_px, relaxation, progress
        As :func:`align_projections`.
    xp : module
        NumPy or CuPy.

    Returns
    -------
    aligned, shifts
        As :func:`align_projections`.
    """
    na, rows, n = proj.shape
    A = Radon(n, theta, xp)
    solver = _SIRT(A, xp) if method == "sirt" else None
    x = xp.zeros((n * n, rows), dtype=xp.float32)
    shifts = xp.zeros((na, 2))
    gauge = _gauge_modes(theta, xp)
    relax = xp.asarray(np.asarray(relaxation, dtype=float))
    aligned = proj.copy()
    for it in range(iterations):
        if method == "sirt":
            x = solver.run(x, _rays(aligned), inner_iterations)
        else:
            x = _pixels(xp.asarray(fbp(_to_numpy(aligned), theta, "shepp-logan")))
        rep = _unrays(A.fwd_cols(x), na, n)
        step = register_stack(rep, aligned, upsample)
        step = _remove_gauge(shifts + relax * step, gauge) - shifts
        shifts += step
        aligned = shift_stack(proj, shifts)
        biggest = float(xp.abs(step).max())
        if progress:
            print(f"alignment iteration {it + 1}: mean |shift update| "
                  f"{float(xp.mean(xp.abs(step))):.3f} px, largest {biggest:.3f} px")
        if biggest < tol_px:
            break
    return aligned, shifts
