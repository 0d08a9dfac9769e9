"""Image quality and resolution: comparison with the ground truth, FRC/FSC, SSIM, segmentation.

Phase retrieval cannot fix a global phase, a linear phase ramp (a shift of the far field) or a
sub-pixel translation of the whole image; :func:`align` removes all three before any metric.

* Fourier ring / shell correlation with the half-bit and 1/7 thresholds (van Heel & Schatz,
  J. Struct. Biol. 151, 250, 2005);
* SSIM (Wang et al. 2004) and MS-SSIM (Wang, Simoncelli & Bovik 2003) with a Gaussian window;
* PCC; Dice and bit-error rate after Otsu segmentation (seed 002 §4.6);
* the resolution of a Siemens star from its line profiles along circles.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.fft as _sfft
from scipy import ndimage, special

# ----------------------------------------------------------------------------- registration


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

    def wrap(a):
        """Wrap angles to [−π, π).

        Parameters
        ----------
        a : ndarray
            Angles, radians.

        Returns
        -------
        numpy.ndarray
        """
        return (a + np.pi) % (2 * np.pi) - np.pi

    loop = (wrap(p[:-1, 1:] - p[:-1, :-1]) + wrap(p[1:, 1:] - p[:-1, 1:])
            + wrap(p[1:, :-1] - p[1:, 1:]) + wrap(p[:-1, :-1] - p[1:, :-1]))
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

    def wrap(a):
        """Wrap angles to [−π, π).

        Parameters
        ----------
        a : ndarray
            Angles, radians.

        Returns
        -------
        numpy.ndarray
        """
        return (a + np.pi) % (2 * np.pi) - np.pi

    dy = np.zeros_like(w)
    dx = np.zeros_like(w)
    dy[:-1] = wrap(np.diff(w, axis=0))
    dx[:, :-1] = wrap(np.diff(w, axis=1))
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


# ----------------------------------------------------------------------------- FRC / FSC


@dataclass(frozen=True)
class FourierCorrelation:
    frequency_per_m: np.ndarray   # ring/shell centres (spatial frequency, 1/m)
    correlation: np.ndarray
    half_bit: np.ndarray          # threshold curve
    n_points: np.ndarray
    pixel_size_m: float

    def _start(self, t: np.ndarray, skip_rings: int, from_rise: bool) -> int | None:
        """First ring searched: ``skip_rings`` (at least 1), or with ``from_rise`` the first
        ring from there on where the curve reaches the threshold and is significant (None if
        it never does).

        Significant: above the correlation that chance exceeds with probability α/K at that
        ring, α = 1 − Φ(3) = 0.135 % (van Heel's 3σ criterion) shared over the K searched rings,
        so that pure noise starts a search no more often than α. The correlation of a fixed
        vector with a random one in m dimensions has (1 + C)/2 ~ Beta((m − 1)/2, (m − 1)/2);
        a ring of n points of a Hann-windowed real image holds m ≈ n/2 independent real numbers
        (Hermitian symmetry pairs the points, the window correlates neighbours; the tail this
        gives is checked on noise in tests/analysis/test_star_frc.py).
        """
        start = max(1, skip_rings)
        if not from_rise:
            return start
        k = max(1, len(self.correlation) - start)
        a = np.maximum(self.n_points / 2 - 1, 1) / 2
        sig = 2 * special.betaincinv(a, a, 1 - special.ndtr(-3.0) / k) - 1
        up = np.nonzero(self.correlation[start:] >= np.maximum(t, sig)[start:])[0]
        return int(up[0]) + start if len(up) else None

    def resolution_m(self, threshold: str = "half_bit", skip_rings: int = 3,
                     from_rise: bool = False) -> float:
        """Half-period resolution 1/(2 f) at the first crossing below the threshold (linear
        interpolation between rings); the pixel size if it never crosses.

        The first ``skip_rings`` rings (periods longer than a third of the image) are not
        searched: there the correlation reflects the slow phase variations that ptychography
        determines poorly over a small field, not the resolution. With ``from_rise`` the search
        starts where the curve first reaches the threshold significantly (:meth:`_start`):
        rings below it before that hold no common structure yet (a sample with no power there,
        such as a Siemens star, whose ring f lives at radius N/(2πf), outside a field of radius
        R < N/(2πf)), so nothing is lost there. Where it never rises, the first searched ring's
        bound is returned.

        Parameters
        ----------
        threshold : {"half_bit", "1/7"}
            The threshold curve; anything but "half_bit" means 1/7.
        skip_rings : int
            Rings not searched (at least 1).
        from_rise : bool
            Start the search where the curve first rises significantly above the threshold.

        Returns
        -------
        float
            Half-period resolution, metres (full period would be 1/f).
        """
        t = self.half_bit if threshold == "half_bit" else np.full_like(self.correlation, 1 / 7)
        c = self.correlation
        start = self._start(t, skip_rings, from_rise)
        start = max(1, skip_rings) if start is None else start
        below = np.nonzero(c[start:] < t[start:])[0]
        if len(below) == 0:
            return float(self.pixel_size_m)        # correlated up to Nyquist
        i = below[0] + start
        f0, f1 = self.frequency_per_m[i - 1], self.frequency_per_m[i]
        d0, d1 = c[i - 1] - t[i - 1], c[i] - t[i]
        # interpolate only between a ring above and one below the threshold
        f = f0 + (f1 - f0) * d0 / (d0 - d1) if d0 > 0 else f0
        return float(1 / (2 * f))

    def crossing(self, threshold: str = "half_bit", skip_rings: int = 3,
                 from_rise: bool = False) -> "Crossing":
        """Where the curve first falls below ``threshold`` beyond the first ``skip_rings`` rings
        (with ``from_rise``, beyond the first ring from there where it reaches the threshold;
        see :meth:`resolution_m`).

        Returns a :class:`Crossing`: unresolved where the curve is already below the threshold
        (or undefined) at the first searched ring (``from_rise``: never reaches it), a bound at
        the pixel limit where it never crosses, else the interpolated crossing (the same as
        :meth:`resolution_m`).

        Parameters
        ----------
        threshold : {"half_bit", "1/7"}
            The threshold curve; anything but "half_bit" means 1/7.
        skip_rings : int
            Rings not searched (at least 1).
        from_rise : bool
            Start the search where the curve first rises significantly above the threshold.

        Returns
        -------
        Crossing
            Its ``frequency_per_m`` f in 1/m; :attr:`Crossing.half_period_m` is 1/(2f).
        """
        t = self.half_bit if threshold == "half_bit" else np.full_like(self.correlation, 1 / 7)
        c = self.correlation
        start = self._start(t, skip_rings, from_rise)
        if (start is None or len(c) <= start or not np.isfinite(c[start])
                or c[start] < t[start]):
            return Crossing(threshold, None, False, False, self.pixel_size_m)
        if not np.any(c[start:] < t[start:]):
            return Crossing(threshold, 0.5 / self.pixel_size_m, True, True, self.pixel_size_m)
        return Crossing(threshold, 0.5 / self.resolution_m(threshold, skip_rings, from_rise),
                        True, False, self.pixel_size_m)


@dataclass(frozen=True)
class Crossing:
    """One threshold crossing of an FRC/FSC curve.

    Attributes
    ----------
    threshold : str
        "half_bit" or "1/7".
    frequency_per_m : float or None
        Spatial frequency f of the crossing; None where the curve never leaves the noise.
    resolved : bool
        The curve is above the threshold at the first searched ring (``from_rise``: at some
        searched ring).
    bound : bool
        It never crosses up to Nyquist: f is the pixel limit 1/(2p), and the true figure is
        better than that ("better than" bound).
    pixel_size_m : float
    """

    threshold: str
    frequency_per_m: float | None
    resolved: bool
    bound: bool
    pixel_size_m: float

    @property
    def half_period_m(self) -> float | None:
        """1/(2f), the convention of ``*_resolution_m`` keys; None where unresolved."""
        return None if self.frequency_per_m is None else float(0.5 / self.frequency_per_m)

    @property
    def full_period_m(self) -> float | None:
        """1/f, the FIRE number of Nieuwenhuizen et al. (2013); None where unresolved."""
        return None if self.frequency_per_m is None else float(1.0 / self.frequency_per_m)


def _radial_bins(shape, pixel_size_m):
    grids = np.meshgrid(*[np.fft.fftshift(np.fft.fftfreq(n)) for n in shape], indexing="ij")
    r = np.sqrt(sum(g ** 2 for g in grids))          # cycles per pixel, 0 … ~0.7
    n_bins = min(shape) // 2
    idx = np.minimum((r * 2 * n_bins).astype(int), n_bins)   # bins of width 1/(2 n_bins)
    return idx, n_bins


def fourier_correlation(a: np.ndarray, b: np.ndarray, pixel_size_m: float = 1.0,
                        apodize: bool = True) -> FourierCorrelation:
    """FRC (2D) or FSC (3D) between two images/volumes of the same shape.

    Half-bit threshold T = (0.2071 + 1.9102/√n)/(1.2071 + 0.9102/√n), n the points in the
    ring/shell. A Hann window (``apodize``) suppresses the edges' cross.

    Rings are min(shape)//2 bins of width 1/(2·bins) cycles per pixel (the corners beyond
    Nyquist are dropped); with ``apodize`` each image's mean is removed before the window.

    Parameters
    ----------
    a, b : array_like
        Images (2-D) or volumes (3-D), real or complex, of the same shape.
    pixel_size_m : float
        Pixel (voxel) size, metres: sets the frequencies' unit.
    apodize : bool
        Apply the Hann window.

    Returns
    -------
    FourierCorrelation
        Ring centres in 1/m, correlation, half-bit curve and points per ring.

    Raises
    ------
    ValueError
        When the shapes differ.
    """
    a = np.asarray(a)
    b = np.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} vs {b.shape}")
    if apodize:
        w = np.ones(a.shape)
        for ax, n in enumerate(a.shape):
            sh = [1] * a.ndim
            sh[ax] = n
            w = w * np.hanning(n).reshape(sh)
        a = (a - a.mean()) * w
        b = (b - b.mean()) * w
    fa = np.fft.fftshift(np.fft.fftn(a))
    fb = np.fft.fftshift(np.fft.fftn(b))
    idx, n_bins = _radial_bins(a.shape, pixel_size_m)
    idx = idx.ravel()
    num = np.bincount(idx, (fa * np.conj(fb)).real.ravel(), n_bins + 1)[:n_bins]
    pa = np.bincount(idx, (np.abs(fa) ** 2).ravel(), n_bins + 1)[:n_bins]
    pb = np.bincount(idx, (np.abs(fb) ** 2).ravel(), n_bins + 1)[:n_bins]
    npts = np.bincount(idx, minlength=n_bins + 1)[:n_bins].astype(float)
    corr = num / np.sqrt(pa * pb + 1e-300)
    sq = np.sqrt(np.maximum(npts, 1))
    half_bit = (0.2071 + 1.9102 / sq) / (1.2071 + 0.9102 / sq)
    freq = (np.arange(n_bins) + 0.5) / (2 * n_bins) / pixel_size_m
    return FourierCorrelation(freq, corr, half_bit, npts, pixel_size_m)


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


# ----------------------------------------------------------------------------- star


def siemens_star_resolution(image: np.ndarray, pixel_size_m: float, spokes: int,
                            centre_px=None, threshold: float = 0.25,
                            r_max_px: float | None = None) -> tuple[float, np.ndarray]:
    """Half-period resolution from the star's line profiles along circles.

    At radius r the spokes make a profile of ``spokes`` periods around the circle; its
    modulation is 2|c_N| from the profile's N-th Fourier coefficient, normalised by the
    median modulation of the outermost fifth (at least 3) of the radii. The resolution is the
    half-period πr/N at the smallest radius from which outward the modulation stays at or above
    ``threshold``.

    Parameters
    ----------
    image : array_like (H, W)
        Real image of the star (e.g. the phase).
    pixel_size_m : float
        Pixel size, metres.
    spokes : int
        Number of spokes N.
    centre_px : (float, float), optional
        (row, col) of the star's centre; the image's centre pixel when None.
    threshold : float
        Relative modulation that counts as resolved.
    r_max_px : float, optional
        Largest radius sampled, pixels; 0.45 × the smaller side when None. Radii run from 2 px
        in steps of 0.5 px.

    Returns
    -------
    resolution_m : float
        Half-period resolution, metres; NaN when even the outermost radius is below threshold.
    profile : numpy.ndarray
        (2, n_radii): radii in pixels and the relative modulation.
    """
    img = np.asarray(image, dtype=float)
    cy, cx = (np.array(img.shape) // 2) if centre_px is None else centre_px
    r_max = r_max_px or 0.45 * min(img.shape)
    radii = np.arange(2.0, r_max, 0.5)
    mods = []
    for r in radii:
        n_theta = max(64, int(2 * np.pi * r * 2))
        th = np.linspace(0, 2 * np.pi, n_theta, endpoint=False)
        prof = ndimage.map_coordinates(img, [cy + r * np.sin(th), cx + r * np.cos(th)],
                                       order=1)
        c = np.fft.rfft(prof) / n_theta
        mods.append(2 * np.abs(c[spokes]) if spokes < len(c) else 0.0)
    mods = np.array(mods)
    ref = np.median(mods[-max(3, len(mods) // 5):])
    rel = mods / (ref + 1e-300)
    ok = rel >= threshold
    # the smallest radius from which outward the modulation stays above the threshold
    bad = np.nonzero(~ok)[0]
    first_ok = bad[-1] + 1 if len(bad) else 0
    if first_ok >= len(radii):
        return float("nan"), np.stack([radii, rel])
    r = radii[first_ok]
    return float(np.pi * r / spokes * pixel_size_m), np.stack([radii, rel])
