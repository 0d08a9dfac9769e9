"""Image quality against a ground truth: PCC, SSIM, MS-SSIM and segmentation.

* SSIM (Wang et al. 2004) and MS-SSIM (Wang, Simoncelli & Bovik 2003) with a Gaussian window;
* PCC; Dice and bit-error rate after Otsu segmentation (seed 002 §4.6).

The alignment that comes before any metric (:mod:`twin.analysis.alignment`) and the resolution
measures (FRC/FSC, the Siemens star: :mod:`twin.analysis.resolution`) live in their own
modules; their names are re-exported here, so ``metrics.align`` and
``metrics.fourier_correlation`` keep working.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

from twin.analysis.alignment import (Alignment, align, crop_common, deplane, fourier_shift,
                                     register_shift, residue_density, unwrap_phase)
from twin.analysis.resolution import (Crossing, FourierCorrelation, fourier_correlation,
                                      siemens_star_resolution)
from twin.analysis.resolution import _radial_bins  # noqa: F401  (read by tests)

__all__ = [
    # image quality (defined here)
    "MS_SSIM_WEIGHTS", "bit_error_rate", "dice", "ms_ssim", "otsu_threshold", "pcc", "ssim",
    # twin.analysis.alignment
    "Alignment", "align", "crop_common", "deplane", "fourier_shift", "register_shift",
    "residue_density", "unwrap_phase",
    # twin.analysis.resolution
    "Crossing", "FourierCorrelation", "fourier_correlation", "siemens_star_resolution",
]

# ----------------------------------------------------------------------------- scalar metrics


def pcc(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Pearson correlation coefficient of two real images.

    Parameters
    ----------
    a, b : array_like
        Real images (or volumes) of the same shape.
    mask : array_like of bool, optional
        Pixels to compare; all when None.

    Returns
    -------
    float
        In [−1, 1]; 0 for a constant image.
    """
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    if mask is not None:
        a, b = a[mask], b[mask]
    a = a - a.mean()
    b = b - b.mean()
    return float(np.sum(a * b) / math.sqrt(np.sum(a * a) * np.sum(b * b) + 1e-300))


def _gauss(img, sigma):
    return ndimage.gaussian_filter(img, sigma, mode="reflect", truncate=3.5)


def ssim(a: np.ndarray, b: np.ndarray, data_range: float | None = None, sigma: float = 1.5,
         full: bool = False):
    """Structural similarity (Wang et al. 2004) with a Gaussian window of ``sigma`` pixels.

    Constants c₁ = (0.01·L)², c₂ = (0.03·L)²; the window is truncated at 3.5σ with reflected
    edges; the map is averaged over the whole image.

    Parameters
    ----------
    a, b : array_like (H, W)
        Real images of the same shape.
    data_range : float, optional
        L, the images' dynamic range; max − min over both when None.
    sigma : float
        Standard deviation of the Gaussian window, pixels.
    full : bool
        Also return the mean contrast-structure term.

    Returns
    -------
    float or (float, float)
        Mean SSIM, or (mean SSIM, mean contrast-structure) when ``full``.
    """
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    if data_range is None:
        data_range = max(a.max(), b.max()) - min(a.min(), b.min())
    c1 = (0.01 * data_range) ** 2
    c2 = (0.03 * data_range) ** 2
    mu_a, mu_b = _gauss(a, sigma), _gauss(b, sigma)
    saa = _gauss(a * a, sigma) - mu_a ** 2
    sbb = _gauss(b * b, sigma) - mu_b ** 2
    sab = _gauss(a * b, sigma) - mu_a * mu_b
    lum = (2 * mu_a * mu_b + c1) / (mu_a ** 2 + mu_b ** 2 + c1)
    cs = (2 * sab + c2) / (saa + sbb + c2)
    m = lum * cs
    if full:
        return float(m.mean()), float(cs.mean())
    return float(m.mean())


MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


def ms_ssim(a: np.ndarray, b: np.ndarray, data_range: float | None = None,
            weights=MS_SSIM_WEIGHTS) -> float:
    """Multi-scale SSIM (Wang, Simoncelli & Bovik 2003): contrast-structure at each scale,
    luminance at the coarsest, 2× down-sampling between scales (fewer scales for small images).

    Scales are dropped until the coarsest is at least 11 pixels; the weights of those kept are
    renormalised to sum to 1; terms are clipped at 10⁻⁶ before the weighted product.

    Parameters
    ----------
    a, b : array_like (H, W)
        Real images of the same shape.
    data_range : float, optional
        Dynamic range; max − min over both when None.
    weights : sequence of float
        Exponent of each scale, finest first.

    Returns
    -------
    float
    """
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    if data_range is None:
        data_range = max(a.max(), b.max()) - min(a.min(), b.min())
    n_scales = len(weights)
    while n_scales > 1 and min(a.shape) / 2 ** (n_scales - 1) < 11:
        n_scales -= 1
    w = np.asarray(weights[:n_scales], dtype=float)
    w /= w.sum()
    vals = []
    for s in range(n_scales):
        full, cs = ssim(a, b, data_range, full=True)
        vals.append(full if s == n_scales - 1 else cs)
        if s < n_scales - 1:
            a = ndimage.zoom(_gauss(a, 1.0), 0.5, order=1)
            b = ndimage.zoom(_gauss(b, 1.0), 0.5, order=1)
    vals = np.clip(np.array(vals), 1e-6, None)
    return float(np.prod(vals ** w))


# ----------------------------------------------------------------------------- segmentation


def otsu_threshold(img: np.ndarray, bins: int = 256) -> float:
    """Otsu's threshold: the split maximising the between-class variance.

    Parameters
    ----------
    img : array_like
        Values of any shape.
    bins : int
        Histogram bins.

    Returns
    -------
    float
        The centre of the last histogram bin of the lower class.
    """
    v = np.asarray(img, dtype=float).ravel()
    hist, edges = np.histogram(v, bins=bins)
    centres = (edges[:-1] + edges[1:]) / 2
    w0 = np.cumsum(hist)
    w1 = w0[-1] - w0
    m0 = np.cumsum(hist * centres) / np.maximum(w0, 1)
    m1 = (np.sum(hist * centres) - np.cumsum(hist * centres)) / np.maximum(w1, 1)
    between = w0 * w1 * (m0 - m1) ** 2
    return float(centres[np.argmax(between)])


def dice(a: np.ndarray, b: np.ndarray) -> float:
    """Dice coefficient 2|A∩B|/(|A| + |B|) of two binary masks.

    Parameters
    ----------
    a, b : array_like
        Masks of the same shape (non-zero = in the set).

    Returns
    -------
    float
        In [0, 1]; 1 when both masks are empty.
    """
    a = np.asarray(a, bool)
    b = np.asarray(b, bool)
    s = a.sum() + b.sum()
    return float(2 * np.logical_and(a, b).sum() / s) if s else 1.0


def bit_error_rate(a: np.ndarray, b: np.ndarray) -> float:
    """Fraction of voxels whose binary labels differ.

    Parameters
    ----------
    a, b : array_like
        Masks of the same shape (non-zero = 1).

    Returns
    -------
    float
        In [0, 1].
    """
    return float(np.mean(np.asarray(a, bool) != np.asarray(b, bool)))
