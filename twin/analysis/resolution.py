"""Resolution: Fourier ring / shell correlation and the resolution of a Siemens star.

* FRC (2D) / FSC (3D) with the half-bit and 1/7 thresholds (van Heel & Schatz, J. Struct.
  Biol. 151, 250, 2005): :func:`fourier_correlation` gives the curve
  (:class:`FourierCorrelation`), whose :meth:`~FourierCorrelation.crossing` is a
  :class:`Crossing` read in either convention (half period 1/(2f), full period 1/f);
* the FSC split by direction, along a rotation axis and across it
  (:func:`axial_correlations`), and cone by cone across it (:func:`azimuthal_correlations`);
* the resolution of a Siemens star from its line profiles along circles
  (:func:`siemens_star_resolution`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage, special

__all__ = ["CrossSpectra", "Crossing", "FourierCorrelation", "axial_correlations",
           "azimuthal_correlations",
           "fourier_correlation",
           "siemens_star_resolution"]

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
    fa, fb = _spectra(a, b, apodize)
    idx, n_bins = _radial_bins(fa.shape, pixel_size_m)
    return _binned(idx.ravel(), n_bins, (fa * np.conj(fb)).real.ravel(),
                   (np.abs(fa) ** 2).ravel(), (np.abs(fb) ** 2).ravel(), pixel_size_m)


def _spectra(a, b, apodize: bool) -> tuple[np.ndarray, np.ndarray]:
    """The centred spectra of ``a`` and ``b`` (each less its mean and Hann-windowed where
    ``apodize``), as :func:`fourier_correlation` correlates them."""
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
    return np.fft.fftshift(np.fft.fftn(a)), np.fft.fftshift(np.fft.fftn(b))


def _binned(idx, n_bins: int, cross, pa, pb, pixel_size_m: float) -> FourierCorrelation:
    """The correlation per radial bin of the points ``idx`` (bin of each) whose cross and
    power spectra are ``cross``, ``pa``, ``pb``, with the half-bit curve of each bin's count."""
    num = np.bincount(idx, cross, n_bins + 1)[:n_bins]
    sa = np.bincount(idx, pa, n_bins + 1)[:n_bins]
    sb = np.bincount(idx, pb, n_bins + 1)[:n_bins]
    npts = np.bincount(idx, minlength=n_bins + 1)[:n_bins].astype(float)
    corr = num / np.sqrt(sa * sb + 1e-300)
    sq = np.sqrt(np.maximum(npts, 1))
    half_bit = (0.2071 + 1.9102 / sq) / (1.2071 + 0.9102 / sq)
    freq = (np.arange(n_bins) + 0.5) / (2 * n_bins) / pixel_size_m
    return FourierCorrelation(freq, corr, half_bit, npts, pixel_size_m)


def axial_correlations(a: np.ndarray, b: np.ndarray, pixel_size_m: float = 1.0, axis: int = 0,
                       half_angle_deg: float = 30.0,
                       apodize: bool = True) -> tuple[FourierCorrelation, FourierCorrelation]:
    """The FSC of two volumes split by direction: along ``axis`` and across it.

    A shell's correlation weighs each direction by the sample's power there, so a sample whose
    fine structure lies along one direction gives a shell FSC carried by that direction
    (Tan et al., Nat. Methods 14, 793, 2017, for preferred orientations in cryo-EM). In
    tomography the direction that matters is the rotation axis: every projection holds the
    frequencies along it whole (the 2D resolution), while those across it are what the
    tomographic reconstruction fills in from the angles (Crowther's sampling, a missing wedge).
    So the shells are split into a double cone of half-angle ``half_angle_deg`` around
    ``axis`` (along) and the band within ``half_angle_deg`` of the plane perpendicular to it
    (across); the directions between belong to neither. Each part's curve has the half-bit
    threshold of its own point count (van Heel & Schatz 2005), on the rings of
    :func:`fourier_correlation`.

    Parameters
    ----------
    a, b : (n0, n1, n2) array_like
        Volumes of the same shape.
    pixel_size_m : float
        Voxel size, metres.
    axis : int
        The rotation axis (0, 1 or 2).
    half_angle_deg : float
        Half-angle of the cone and of the band, degrees, in (0, 45].
    apodize : bool
        As :func:`fourier_correlation`.

    Returns
    -------
    (FourierCorrelation, FourierCorrelation)
        Along the axis, across it.

    Raises
    ------
    ValueError
        Not two volumes of one shape, or ``half_angle_deg`` outside (0, 45].
    """
    return CrossSpectra.of(a, b, pixel_size_m, apodize).axial(axis, half_angle_deg)


def azimuthal_correlations(a: np.ndarray, b: np.ndarray, pixel_size_m: float = 1.0,
                           axis: int = 0, step_deg: float = 15.0, half_angle_deg: float = 20.0,
                           apodize: bool = True) -> list[tuple[float, FourierCorrelation]]:
    """The FSC of two volumes in double cones around directions across ``axis``.

    The cones' axes lie in the plane perpendicular to ``axis``, every ``step_deg`` of azimuth
    from 0 (along the first other axis of the volume) to 180°; each cone of half-angle
    ``half_angle_deg`` is a conical FSC (the directional FSC of Tan et al., Nat. Methods 14,
    793, 2017) with the half-bit threshold of its own voxel count. Across a rotation axis, a
    few angles or a missing wedge leave some directions unfilled, which the band of
    :func:`axial_correlations` averages with the filled ones, weighted by the sample's power.

    Parameters
    ----------
    a, b : (n0, n1, n2) array_like
        Volumes of the same shape.
    pixel_size_m : float
        Voxel size, metres.
    axis : int
        The rotation axis (0, 1 or 2).
    step_deg : float
        Azimuth between cones, degrees, in (0, 90].
    half_angle_deg : float
        Half-angle of each cone, degrees, in (0, 45].
    apodize : bool
        As :func:`fourier_correlation`.

    Returns
    -------
    list of (float, FourierCorrelation)
        The azimuth (degrees) and the curve of each cone.

    Raises
    ------
    ValueError
        Not two volumes of one shape, or an angle outside its range.
    """
    return CrossSpectra.of(a, b, pixel_size_m, apodize).cones(axis, step_deg, half_angle_deg)


@dataclass(frozen=True)
class CrossSpectra:
    """Two volumes' spectra, binned into the rings of :func:`fourier_correlation`, from which
    the FSC of any set of directions is read without transforming again
    (:meth:`axial`, :meth:`cones`, :meth:`part`).

    Attributes
    ----------
    idx : ndarray
        Ring of each frequency (centred layout); ``n_bins`` rings.
    grids : tuple of ndarray
        Sparse frequency grids, cycles per voxel, one per axis.
    cross, power_a, power_b : ndarray
        Re(F_a F_b*), |F_a|², |F_b|².
    """

    idx: np.ndarray
    n_bins: int
    grids: tuple
    cross: np.ndarray
    power_a: np.ndarray
    power_b: np.ndarray
    pixel_size_m: float

    @classmethod
    def of(cls, a, b, pixel_size_m: float = 1.0, apodize: bool = True) -> "CrossSpectra":
        """The cross spectra of volumes ``a`` and ``b`` (windowed as
        :func:`fourier_correlation` does where ``apodize``).

        Parameters
        ----------
        a, b : (n0, n1, n2) array_like
            Volumes of the same shape.
        pixel_size_m : float
            Voxel size, metres.
        apodize : bool
            Remove each mean and apply the Hann window.
        """
        if np.ndim(a) != 3:
            raise ValueError(f"a directional FSC needs volumes, got {np.ndim(a)} dimensions")
        fa, fb = _spectra(a, b, apodize)
        idx, n_bins = _radial_bins(fa.shape, pixel_size_m)
        grids = tuple(np.meshgrid(*[np.fft.fftshift(np.fft.fftfreq(n)) for n in fa.shape],
                                  indexing="ij", sparse=True))
        return cls(idx, n_bins, grids, (fa * np.conj(fb)).real, np.abs(fa) ** 2,
                   np.abs(fb) ** 2, pixel_size_m)

    def part(self, mask: np.ndarray) -> FourierCorrelation:
        """The FSC over the frequencies in ``mask``.

        Parameters
        ----------
        mask : ndarray of bool
            Frequencies to include (the spectra's centred layout).
        """
        return _binned(self.idx[mask], self.n_bins, self.cross[mask], self.power_a[mask],
                       self.power_b[mask], self.pixel_size_m)

    def axis_cos2(self, axis: int) -> tuple:
        """(|k|², cos² of each frequency's angle from ``axis``; 0 at the zero frequency).

        Parameters
        ----------
        axis : int
            The rotation axis.
        """
        r2 = sum(g ** 2 for g in self.grids)
        return r2, np.divide(self.grids[axis] ** 2, r2, out=np.zeros(self.cross.shape),
                             where=r2 > 0)

    def axial(self, axis: int, half_angle_deg: float) -> tuple:
        """(along, across) ``axis``: :func:`axial_correlations`.

        Parameters
        ----------
        axis : int
            The rotation axis.
        half_angle_deg : float
            Half-angle of the cone and of the band, degrees, in (0, 45].
        """
        if not 0 < half_angle_deg <= 45:
            raise ValueError(f"half_angle_deg = {half_angle_deg}: allowed (0, 45]")
        r2, cos2 = self.axis_cos2(axis)
        c = np.cos(np.radians(half_angle_deg)) ** 2
        return self.part(cos2 >= c), self.part((cos2 <= 1 - c) & (r2 > 0))

    def cone_masks(self, axis: int, step_deg: float, half_angle_deg: float):
        """(azimuth in degrees, mask) of each cone of :func:`azimuthal_correlations`.

        Parameters
        ----------
        axis : int
            The rotation axis.
        step_deg : float
            Azimuth between cones, degrees, in (0, 90].
        half_angle_deg : float
            Half-angle of each cone, degrees, in (0, 45].
        """
        if not 0 < half_angle_deg <= 45 or not 0 < step_deg <= 90:
            raise ValueError(f"half_angle_deg = {half_angle_deg}, step_deg = {step_deg}: "
                             "allowed (0, 45] and (0, 90]")
        u, v = (self.grids[i] for i in range(3) if i != axis)
        r = np.sqrt(sum(g ** 2 for g in self.grids))
        cos_a = np.cos(np.radians(half_angle_deg))
        for az in np.arange(0.0, 180.0 - 1e-9, step_deg):
            t = np.radians(az)
            yield float(az), (np.abs(np.cos(t) * u + np.sin(t) * v) >= cos_a * r) & (r > 0)

    def cones(self, axis: int, step_deg: float, half_angle_deg: float) -> list:
        """(azimuth, FSC) of each cone across ``axis``: :func:`azimuthal_correlations`.

        Parameters
        ----------
        axis, step_deg, half_angle_deg
            As :meth:`cone_masks`.
        """
        return [(az, self.part(m)) for az, m in self.cone_masks(axis, step_deg, half_angle_deg)]


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
