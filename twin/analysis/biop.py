"""The FIRE number as the BIOP ImageJ FRC plugin computes it (seed 000's ref. 38).

A reproduction, written from a reading of the plugin's published source (BIOP/ijp-frc, GPL,
``src/main/java/ch/epfl/biop/frc/FRC.java`` and ``FRC_.java`` at commit ce0ce74, unchanged in
substance since 5ec4783 of 4 June 2019), for reading papers that quote its number. It is
**not** a Fourier ring correlation in the sense of van Heel & Schatz (2005) or Nieuwenhuizen et
al. (2013). What the source does, step by step (line numbers in ``FRC.java``):

1. both images are zero-padded at their far edges to a common even size W × H (``pad``);
2. each is multiplied by a window and zero-padded, top-left, to the next power of two
   ``size`` ≥ max(W, H) (``getSquareTaperedImage``). The window was meant as a Tukey taper, but
   its test ``i < size/8 || i > size - (size - size/8)`` is true for every i but size/8
   (``getWindowFunction``, l. 325–336), so it is sin²(4πi/n) across the whole image: four
   lobes per axis. The first and last row and column are zero;
3. the FFT (ImageJ's FHT, quadrants swapped: DC at size/2) of each, and three per-pixel maps:
   |F₁F₂*|², |F₁|², |F₂|² (l. 157–163; the numerator was Re(F₁F₂*) until cd5fb0e, 3 June
   2019, |F₁F₂*| until 5ec4783, 4 June 2019, and |F₁F₂*|² since);
4. for each radius r = 1 … max(W, H)/2 − 2 (pixels of the FFT grid), the three maps are sampled
   at ⌈πr⌉ points of the half circle θ = k/r < π by a bilinear interpolation whose upper row is
   interpolated in the mirrored direction (``getInterpolatedValues``, l. 373–379, the names
   ``upperLeft`` and ``upperRight`` are swapped), summed, and the ring's value is
   √(Σ|F₁F₂*|²) / √(Σ|F₁|² · Σ|F₂|²) (l. 213). Radius 0 is set to 1, with N = 1;
5. the curve is smoothed by LOESS (Apache Commons Math, bandwidth 0.0707, no robustness
   iterations; unsmoothed where that throws, e.g. fewer than 29 rings) (``getSmoothedCurve``);
6. the threshold is the half-bit curve with N = the ring's sample count (≈ πr, half the ring's
   pixels), the fixed 0.1428 (``FIXED_1_OVER_7``, the dialog's default: index 0 of the enum,
   ``FRC_.java`` l. 90), or 3/√(N/2);
7. every crossing of the smoothed curve and the threshold between consecutive radii, in
   either direction, is found by intersecting the two segments; the half-bit and three-sigma
   methods take the second crossing where there are several, 1/7 the first (l. 572–589);
8. FIRE = 2·(n + 1)/r_c pixels for n = max(W, H)/2 − 1 rings and r_c the crossing (l. 625): the
   full period 1/f when the image side is a power of two, and too small by max(W, H)/size
   otherwise. No crossing gives NaN.

Because the ring value is √(Σ|a|²|b|²)/√(Σ|a|²Σ|b|²) for a = F₁, b = F₂ whatever their phases,
it falls as 1/√N for any two images: √(2/N) for identical white noise (|F|² exponential) and
1/√N for independent noise, so both cross 1/7 at a finite radius.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

THRESHOLDS = ("half_bit", "1/7", "three_sigma")
SMOOTH_BANDWIDTH = 0.0707


@dataclass(frozen=True)
class BiopCurve:
    """The plugin's curve: radius (FFT pixels), ring value, samples per ring; smoothed values.

    Attributes
    ----------
    radius : float (n,)
    value, smoothed : float (n,)
    n_samples : float (n,)
    image_side_px : int
        max(W, H) of the (even-padded) images, which the FIRE number is scaled by.
    fft_size_px : int
        The power of two the images were padded to.
    """

    radius: np.ndarray
    value: np.ndarray
    smoothed: np.ndarray
    n_samples: np.ndarray
    image_side_px: int
    fft_size_px: int


def window_as_coded(n: int) -> np.ndarray:
    """The plugin's taper for a side of ``n`` pixels: sin²(4πi/n) except at i = n // 8.

    Kept as the plugin codes it (two periods of sin² over the side, with the sample at n // 8
    set to 1), so that twin's FRC equals the plugin's.

    Parameters
    ----------
    n : int
        Side, pixels.

    Returns
    -------
    numpy.ndarray
        (n,) float64 weights.
    """
    i = np.arange(n)
    w = np.sin(4 * np.pi * i / n) ** 2
    w[n // 8] = 1.0
    return w


def _tapered(img: np.ndarray, height: int, width: int) -> np.ndarray:
    """Even-pad to (height, width), taper, zero the border, pad top-left to a power of two."""
    a = np.zeros((height, width))
    a[:img.shape[0], :img.shape[1]] = img
    side = max(height, width)
    size = next(2 ** k for k in range(4, 15) if side <= 2 ** k)
    out = np.zeros((size, size))
    tap = np.outer(window_as_coded(height), window_as_coded(width))
    out[1:height - 1, 1:width - 1] = (a * tap)[1:height - 1, 1:width - 1]
    return out


def _maps(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, ...]:
    """|F₁F₂*|², |F₁|², |F₂|² with DC at (size/2, size/2), as float32 like the plugin's."""
    fa = np.fft.fftshift(np.fft.fft2(a))
    fb = np.fft.fftshift(np.fft.fft2(b))
    pa = np.abs(fa) ** 2
    pb = np.abs(fb) ** 2
    return tuple(m.astype(np.float32) for m in (pa * pb, pa, pb))


def _sample(maps, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The plugin's bilinear interpolation (upper row mirrored in x) of each map at (x, y)."""
    xb = x.astype(int)
    yb = y.astype(int)
    xf = np.maximum(x - xb, 0.0)
    yf = np.maximum(y - yb, 0.0)
    out = []
    for m in maps:
        m = m.astype(np.float64)
        lower = m[yb, xb] + xf * (m[yb, xb + 1] - m[yb, xb])
        upper = m[yb + 1, xb + 1] + xf * (m[yb + 1, xb] - m[yb + 1, xb + 1])
        out.append(lower + yf * (upper - lower))
    return np.stack(out)


def curve(img1: np.ndarray, img2: np.ndarray) -> BiopCurve:
    """The plugin's FRC curve of two real images (``calculateFrcCurve``), then its smoothing.

    Parameters
    ----------
    img1, img2 : real (h, w)
        The two images, e.g. the even and odd sub-images of one reconstruction.

    Returns
    -------
    BiopCurve
    """
    img1 = np.asarray(img1, dtype=np.float32).astype(np.float64)
    img2 = np.asarray(img2, dtype=np.float32).astype(np.float64)
    width = max(img1.shape[1], img2.shape[1])
    height = max(img1.shape[0], img2.shape[0])
    width += width % 2
    height += height % 2
    ta, tb = _tapered(img1, height, width), _tapered(img2, height, width)
    size = ta.shape[0]
    maps = _maps(ta, tb)
    centre = float(size // 2)
    n = max(width, height) // 2 - 1
    radius = np.arange(n, dtype=float)
    value = np.ones(n)
    count = np.ones(n)
    for r in range(1, n):
        theta = np.arange(math.ceil(math.pi * r)) / r
        theta = theta[theta < math.pi]
        s = _sample(maps, centre + r * np.cos(theta), centre + r * np.sin(theta)).sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            value[r] = math.sqrt(s[0]) / math.sqrt(s[1] * s[2])
        count[r] = theta.size
    return BiopCurve(radius, value, loess(radius, value), count, max(width, height), size)


def loess(x: np.ndarray, y: np.ndarray, bandwidth: float = SMOOTH_BANDWIDTH,
          accuracy: float = 1e-12) -> np.ndarray:
    """Local linear regression with tricube weights over the ⌊bandwidth·n⌋ nearest points.

    The window slides right whenever the next point is nearer than its leftmost one (as Apache
    Commons Math's ``LoessInterpolator`` without robustness iterations does). Returns ``y``
    unchanged where that class throws: non-finite values, or fewer than 2 points in a window.

    Parameters
    ----------
    x : array_like (n,)
        Abscissae, increasing.
    y : array_like (n,)
        Values.
    bandwidth : float
        Fraction of the points in each local window.
    accuracy : float
        A window whose x spread (weighted standard deviation) is below this fits a constant.

    Returns
    -------
    numpy.ndarray
        (n,) float64 smoothed values (a copy of ``y`` in the cases above).
    """
    x = np.asarray(x, float)
    y = np.asarray(y, float)
    n = len(x)
    k = int(bandwidth * n)
    if n <= 2 or k < 2 or not (np.all(np.isfinite(y)) and np.all(np.isfinite(x))):
        return y.copy()
    left, right = 0, k - 1
    out = np.empty(n)
    for i in range(n):
        if i > 0 and right + 1 < n and x[right + 1] - x[i] < x[i] - x[left]:
            left, right = left + 1, right + 1
        edge = left if x[i] - x[left] > x[right] - x[i] else right
        xs, ys = x[left:right + 1], y[left:right + 1]
        d = np.abs(xs - x[i]) * abs(1.0 / (x[edge] - x[i]))
        w = np.where(d < 1, (1 - d ** 3) ** 3, 0.0)
        mx, my = np.sum(w * xs) / w.sum(), np.sum(w * ys) / w.sum()
        mxx, mxy = np.sum(w * xs * xs) / w.sum(), np.sum(w * xs * ys) / w.sum()
        var = mxx - mx * mx
        beta = 0.0 if math.sqrt(abs(var)) < accuracy else (mxy - mx * my) / var
        out[i] = beta * x[i] + my - beta * mx
    return out


def threshold_curve(n_samples: np.ndarray, threshold: str) -> np.ndarray:
    """The plugin's threshold curve (``calculateThresholdCurve``).

    Parameters
    ----------
    n_samples : float (n,)
        Samples per ring (≈ πr: half a ring).
    threshold : {"half_bit", "1/7", "three_sigma"}
        Half-bit with N = ``n_samples``, the fixed 0.1428, or 3/√(N/2).

    Returns
    -------
    float (n,)
    """
    s = np.sqrt(np.asarray(n_samples, float))
    if threshold == "half_bit":
        return (0.2071 * s + 1.9102) / (1.2071 * s + 0.9102)
    if threshold == "three_sigma":
        return 3.0 / np.sqrt(np.asarray(n_samples, float) / 2.0)
    if threshold == "1/7":
        return np.full(len(s), 0.1428)
    raise ValueError(f"threshold {threshold!r}: allowed {THRESHOLDS}")


def crossings(x: np.ndarray, y: np.ndarray, t: np.ndarray) -> list[float]:
    """Where the curve and the threshold intersect (``getIntersections``).

    Parameters
    ----------
    x, y, t : float (n,)
        Radii, curve and threshold.

    Returns
    -------
    list of float
        Radii of every intersection of the segments between neighbours, in either direction.
    """
    out = []
    for i in range(1, len(x)):
        y1, y2, y3, y4 = y[i - 1], y[i], t[i - 1], t[i]
        if not ((y3 >= y1 and y4 < y2) or (y1 >= y3 and y2 < y4)):
            continue
        x1, x2 = x[i - 1], x[i]
        den = (x1 - x2) * (y3 - y4) - (y1 - y2) * (x1 - x2)
        if den == 0:
            if y1 == y3:
                out.append(float(x1))
            continue
        px = ((x1 * y2 - y1 * x2) * (x1 - x2) - (x1 - x2) * (x1 * y4 - y3 * x2)) / den
        if x1 <= px < x2:
            out.append(float(px))
    return out


def fire_px(c: BiopCurve, threshold: str = "1/7") -> float:
    """The FIRE number as the plugin reports it (``calculateFireNumber``).

    Parameters
    ----------
    c : BiopCurve
    threshold : {"1/7", "half_bit", "three_sigma"}
        Half-bit and three-sigma take the second crossing where there are several.

    Returns
    -------
    float
        2·(n + 1)/r pixels of the input images, n rings, r the crossing's radius; NaN where
        the smoothed curve never meets the threshold.
    """
    t = threshold_curve(c.n_samples, threshold)
    xs = crossings(c.radius, c.smoothed, t)
    if not xs:
        return float("nan")
    r = xs[1] if threshold != "1/7" and len(xs) > 1 else xs[0]
    return float(2 * (len(c.radius) + 1) / r) if r > 0 else float("inf")


def fire(img1: np.ndarray, img2: np.ndarray, pixel_size_m: float = 1.0,
         threshold: str = "1/7") -> float:
    """:func:`fire_px` of :func:`curve` times the images' pixel size (``Calibrated`` column).

    Parameters
    ----------
    img1, img2 : real (h, w)
    pixel_size_m : float
        The images' pixel.
    threshold : {"1/7", "half_bit", "three_sigma"}
        The plugin's default is "1/7" (``FIXED_1_OVER_7``).

    Returns
    -------
    float
        The full period the plugin reports, metres (NaN where it finds no crossing).
    """
    return fire_px(curve(img1, img2), threshold) * pixel_size_m
