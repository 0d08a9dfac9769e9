"""Iterative tomographic reconstruction: SIRT, SART and total-variation regularisation.

The solvers keep a stack of slices pixel-major, x (n², rows), and the data ray-major,
p (n_angles·n, rows), so that every projection and back-projection is one sparse-dense matrix
product of :class:`twin.operators.radon.Radon` over all slices at once. They run on NumPy or,
given CuPy arrays, on the GPU (cuSPARSE). :func:`tv_reconstruct` adds total-variation
regularisation, for few angles and missing wedges; :func:`reproject` is the forward projection
of a volume.
"""

from __future__ import annotations

import math

import numpy as np

from twin.core.xp import array_module
from twin.operators.radon import Radon
from twin.tomo.fbp import _check, _circle, fbp


def _rays(sino):
    """(n_angles, rows, n) → (n_angles·n, rows), C-contiguous."""
    xp = array_module(sino)
    na, rows, n = sino.shape
    return xp.ascontiguousarray(sino.transpose(0, 2, 1)).reshape(na * n, rows)


def _pixels(vol):
    """(rows, n, n) → (n², rows), C-contiguous."""
    xp = array_module(vol)
    rows, n, _ = vol.shape
    return xp.ascontiguousarray(vol.reshape(rows, n * n).T)


def _volume(x, n: int):
    """(n², rows) → (rows, n, n)."""
    xp = array_module(x)
    return xp.ascontiguousarray(x.T).reshape(-1, n, n)


def _prepare(sino, theta_deg):
    xp = array_module(sino)
    sino = xp.asarray(sino, dtype=xp.float32)
    theta = np.asarray(theta_deg.get() if hasattr(theta_deg, "get") else theta_deg, dtype=float)
    _check(sino, theta)
    return xp, sino, theta


def _start(x0, shape_cols, xp):
    if x0 is None:
        return xp.zeros(shape_cols, dtype=xp.float32)
    x0 = xp.asarray(x0, dtype=xp.float32)
    if x0.ndim == 2:
        x0 = x0[None]
    return _pixels(x0).copy()


def _iterations(n: int, desc: str, progress: bool):
    """range(n), with a progress bar and an ETA on stderr when ``progress``."""
    if not progress:
        return range(n)
    from tqdm import tqdm

    return tqdm(range(n), desc=desc, unit="it")


class _SIRT:
    """SIRT on pixel-major stacks, with the row and column sums computed once."""

    def __init__(self, A, xp):
        n = A.n
        self.A = A
        self.mask = xp.asarray(_circle(n)).reshape(n * n, 1)
        self.R = 1 / xp.maximum(A.fwd_cols(self.mask), 1e-6)
        ones = xp.ones((A.n_angles * n, 1), dtype=xp.float32)
        self.CM = self.mask / xp.maximum(A.adj_cols(ones), 1e-6)

    def run(self, x, p, iterations: int, nonneg: bool = False, progress: bool = False):
        """Run ``iterations`` SIRT sweeps on a pixel-major stack, updating ``x`` in place.

        Parameters
        ----------
        x : ndarray (n², rows) float32
            Pixel-major start, NumPy or CuPy; overwritten.
        p : ndarray (n_angles·n, rows) float32
            Ray-major projections.
        iterations : int
            Number of sweeps.
        nonneg : bool
            Clip negative values after every sweep.
        progress : bool
            A progress bar with an ETA (stderr).

        Returns
        -------
        ndarray (n², rows)
            ``x`` itself, after the sweeps.
        """
        A = self.A
        xp = array_module(x)
        for _ in _iterations(iterations, "sirt", progress):
            r = A.fwd_cols(x)
            xp.subtract(p, r, out=r)
            r *= self.R
            g = A.adj_cols(r)
            g *= self.CM
            x += g
            if nonneg:
                xp.maximum(x, 0, out=x)
        return x


def sirt(sino, theta_deg, iterations: int = 50, x0=None, nonneg: bool = False,
         progress: bool = False):
    """SIRT: x ← x + C·Aᵀ·R·(p − A x), R and C the inverse row and column sums of A.

    Parameters
    ----------
    sino : ndarray (n_angles, rows, n)
        Projections (CONTRACTS §5), NumPy or CuPy.
    theta_deg : array_like (n_angles,)
        Angles in degrees.
    iterations : int
        Number of sweeps.
    x0 : ndarray (rows, n, n), optional
        Starting volume.
    nonneg : bool
        Clip negative values after every sweep (a positivity prior).
    progress : bool
        A progress bar with an ETA (stderr).

    Returns
    -------
    ndarray (rows, n, n) float32, on the input's device.
    """
    xp, sino, theta = _prepare(sino, theta_deg)
    na, rows, n = sino.shape
    A = Radon(n, theta, xp)
    x = _start(x0, (n * n, rows), xp)
    return _volume(_SIRT(A, xp).run(x, _rays(sino), iterations, nonneg, progress), n)


def sart(sino, theta_deg, iterations: int = 10, relaxation: float = 0.5, x0=None,
         nonneg: bool = False, seed: int = 0, progress: bool = False):
    """SART (Andersen & Kak 1984): one projection angle at a time, in random order.

    Parameters
    ----------
    sino : ndarray (n_angles, rows, n)
        Projections (CONTRACTS §5), NumPy or CuPy.
    theta_deg : array_like (n_angles,)
        Angles in degrees.
    iterations : int
        Number of sweeps over all angles.
    relaxation : float
        Factor in (0, 2) scaling each angle's update.
    x0 : ndarray (rows, n, n) or (n, n), optional
        Starting volume; zeros when None.
    nonneg : bool
        Clip negative values after every angle's update (a positivity prior).
    seed : int
        Seed of the random order of the angles.
    progress : bool
        A progress bar with an ETA (stderr).

    Returns
    -------
    ndarray (rows, n, n) float32, on the input's device.

    Raises
    ------
    TwinInputError
        When ``sino`` is not 3-D, ``theta_deg`` does not hold one angle per projection, or either
        holds NaN or inf.
    """
    xp, sino, theta = _prepare(sino, theta_deg)
    na, rows, n = sino.shape
    A = Radon(n, theta, xp)
    p = _rays(sino)
    mask = xp.asarray(_circle(n)).reshape(n * n, 1)
    ones = xp.ones((n, 1), dtype=xp.float32)
    blocks = A.angle_blocks()
    norms = [(1 / xp.maximum(Ab @ mask, 1e-6), relaxation * mask / xp.maximum(AbT @ ones, 1e-6))
             for Ab, AbT in blocks]
    x = _start(x0, (n * n, rows), xp)
    rng = np.random.default_rng(seed)
    for _ in _iterations(iterations, "sart", progress):
        for a in rng.permutation(na):
            Ab, AbT = blocks[a]
            R, CM = norms[a]
            r = Ab @ x
            xp.subtract(p[a * n:(a + 1) * n], r, out=r)
            r *= R
            g = AbT @ r
            g *= CM
            x += g
            if nonneg:
                xp.maximum(x, 0, out=x)
    return _volume(x, n)


def _grad(u, xp):
    """Forward differences (Neumann: zero across the last row and column) of images stacked on
    the first two axes (n, n, ...): the discrete gradient ∇ of the TV term."""
    return (xp.diff(u, axis=0, append=u[-1:]), xp.diff(u, axis=1, append=u[:, -1:]))


def _grad_adj(pz, px, xp):
    """∇ᵀ = −div for fields whose last row (pz) and column (px) are zero, as ∇'s are."""
    return -((pz - xp.roll(pz, 1, axis=0)) + (px - xp.roll(px, 1, axis=1)))


def tv_reconstruct(sino, theta_deg, weight: float = 0.01, iterations: int = 100, x0=None,
                   nonneg: bool = False, progress: bool = False):
    """min ½‖A x − p‖² + λ·TV(x) (isotropic TV, x in the reconstruction circle, optionally
    x ≥ 0) by the primal–dual algorithm of Chambolle & Pock (2011), as Sidky, Jørgensen & Pan
    (2012) apply it to tomography.

    K = [A; μ∇] with μ = ‖A‖/√8, so that both blocks have the same norm and ‖K‖ ≤ √2·‖A‖
    (‖A‖ from the power method, ‖∇‖² ≤ 8); steps σ = τ = 0.99/‖K‖. Per iteration: the data's
    dual q ← (q + σ(A x̄ − p))/(1 + σ), the gradient's dual z projected onto |z| ≤ λ/μ, then
    x ← P(x − τ(Aᵀq + μ∇ᵀz)) and x̄ = 2x − x_old. On seed 002's 21 angles over 140.8° it
    reaches in 50 iterations a lower error (rms 0.066 against a 0.133 FBP) than plain
    gradient descent on the smoothed TV did in 150 (0.073).

    Parameters
    ----------
    sino, theta_deg, x0, nonneg
        As :func:`sirt`; the start is the FBP when ``x0`` is None.
    weight : float
        λ = ``weight`` × (the data term's scale: ‖AᵀA‖ × the start's mean |x|). The default
        0.01 was chosen on the IC phantom of :mod:`twin.tomo.angles` (48², 80 iterations,
        positivity): PCC 0.993 and metal Dice 0.995 at 21 angles over 140.8° (FBP 0.942 /
        0.955), 0.859 / 0.604 at 5 angles (FBP 0.648 / 0.512); 0.05 over-smooths once the
        solver converges (0.936 / 0.885 at 21 angles).
    iterations : int
        Primal–dual iterations.
    progress : bool
        A progress bar with an ETA (stderr).

    Returns
    -------
    ndarray (rows, n, n) float32.
    """
    xp, sino, theta = _prepare(sino, theta_deg)
    na, rows, n = sino.shape
    A = Radon(n, theta, xp)
    p = _rays(sino)
    mask = xp.asarray(_circle(n)).reshape(n * n, 1)
    L = _norm_sq(A, mask, n, xp)                                          # ‖A‖²
    if x0 is None:
        x0 = xp.asarray(fbp(_to_numpy(sino), theta))
    x = _pixels(xp.asarray(x0, dtype=xp.float32)) * mask
    lam = weight * L * float(xp.mean(xp.abs(x)) + 1e-12)
    x = _primal_dual(A, p, x, mask, L, lam, (n, rows), iterations, nonneg, progress, xp)
    return _volume(x, n)


def _norm_sq(A: Radon, mask, n: int, xp) -> float:
    """‖A‖² on the reconstruction circle by 15 steps of the power method from a fixed random
    start (seed 0: a reconstruction does not depend on the call's global state).

    Parameters
    ----------
    A : Radon
        The projector of the reconstruction's angles.
    mask : (n·n, 1) array
        1 inside the reconstruction circle, 0 outside.
    n : int
        Side of a slice, pixels.
    xp : module
        NumPy or CuPy.

    Returns
    -------
    float
        The largest eigenvalue of Aᵀ A restricted to the circle.
    """
    v = xp.asarray(np.random.default_rng(0).standard_normal((n * n, 1)).astype(np.float32))
    for _ in range(15):
        v = A.adj_cols(A.fwd_cols(v)) * mask
        v /= xp.linalg.norm(v)
    return float(xp.linalg.norm(A.adj_cols(A.fwd_cols(v)) * mask))


def _primal_dual(A: Radon, p, x, mask, L: float, lam: float, shape: tuple[int, int],
                 iterations: int, nonneg: bool, progress: bool, xp):
    """The Chambolle–Pock iterations of :func:`tv_reconstruct`.

    Parameters
    ----------
    A : Radon
        The projector.
    p : (angles·n, rows) array
        The data as rays (:func:`_rays`).
    x : (n·n, rows) float32 array
        The start, zero outside the circle.
    mask : (n·n, 1) array
        1 inside the reconstruction circle.
    L : float
        ‖A‖² (:func:`_norm_sq`).
    lam : float
        The TV weight λ.
    shape : (int, int)
        (n, rows): the side of a slice and the number of slices.
    iterations : int
    nonneg, progress : bool
        As :func:`tv_reconstruct`.
    xp : module
        NumPy or CuPy.

    Returns
    -------
    (n·n, rows) float32 array
        The last primal iterate.
    """
    n, rows = shape
    mu = math.sqrt(L / 8)
    sigma = tau = 0.99 / math.sqrt(2 * L)
    bound = lam / mu
    q = xp.zeros_like(p)
    zz = xp.zeros((n, n, rows), dtype=xp.float32)
    zx = xp.zeros_like(zz)
    xb = x.copy()
    for _ in _iterations(iterations, "tv", progress):
        r = A.fwd_cols(xb)
        r -= p
        q += sigma * r
        q /= 1 + sigma
        gz, gx = _grad(xb.reshape(n, n, rows), xp)
        zz += (sigma * mu) * gz
        zx += (sigma * mu) * gx
        scale = xp.maximum(xp.sqrt(zz * zz + zx * zx) / bound, 1)
        zz /= scale
        zx /= scale
        step = A.adj_cols(q)
        step += mu * _grad_adj(zz, zx, xp).reshape(n * n, rows)
        x_old = x
        x = x - tau * step
        x *= mask
        if nonneg:
            xp.maximum(x, 0, out=x)
        xb = 2 * x - x_old
    return x


def _to_numpy(a) -> np.ndarray:
    return a.get() if hasattr(a, "get") else np.asarray(a)



def reproject(volume, theta_deg) -> np.ndarray:
    """(n_angles, rows, n) projections of a (rows, n, n) volume (CONTRACTS §5), NumPy or CuPy.

    Parameters
    ----------
    volume : ndarray (rows, n, n)
        The volume, NumPy or CuPy.
    theta_deg : array_like (n_angles,)
        Angles in degrees.

    Returns
    -------
    ndarray (n_angles, rows, n) float32, on the volume's array module.
    """
    xp = array_module(volume)
    volume = xp.asarray(volume, dtype=xp.float32)
    n = volume.shape[-1]
    A = Radon(n, theta_deg, xp)
    return _unrays(A.fwd_cols(_pixels(volume)), len(A.angles_deg), n)


def _unrays(p, na: int, n: int):
    """(n_angles·n, rows) → (n_angles, rows, n)."""
    xp = array_module(p)
    return xp.ascontiguousarray(p.reshape(na, n, -1).transpose(0, 2, 1))
