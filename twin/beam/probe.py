"""The illumination: a Fresnel zone plate probe, its partially coherent modes, coded beams.

Model. A zone plate of diameter D and outermost zone Δr focuses at f = D·Δr/λ. Behind it a ray
at radius r in the zone plate reaches the focal plane with spatial frequency r/(λf), so the
angular spectrum of the focal field is the pupil (an annulus from the central stop to D)
stretched to the frequency disc |q| ≤ D/(2λf) = 1/(2Δr). The probe at a distance Δz past the
focus is that spectrum times the Fresnel transfer function exp(−iπλΔz|q|²), transformed back
(first diffraction order only: the order-sorting aperture is taken as ideal).

Partial coherence: a source of finite size illuminates the zone plate from a spread of
directions; each source point displaces the focus, and so the probe, laterally (a phase ramp
across the pupil). The mutual intensity of those
probes is decomposed into orthogonal modes (an SVD), whose powers follow from the source size;
the size is chosen so that the first mode carries the scenario's ``coherent_fraction``.

Multibeam (Lyubomirskiy et al., Sci. Rep. 12, 6203, 2022): each beam passes its own coded
aperture, a random binary phase plate in the pupil, so the beams are mutually distinct.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from twin.beam import optics
from twin.core.errors import TwinInputError
from twin.core.xp import ifft2


@dataclass(frozen=True)
class ZonePlate:
    diameter_m: float
    outermost_zone_m: float
    central_stop_m: float = 0.0

    def focal_length_m(self, wavelength_m: float) -> float:
        """First-order focal length D·Δr/λ of this zone plate.

        Parameters
        ----------
        wavelength_m : float
            Wavelength λ, metres.

        Returns
        -------
        float
            Focal length in metres.
        """
        return float(optics.focal_length_m(self.diameter_m, self.outermost_zone_m, wavelength_m))


def _freqs(n: int, dx_m: float):
    q = np.fft.fftfreq(n, dx_m)
    return q[:, None], q[None, :]


def pupil_spectrum(n: int, dx_m: float, zp: ZonePlate, wavelength_m: float,
                   tilt_m=(0.0, 0.0), code=None) -> np.ndarray:
    """The focal field's angular spectrum (n, n), unshifted FFT order.

    The pupil is an annulus from the central stop to the zone-plate diameter mapped to the
    frequency disc q_in ≤ |q| ≤ q_out = D/(2λf), with a soft edge one frequency pixel wide.

    Parameters
    ----------
    n : int
        Array side, pixels.
    dx_m : float
        Pixel size in the focal plane, metres.
    zp : ZonePlate
        The zone plate.
    wavelength_m : float
        Wavelength, metres.
    tilt_m : (2,) float
        Lateral shift (y, x) of the focus, metres: a phase ramp across the pupil.
    code : (n, n) complex ndarray or None
        Optional mask in the same frequency order (a coded aperture), multiplied in.

    Returns
    -------
    numpy.ndarray
        (n, n) complex128 spectrum, unshifted FFT order.

    Raises
    ------
    TwinInputError
        ``optics.outermost_zone_nm`` when the zone plate's cone exceeds the Nyquist frequency
        0.5/dx_m of the grid.
    """
    qy, qx = _freqs(n, dx_m)
    q = np.sqrt(qx ** 2 + qy ** 2)
    f = zp.focal_length_m(wavelength_m)
    q_out = zp.diameter_m / (2 * wavelength_m * f)
    q_in = zp.central_stop_m / (2 * wavelength_m * f)
    if q_out > 0.5 / dx_m:
        raise TwinInputError(
            "optics.outermost_zone_nm", zp.outermost_zone_m * 1e9,
            f"the zone plate's cone is wider than the detector crop sees: the object pixel "
            f"λz/(N·p) = {dx_m * 1e9:.4g} nm must not exceed Δr; use a larger outermost zone, "
            f"a larger detector.crop or a shorter detector.distance_m")
    # soft edge (one frequency pixel) keeps the probe free of ringing from the hard cut-off
    dq = 1.0 / (n * dx_m)
    ring = np.clip((q_out - q) / dq + 0.5, 0, 1) * np.clip((q - q_in) / dq + 0.5, 0, 1)
    spec = ring * np.exp(-2j * np.pi * (qy * tilt_m[0] + qx * tilt_m[1]))
    if code is not None:
        spec = spec * code
    return spec


def zone_plate_probe(n: int, dx_m: float, zp: ZonePlate, wavelength_m: float,
                     defocus_m: float, tilt_m=(0.0, 0.0), code=None) -> np.ndarray:
    """(n, n) complex64 probe at ``defocus_m`` past the focus, unit total intensity.

    Parameters
    ----------
    n : int
        Probe side, pixels.
    dx_m : float
        Pixel size, metres.
    zp : ZonePlate
        The zone plate.
    wavelength_m : float
        Wavelength, metres.
    defocus_m : float
        Distance of the probe plane past the focus, metres (Fresnel transfer function
        exp(−iπλΔz|q|²)).
    tilt_m : (2,) float
        Lateral shift (y, x) of the focus, metres.
    code : (n, n) complex ndarray or None
        Coded aperture in unshifted FFT order (see :func:`coded_aperture`).

    Returns
    -------
    numpy.ndarray
        (n, n) complex64 probe, centred (fftshifted), Σ|P|² = 1.

    Raises
    ------
    TwinInputError
        From :func:`pupil_spectrum` when the grid is too coarse for the zone plate.
    """
    qy, qx = _freqs(n, dx_m)
    spec = pupil_spectrum(n, dx_m, zp, wavelength_m, tilt_m, code)
    spec = spec * np.exp(-1j * np.pi * wavelength_m * defocus_m * (qx ** 2 + qy ** 2))
    p = np.fft.fftshift(ifft2(spec, norm="ortho"))
    p /= np.sqrt(np.sum(np.abs(p) ** 2))
    return p.astype(np.complex64)


def coded_aperture(n: int, seed: int, feature_px: int = 4) -> np.ndarray:
    """Random binary (0/π) phase plate in pupil coordinates, in unshifted FFT order.

    Parameters
    ----------
    n : int
        Side of the plate, pixels.
    seed : int
        Seed of the random cells (``numpy.random.default_rng``).
    feature_px : int
        Side of one square cell of constant phase, pixels.

    Returns
    -------
    numpy.ndarray
        (n, n) complex128 mask with values ±1 (phases 0 or π), ifftshifted to match
        :func:`pupil_spectrum`.
    """
    rng = np.random.default_rng(seed)
    m = -(-n // feature_px)
    cells = rng.integers(0, 2, size=(m, m))
    plate = np.kron(cells, np.ones((feature_px, feature_px)))[:n, :n]
    return np.fft.ifftshift(np.exp(1j * np.pi * plate))


def source_sigma_at_focus_m(source_size_m, source_distance_m: float, focal_length_m: float):
    """(σ_y, σ_x) rms size of the source's demagnified image in the focal plane, metres.

    A source point displaced by a at distance L before a lens of focal length f ≪ L is imaged
    displaced by a·f/L (thin lens): σ_focus = σ_source·f/L, per axis.

    Parameters
    ----------
    source_size_m : (2,) float
        rms source size (horizontal = x, vertical = y), metres.
    source_distance_m, focal_length_m : float
        Source–zone-plate distance and the zone plate's focal length, metres.
    """
    h, v = (float(a) for a in source_size_m)
    m = focal_length_m / source_distance_m
    return v * m, h * m


def _modes_for_source(n, dx_m, zp, wavelength_m, defocus_m, sigma_m, code, n_points=7,
                      max_modes=None):
    """Mode powers and (K, n, n) orthonormal modes for a Gaussian source of rms size sigma_m
    (a number, or (σ_y, σ_x); demagnified to the focal plane), from K = n_points² source
    points.

    Each source point tilts the focus, a separable phase ramp ey(q_y)·ex(q_x) across the
    pupil; the inverse FFT is unitary, so the Gram matrix of the K probes is computed in the
    pupil plane, ⟨P_i, P_j⟩ = Σ_q |S(q)|² r_i(q) r_j*(q), as two matrix products over q_x and
    q_y (O(n²·K) instead of K FFTs and an O(n²·K²) product). Its eigen-decomposition gives the
    mode powers; a mode is the pupil spectrum times Σ_i c_i r_i = Ey·C·Exᵀ, so only the modes
    returned (at most ``max_modes``; none when 0) need an inverse FFT.
    """
    qy, qx = _freqs(n, dx_m)
    spec = pupil_spectrum(n, dx_m, zp, wavelength_m, code=code)
    spec = spec * np.exp(-1j * np.pi * wavelength_m * defocus_m * (qx ** 2 + qy ** 2))
    sy, sx = (sigma_m, sigma_m) if np.ndim(sigma_m) == 0 else sigma_m
    if sy <= 0 and sx <= 0:
        p = np.fft.fftshift(ifft2(spec, norm="ortho"))
        return np.array([1.0]), (p / np.linalg.norm(p))[None]
    u = np.linspace(-2.5, 2.5, n_points)
    uy_1d = u if sy > 0 else np.array([0.0])
    ux_1d = u if sx > 0 else np.array([0.0])
    uy, ux = np.meshgrid(uy_1d, ux_1d, indexing="ij")
    w = np.exp(-(uy ** 2 + ux ** 2) / 2)
    w /= w.sum()                                                      # (ky, kx)
    ey = np.exp(-2j * np.pi * qy[:, 0][:, None] * (uy_1d * sy)[None])   # (n, ky)
    ex = np.exp(-2j * np.pi * qx[0][:, None] * (ux_1d * sx)[None])      # (n, kx)
    s2 = np.abs(spec) ** 2
    ky, kx = len(uy_1d), len(ux_1d)
    # G[(a,i),(b,j)] = Σ_{qy,qx} |S|² ey_a ey_b* ex_i ex_j*
    exx = (ex[:, :, None] * ex.conj()[:, None, :]).reshape(n, kx * kx)  # (n, kx·kx)
    t = (s2 @ exx).reshape(n, kx, kx)                                   # (n_qy, i, j)
    g = np.einsum("qa,qb,qij->aibj", ey, ey.conj(), t, optimize=True).reshape(ky * kx, -1)
    sw = np.sqrt(w.ravel())
    g = sw[:, None] * g * sw[None, :]
    total = float(np.real(np.trace(g)))                               # Σ_i w_i ‖P_i‖²
    g /= total
    evals, vec = np.linalg.eigh(g)
    order = np.argsort(evals)[::-1]
    evals, vec = np.clip(evals[order], 0, None), vec[:, order]
    keep = evals > 1e-12 * evals[0]
    power = evals[keep] / evals.sum()
    k = int(keep.sum()) if max_modes is None else int(min(max_modes, keep.sum()))
    # mode m = Σ_i conj(vec[i, m]) a_i / sqrt(λ_m), a_i = sqrt(w_i) P_i (normalised)
    modes = np.empty((k, n, n), np.complex128)
    for m in range(k):
        c = (vec[:, m].conj() * sw / np.sqrt(evals[m] * total)).reshape(ky, kx)
        field = spec * (ey @ c @ ex.T)
        modes[m] = np.fft.fftshift(ifft2(field, norm="ortho"))
    return power, modes


def _strongest_modes(n, dx_m, zp, wavelength_m, defocus_m, sigma_m, code, n_modes,
                     power_kept, photons) -> np.ndarray:
    """:func:`probe_modes` for a source of focal-plane rms size ``sigma_m``: the fewest
    strongest modes (at most ``n_modes``) that carry ``power_kept`` of the power, rescaled to
    ``photons``; (M, n, n) complex64."""
    power, _ = _modes_for_source(n, dx_m, zp, wavelength_m, defocus_m, sigma_m, code,
                                 max_modes=0)
    k = int(min(n_modes, np.searchsorted(np.cumsum(power), power_kept) + 1, len(power)))
    power, vecs = _modes_for_source(n, dx_m, zp, wavelength_m, defocus_m, sigma_m, code,
                                    max_modes=k)
    modes = vecs[:k] * np.sqrt(power[:k] / power[:k].sum() * photons)[:, None, None]
    return modes.astype(np.complex64)


def _modes_for_fraction(n, dx_m, zp, wavelength_m, defocus_m, code, n_modes,
                        coherent_fraction):
    """(modes (n_modes, n, n) complex64 of unit norm, zero where fewer exist; their powers
    (n_modes,)) for the source size, found by bisection, at which the first mode carries
    ``coherent_fraction`` of the power of the ``n_modes`` strongest."""
    spot = max(1.22 * zp.outermost_zone_m, dx_m)
    lo, hi = 0.0, 20 * spot
    for _ in range(24):
        mid = 0.5 * (lo + hi)
        power, _ = _modes_for_source(n, dx_m, zp, wavelength_m, defocus_m, mid, code,
                                     max_modes=0)
        share = power[0] / power[:n_modes].sum()      # the first mode's share of what is kept
        lo, hi = (mid, hi) if share > coherent_fraction else (lo, mid)
    power, vecs = _modes_for_source(n, dx_m, zp, wavelength_m, defocus_m, 0.5 * (lo + hi),
                                    code, max_modes=n_modes)
    k = min(n_modes, len(power))
    modes = np.zeros((n_modes, n, n), np.complex64)
    modes[:k] = vecs[:k]
    return modes, np.concatenate([power[:k], np.zeros(n_modes - k)])


def probe_modes(n: int, dx_m: float, zp: ZonePlate, wavelength_m: float, defocus_m: float,
                n_modes: int = 1, coherent_fraction: float = 1.0, photons: float = 1.0,
                code=None, source_sigma_m=None, power_kept: float = 0.99) -> np.ndarray:
    """(M, n, n) complex64 orthogonal probe modes; Σ‖P_m‖² = ``photons``.

    Parameters
    ----------
    n : int
        Probe side, pixels.
    dx_m : float
        Pixel size, metres.
    zp : ZonePlate
    wavelength_m, defocus_m : float
        Wavelength and the sample's distance past the focus, metres.
    n_modes : int
        Most modes returned.
    coherent_fraction : float
        Without ``source_sigma_m``: the source size is found (bisection) so that the first mode
        carries this fraction of the power; exactly ``n_modes`` modes are returned.
    photons : float
        Total power Σ‖P_m‖² (photons per exposure).
    code : (n, n) complex or None
        Coded aperture (multibeam).
    source_sigma_m : float or (σ_y, σ_x) or None
        rms size of the source's image in the focal plane
        (:func:`source_sigma_at_focus_m`): the modes and their powers follow from it, and
        only the strongest modes that carry ``power_kept`` of the power (at most ``n_modes``)
        are returned, rescaled to ``photons``.
    power_kept : float
        With ``source_sigma_m``: the fraction of the power the returned modes must carry; the
        fewest strongest modes that reach it are kept (at most ``n_modes``).

    Returns
    -------
    numpy.ndarray
        (M, n, n) complex64 modes, centred (fftshifted); M = ``n_modes`` without
        ``source_sigma_m`` (zero modes where fewer exist), else at most ``n_modes``.

    Raises
    ------
    TwinInputError
        From :func:`pupil_spectrum` when the grid is too coarse for the zone plate.
    """
    if source_sigma_m is not None:
        return _strongest_modes(n, dx_m, zp, wavelength_m, defocus_m, source_sigma_m, code,
                                n_modes, power_kept, photons)
    if coherent_fraction >= 1.0 or n_modes == 1:
        p = zone_plate_probe(n, dx_m, zp, wavelength_m, defocus_m, code=code)
        modes = np.zeros((n_modes, n, n), np.complex64)
        modes[0] = p
        power = np.zeros(n_modes)
        power[0] = 1.0   # fully coherent, or a single mode asked for: all power in it
    else:
        modes, power = _modes_for_fraction(n, dx_m, zp, wavelength_m, defocus_m, code, n_modes,
                                           coherent_fraction)
    scaled = modes * np.sqrt(power * photons / max(power.sum(), 1e-30))[:, None, None]
    return scaled.astype(np.complex64)


def probe_power(modes) -> np.ndarray:
    """Power ‖P_m‖² of each mode.

    Parameters
    ----------
    modes : array_like
        (..., n, n) complex probe modes.

    Returns
    -------
    numpy.ndarray
        (...) float sum of |P|² over the last two axes (photons when the modes are scaled to
        photons).
    """
    return np.sum(np.abs(np.asarray(modes)) ** 2, axis=(-2, -1))


def beam_diameter_rms_m(probe, dx_m: float) -> float:
    """Twice the rms radius of the probe intensity (all modes): a size measure in metres.

    The rms radius is taken about the intensity centroid.

    Parameters
    ----------
    probe : array_like
        (n, n) or (..., n, n) complex probe; leading axes (modes) are summed incoherently.
    dx_m : float
        Pixel size, metres.

    Returns
    -------
    float
        2·rms radius of the intensity, metres.
    """
    i = np.sum(np.abs(np.asarray(probe).reshape(-1, *np.shape(probe)[-2:])) ** 2, axis=0)
    n = i.shape[0]
    y, x = (np.mgrid[:n, :n] - n // 2) * dx_m
    cy, cx = np.sum(i * y) / i.sum(), np.sum(i * x) / i.sum()
    return float(2 * np.sqrt(np.sum(i * ((x - cx) ** 2 + (y - cy) ** 2)) / i.sum()))
