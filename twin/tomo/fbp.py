"""Filtered back-projection by direct Fourier gridding, in the geometry of CONTRACTS §5.

:func:`fbp` ("gridrec", Dowd et al. 1999; Marone & Stampanoni 2012): each projection's 1D FFT
is a central slice of the slice's 2D FFT (Fourier slice theorem); the polar samples, weighted by
the ramp |ρ|·Δρ·Δθ and a filter window, are spread onto an oversampled Cartesian grid with a
Kaiser–Bessel kernel (one sparse matrix for all rows), inverse-FFT'd, cropped and divided by the
kernel's transform. tomopy (gridrec) and astra-toolbox (FBP_CUDA/FBP on the CPU) are used when
``backend`` names them and they are importable.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import scipy.fft as sfft
import scipy.sparse as sp
from scipy.special import i0

from twin.core.errors import TwinInputError
from twin.core.xp import WORKERS, array_module

FILTERS = ("ramp", "shepp-logan", "cosine", "hamming", "hann")


def _window(name: str, rho: np.ndarray) -> np.ndarray:
    """Filter window on |ρ| ≤ 0.5 cycles/pixel (ρ in cycles per pixel)."""
    r = np.abs(rho) / 0.5
    if name == "ramp":
        return np.ones_like(r)
    if name == "shepp-logan":
        return np.sinc(r / 2)
    if name == "cosine":
        return np.cos(np.pi * r / 2)
    if name == "hamming":
        return 0.54 + 0.46 * np.cos(np.pi * r)
    if name == "hann":
        return 0.5 * (1 + np.cos(np.pi * r))
    raise TwinInputError("--filter", name, f"allowed: {', '.join(FILTERS)}")


def _discrete_ramp(m: int) -> np.ndarray:
    """The ramp |ρ| of a band-limited, pixel-sampled projection (Kak & Slaney, ch. 3): the
    transform of h(0) = 1/4, h(k) = −1/(πk)² for odd k, 0 for even k. Unlike |ρ| sampled on
    the grid it is right at and near ρ = 0, so the reconstruction's mean is right."""
    k = np.fft.fftfreq(m, 1 / m)
    h = np.zeros(m)
    h[0] = 0.25
    odd = (k % 2) == 1
    h[odd] = -1 / (np.pi * k[odd]) ** 2
    return np.real(np.fft.fft(h))


def _kb(d: np.ndarray, width: int, beta: float) -> np.ndarray:
    x = 2 * d / width
    out = np.zeros_like(d, dtype=np.float64)
    inside = np.abs(x) <= 1
    out[inside] = i0(beta * np.sqrt(1 - x[inside] ** 2))
    return out


@lru_cache(maxsize=8)
def _gridding_matrix(n: int, angles_key: tuple, filt: str, width: int = 4,
                     oversample: int = 2):
    """Sparse (M², n_angles·m) matrix from projection FFT samples to the Cartesian grid, and
    the 1D deapodisation profile over the n central image pixels."""
    angles = np.deg2rad(np.array(angles_key))
    m = M = oversample * n
    beta = np.pi * math.sqrt((width / oversample) ** 2 * (oversample - 0.5) ** 2 - 0.8)
    K = np.fft.fftfreq(m, 1 / m)                                  # integer frequencies
    rho = K / m
    w = _discrete_ramp(m) / m                                     # ≈ |ρ|·Δρ
    w = w * _window(filt, rho) * (np.pi / len(angles))            # × filter × Δθ
    pu = K[None, :] * np.cos(angles)[:, None]                    # (n_angles, m) grid units
    pv = -K[None, :] * np.sin(angles)[:, None]
    offs = np.arange(width) - width // 2 + 1                       # the W cells around pos
    cu = (np.floor(pu)[..., None] + offs).astype(np.int64)        # (a, m, W)
    cv = (np.floor(pv)[..., None] + offs).astype(np.int64)
    ku = _kb(cu - pu[..., None], width, beta)
    kv = _kb(cv - pv[..., None], width, beta)
    norm = _kb(np.arange(-width, width + 1, dtype=float), width, beta).sum()
    vals = (ku[..., :, None] * kv[..., None, :]) / norm ** 2 * w[None, :, None, None]
    rows = (np.mod(cv, M)[..., None, :] * M + np.mod(cu, M)[..., :, None])  # (a, m, W, W)
    cols = np.broadcast_to(np.arange(len(angles) * m).reshape(len(angles), m)[..., None, None],
                           rows.shape)
    G = sp.csr_matrix((vals.ravel().astype(np.float32), (rows.ravel(), cols.ravel())),
                      shape=(M * M, len(angles) * m))
    # deapodisation: the image-domain profile of the kernel, sampled finely and summed
    fine = np.linspace(-width / 2, width / 2, 64 * width + 1)
    kf = _kb(fine, width, beta) / norm
    x = np.arange(n) - n // 2
    deapod = np.trapezoid(kf[None, :] * np.cos(2 * np.pi * fine[None, :] * x[:, None] / M),
                          fine, axis=1)
    return G, deapod


def fbp(sino: np.ndarray, theta_deg, filter_name: str = "ramp", center: float | None = None,
        backend: str = "twin", chunk_rows: int = 16) -> np.ndarray:
    """Filtered back-projection: (n_angles, rows, n) → (rows, n, n) float32 (see module doc).

    Parameters
    ----------
    sino : ndarray (n_angles, rows, n) or (n_angles, n)
        Projections (CONTRACTS §5); a 2D sinogram gives one (n, n) slice.
    theta_deg : array_like (n_angles,)
        Angles in degrees.
    filter_name : str
        One of :data:`FILTERS`.
    center : float or None
        The rotation axis's column (default n//2, CONTRACTS §5).
    backend : {"twin", "tomopy", "astra"}
        Twin's gridding, or tomopy's gridrec / astra's FBP where they are installed.
    chunk_rows : int
        Rows transformed together (memory against speed).

    Returns
    -------
    ndarray (rows, n, n) float32
        The slices ((n, n) for a 2D sinogram).
    """
    sino = np.asarray(sino, dtype=np.float32)
    if sino.ndim == 2:
        return fbp(sino[:, None, :], theta_deg, filter_name, center, backend, chunk_rows)[0]
    theta = np.asarray(theta_deg, dtype=float)
    _check(sino, theta)
    n_a, rows, n = sino.shape
    if backend == "tomopy":
        return _fbp_tomopy(sino, theta, filter_name, center)
    if backend == "astra":
        return _fbp_astra(sino, theta, filter_name, center)
    if backend != "twin":
        raise TwinInputError("--backend", backend, "allowed: twin, tomopy, astra")
    c = n // 2
    delta = 0.0 if center is None else float(center) - c
    if abs(delta) > n / 2:
        raise TwinInputError("center", center, f"must lie on the detector (0 to {n - 1})")
    G, deapod = _gridding_matrix(n, tuple(np.round(theta, 9)), filter_name)
    m = M = 2 * n
    K = np.fft.fftfreq(m, 1 / m)
    phase = np.exp(2j * np.pi * K * delta / m).astype(np.complex64)   # axis offset
    out = np.empty((rows, n, n), np.float32)
    cro = slice(M // 2 - n // 2, M // 2 - n // 2 + n)
    for r0 in range(0, rows, chunk_rows):
        r1 = min(rows, r0 + chunk_rows)
        q = np.zeros((n_a, r1 - r0, m), np.float32)
        # the detector's centre pixel c sits at index 0: phases refer to s = 0
        q[:, :, :n - c] = sino[:, r0:r1, c:]
        q[:, :, m - c:] = sino[:, r0:r1, :c]
        P = sfft.fft(q, axis=-1, workers=WORKERS) * phase           # (a, r, m)
        P = np.ascontiguousarray(P.transpose(0, 2, 1)).reshape(n_a * m, r1 - r0)
        grid = G @ P.real.astype(np.float32) + 1j * (G @ P.imag.astype(np.float32))
        grid = grid.T.reshape(r1 - r0, M, M)
        img = sfft.ifft2(grid, workers=WORKERS).real * (M * M)
        img = np.fft.fftshift(img, axes=(-2, -1))[:, cro, cro]
        out[r0:r1] = img / deapod[None, :, None] / deapod[None, None, :]
    return out


def _fbp_tomopy(sino, theta, filt, center):  # pragma: no cover - needs tomopy
    try:
        import tomopy
    except ImportError:
        raise TwinInputError("--backend", "tomopy", "tomopy is not installed (conda only)"
                             ) from None
    n = sino.shape[-1]
    rec = tomopy.recon(sino, np.deg2rad(theta), center=center if center is not None else n // 2,
                       algorithm="gridrec", filter_name={"ramp": "ramlak"}.get(filt, filt))
    return rec.astype(np.float32)


def _fbp_astra(sino, theta, filt, center):  # pragma: no cover - needs astra
    try:
        import astra
    except ImportError:
        raise TwinInputError("--backend", "astra", "astra-toolbox is not installed") from None
    n_a, rows, n = sino.shape
    out = np.empty((rows, n, n), np.float32)
    c = n // 2 if center is None else float(center)
    # CONTRACTS §5 rotates about pixel n//2, astra about the array's geometric centre: shift
    # the volume window by half a pixel and the detector by the axis offset; astra's angles
    # and rows run the other way (matched to scikit-image's radon on a Shepp-Logan phantom)
    vol = astra.create_vol_geom(n, n, -n // 2 - 0.5, n - n // 2 - 0.5, -n // 2 - 0.5,
                                n - n // 2 - 0.5)
    proj = astra.create_proj_geom("parallel", 1.0, n, -np.deg2rad(theta))
    pid = astra.create_projector("linear", proj, vol)
    shift = (n / 2 - 0.5) - c
    k = np.fft.fftfreq(n)
    ramp = np.exp(-2j * np.pi * k * shift)
    for z in range(rows):
        s_z = np.fft.ifft(np.fft.fft(sino[:, z, :], axis=-1) * ramp, axis=-1).real
        sid = astra.data2d.create("-sino", proj, s_z.astype(np.float32))
        rid = astra.data2d.create("-vol", vol)
        cfg = astra.astra_dict("FBP")
        cfg.update(ProjectorId=pid, ProjectionDataId=sid, ReconstructionDataId=rid,
                   FilterType={"ramp": "ram-lak"}.get(filt, filt))
        alg = astra.algorithm.create(cfg)
        astra.algorithm.run(alg)
        out[z] = np.flipud(astra.data2d.get(rid))
        astra.algorithm.delete(alg)
        astra.data2d.delete([sid, rid])
    astra.projector.delete(pid)
    return out


def _check(sino: np.ndarray, theta: np.ndarray) -> None:
    if sino.ndim != 3:
        raise TwinInputError("/exchange/data", sino.shape, "must be (n_angles, rows, cols)")
    if len(theta) != sino.shape[0]:
        raise TwinInputError("/exchange/theta", len(theta),
                             f"must hold one angle per projection ({sino.shape[0]})")
    xp = array_module(sino)
    if not (bool(xp.all(xp.isfinite(sino))) and np.all(np.isfinite(theta))):
        raise TwinInputError("/exchange/data", "NaN/inf", "projections and angles must be finite")


def _circle(n: int) -> np.ndarray:
    y, x = np.mgrid[:n, :n] - n // 2
    return (x * x + y * y <= (n // 2) ** 2).astype(np.float32)
