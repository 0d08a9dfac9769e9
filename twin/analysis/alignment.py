"""What phase retrieval cannot fix, removed before any metric compares a reconstruction with
its ground truth.

Phase retrieval cannot fix a global phase, a linear phase ramp (a shift of the far field) or a
sub-pixel translation of the whole image; :func:`align` removes all three. Also here: sub-pixel
registration (:func:`register_shift`, :func:`fourier_shift`), least-squares phase unwrapping
(:func:`unwrap_phase`) and its residues, the removal of an image's own plane
(:func:`deplane`), and the common centre crop of two images (:func:`crop_common`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.fft as _sfft

__all__ = ["Alignment", "align", "crop_common", "deplane", "fourier_shift", "register_shift",
           "residue_density", "unwrap_phase"]


def register_shift(ref: np.ndarray, mov: np.ndarray, upsample: int = 20) -> np.ndarray:
    """Shift (dy, dx) in pixels that, applied to ``mov``, best matches ``ref`` (sub-pixel).

    Cross-correlation peak by FFT, refined by a local upsampled DFT around the peak
    (Guizar-Sicairos, Thurman & Fienup, Opt. Lett. 33, 156, 2008).

    Parameters
    ----------
    ref, mov : ndarray (H, W)
        Real or complex images of the same shape (periodic boundaries).
    upsample : int
        Refinement factor: the shift is found to 1/``upsample`` pixel within ±1.5 pixels of
        the integer peak; ≤ 1 gives the integer peak.

    Returns
    -------
    numpy.ndarray
        (2,) float (dy, dx), pixels (the integer peak taken in the centred range, then
        refined); :func:`fourier_shift` of ``mov`` by it matches ``ref``.
    """
    F = np.fft.fft2(ref) * np.conj(np.fft.fft2(mov))
    cc = np.fft.ifft2(F)
    peak = np.array(np.unravel_index(np.argmax(np.abs(cc)), cc.shape), dtype=float)
    shape = np.array(cc.shape)
    peak = np.where(peak > shape // 2, peak - shape, peak)
    if upsample <= 1:
        return peak
    # local DFT on a 1.5-pixel neighbourhood at 1/upsample pixel spacing
    span = 1.5
    m = int(math.ceil(span * upsample))
    offs = (np.arange(-m, m + 1) / upsample)
    ky = np.fft.fftfreq(cc.shape[0])
    kx = np.fft.fftfreq(cc.shape[1])
    ey = np.exp(2j * np.pi * np.outer(peak[0] + offs, ky))
    ex = np.exp(2j * np.pi * np.outer(kx, peak[1] + offs))
    local = ey @ F @ ex
    i, j = np.unravel_index(np.argmax(np.abs(local)), local.shape)
    return np.array([peak[0] + offs[i], peak[1] + offs[j]])


def fourier_shift(a: np.ndarray, shift) -> np.ndarray:
    """``a`` translated by ``shift`` (dy, dx) pixels with a Fourier phase ramp (periodic).

    Parameters
    ----------
    a : ndarray (H, W)
        Real or complex image.
    shift : (2,) float
        Shift (dy, dx), pixels; positive moves the content towards larger indices.

    Returns
    -------
    numpy.ndarray
        (H, W) complex128 for complex input, float64 (the real part) for real input.
    """
    ky = np.fft.fftfreq(a.shape[0])[:, None]
    kx = np.fft.fftfreq(a.shape[1])[None, :]
    ramp = np.exp(-2j * np.pi * (ky * shift[0] + kx * shift[1]))
    out = np.fft.ifft2(np.fft.fft2(a) * ramp)
    return out if np.iscomplexobj(a) else out.real


@dataclass(frozen=True)
class Alignment:
    aligned: np.ndarray     # the reconstruction, aligned to the reference
    shift_px: np.ndarray    # (dy, dx) applied
    phase_offset: float     # removed global phase
    phase_ramp: tuple[float, float]  # removed ramp, radians per pixel (y, x)


def _ramp_frequency(d: np.ndarray, upsample: int = 20) -> np.ndarray:
    """Frequency (rad/px, y then x) of the strongest plane wave in ``d``: the peak of its DFT,
    refined by a local upsampled DFT. Finds a phase ramp of any slope, wraps or not."""
    F = np.fft.fft2(d)
    peak = np.array(np.unravel_index(np.argmax(np.abs(F)), F.shape), dtype=float)
    shape = np.array(F.shape)
    peak = np.where(peak > shape // 2, peak - shape, peak)
    m = int(math.ceil(1.5 * upsample))
    offs = np.arange(-m, m + 1) / upsample
    yy = np.arange(d.shape[0])
    xx = np.arange(d.shape[1])
    ey = np.exp(-2j * np.pi * np.outer(peak[0] + offs, yy) / d.shape[0])
    ex = np.exp(-2j * np.pi * np.outer(xx, peak[1] + offs) / d.shape[1])
    local = ey @ d @ ex
    i, j = np.unravel_index(np.argmax(np.abs(local)), local.shape)
    return 2 * np.pi * np.array([(peak[0] + offs[i]) / d.shape[0],
                                 (peak[1] + offs[j]) / d.shape[1]])


def _fit_plane(out, ref, w, yy, xx, total):
    """Remove the weighted least-squares plane of the wrapped phase of out·conj(ref)."""
    for _ in range(3):
        d = out * np.conj(ref)
        c0 = np.angle(np.sum(d * w))
        ph = np.angle(d * np.exp(-1j * c0)) + c0
        ww = (w * np.abs(ref) * np.abs(out)).ravel()
        A = np.stack([np.ones(ph.size), yy.ravel(), xx.ravel()], axis=1) * ww[:, None]
        coef, *_ = np.linalg.lstsq(A, ph.ravel() * ww, rcond=None)
        out = out * np.exp(-1j * (coef[0] + coef[1] * yy + coef[2] * xx))
        total = total + coef
    return out, total


def align(recon: np.ndarray, ref: np.ndarray, weight: np.ndarray | None = None) -> Alignment:
    """Align a complex reconstruction to a reference of the same shape: the linear phase ramp
    (the peak of the spectrum of recon·conj(ref)), the sub-pixel shift (cross-correlation of
    the complex fields, blind to a global phase and to wraps; both with ``weight``), then the
    global phase and the ramp again (least squares on the wrapped phase of recon·conj(ref)
    over the whole region, weighted by the amplitudes only).

    Nothing is unwrapped, so a strong phase (many 2π) registers as well as a weak one.

    Parameters
    ----------
    recon : array_like (H, W) complex
        The reconstruction.
    ref : array_like (H, W) complex
        The reference (ground truth).
    weight : array_like (H, W), optional
        Weights of the ramp search and the registration (e.g. the illuminated region); uniform
        when None.

    Returns
    -------
    Alignment
        The aligned reconstruction (complex64), the shift applied (dy, dx pixels), the removed
        global phase (rad) and ramp (rad per pixel, y then x, about the image centre).
    """
    recon = np.asarray(recon, dtype=np.complex128)
    ref = np.asarray(ref, dtype=np.complex128)
    w = np.ones(ref.shape) if weight is None else np.asarray(weight, dtype=float)
    yy, xx = np.mgrid[:ref.shape[0], :ref.shape[1]].astype(float)
    yy -= yy.mean()
    xx -= xx.mean()
    k = _ramp_frequency(recon * np.conj(ref) * w)
    total = np.array([0.0, k[0], k[1]])
    out = recon * np.exp(-1j * (k[0] * yy + k[1] * xx))
    out, total = _fit_plane(out, ref, w, yy, xx, total)
    shift = register_shift(ref * w, out * w)
    if np.any(shift != 0):
        out = fourier_shift(out, shift)
    # the offset and ramp that fit the whole region, weighted as every metric is (uniformly)
    out, total = _fit_plane(out, ref, np.ones(ref.shape), yy, xx, total)
    return Alignment(out.astype(np.complex64), shift, float(total[0]),
                     (float(total[1]), float(total[2])))


def deplane(ph: np.ndarray, weight: np.ndarray | None = None) -> np.ndarray:
    """``ph`` less its own (weighted) least-squares plane a + b·y + c·x.

    Parameters
    ----------
    ph : float (H, W)
        An unwrapped phase, radians.
    weight : float (H, W), optional
        Least-squares weights (default uniform).

    Returns
    -------
    float (H, W)
        The residual, radians; its (weighted) mean and slopes are zero. Each image is deplaned
        by its own fit, so nothing of another image's trend enters it (a flat image stays flat).
    """
    ph = np.asarray(ph, dtype=float)
    yy, xx = np.mgrid[:ph.shape[0], :ph.shape[1]].astype(float)
    A = np.stack([np.ones(ph.size), yy.ravel() - yy.mean(), xx.ravel() - xx.mean()], axis=1)
    w = np.ones(ph.size) if weight is None else np.sqrt(np.asarray(weight, float).ravel())
    coef, *_ = np.linalg.lstsq(A * w[:, None], ph.ravel() * w, rcond=None)
    return ph - (A @ coef).reshape(ph.shape)


def _wrap(a):
    """Angles ``a`` (radians) wrapped to [−π, π)."""
    return (a + np.pi) % (2 * np.pi) - np.pi


def residue_density(wrapped: np.ndarray) -> float:
    """Fraction of 2 × 2 pixel loops of a wrapped phase whose wrapped differences do not sum
    to zero (phase residues, Goldstein, Zebker & Werner, Radio Sci. 23, 713, 1988).

    Parameters
    ----------
    wrapped : float (H, W)
        Phase in radians (any branch).

    Returns
    -------
    float
        0 for a field least-squares unwrapping integrates exactly; about 1/3 for independent
        uniform random phases.
    """
    p = np.asarray(wrapped, dtype=float)
    loop = (_wrap(p[:-1, 1:] - p[:-1, :-1]) + _wrap(p[1:, 1:] - p[:-1, 1:])
            + _wrap(p[1:, :-1] - p[1:, 1:]) + _wrap(p[:-1, :-1] - p[1:, :-1]))
    return float(np.mean(np.abs(loop) > np.pi)) if loop.size else 0.0


def unwrap_phase(wrapped: np.ndarray) -> np.ndarray:
    """Least-squares phase unwrapping with the DCT (Ghiglia & Romero, JOSA A 11, 107, 1994).

    Parameters
    ----------
    wrapped : array_like (H, W)
        Wrapped phase, radians.

    Returns
    -------
    numpy.ndarray
        (H, W) float64 unwrapped phase, radians, offset so that its mean equals the wrapped
        image's mean.
    """
    w = np.asarray(wrapped, dtype=float)
    dy = np.zeros_like(w)
    dx = np.zeros_like(w)
    dy[:-1] = _wrap(np.diff(w, axis=0))
    dx[:, :-1] = _wrap(np.diff(w, axis=1))
    rho = dy.copy()
    rho[1:] -= dy[:-1]
    rho += dx
    rho[:, 1:] -= dx[:, :-1]
    d = _sfft.dctn(rho, norm="ortho")
    ny, nx = w.shape
    ky = 2 * np.cos(np.pi * np.arange(ny) / ny)[:, None]
    kx = 2 * np.cos(np.pi * np.arange(nx) / nx)[None, :]
    denom = ky + kx - 4
    denom[0, 0] = 1.0
    d /= denom
    d[0, 0] = 0.0
    out = _sfft.idctn(d, norm="ortho")
    return out + np.mean(w - out)   # keep the wrapped image's mean level (mod 2π)


def crop_common(recon: np.ndarray, ref: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centre-crop both arrays to their common shape (centre pixels kept aligned).

    Parameters
    ----------
    recon, ref : ndarray (H, W, ...)
        Arrays; only the first two axes are cropped.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        Views of both with shape (min H, min W, ...), pixel (h//2, w//2) at each one's centre
        pixel (H//2, W//2).
    """
    h = min(recon.shape[0], ref.shape[0])
    w = min(recon.shape[1], ref.shape[1])

    def c(a):
        """Crop ``a`` to (h, w) about its centre pixel.

        Parameters
        ----------
        a : ndarray
            Array of at least (h, w).

        Returns
        -------
        numpy.ndarray
            A view.
        """
        r0 = a.shape[0] // 2 - h // 2
        c0 = a.shape[1] // 2 - w // 2
        return a[r0:r0 + h, c0:c0 + w]

    return c(recon), c(ref)
