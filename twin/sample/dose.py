"""Radiation dose from xraylib energy-absorption coefficients.

Energy deposited by N photons of energy E crossing a path L of a material with linear
attenuation μ and energy absorption μ_en: E_dep = N·E·(μ_en/μ)·(1 − exp(−μL)). The dose is
E_dep divided by the irradiated mass (Gy = J/kg). For a rotating sample the absorbed fraction is
averaged over every ray of the field of view and every projection angle, so rays that miss the
sample deposit nothing; the rays are laid over the sample's footprint
(:func:`field_absorbed_fraction`), so the dose of a fixed sample does not depend on the field.
"""

from __future__ import annotations

import math

import numpy as np

from twin.core.constants import photon_energy_j


def absorbed_fraction_slab(mu_per_m, thickness_m):
    """1 − exp(−μt): the fraction of photons a slab removes from the beam (Beer–Lambert).

    Parameters
    ----------
    mu_per_m : float or array_like
        Linear attenuation coefficient μ, 1/m.
    thickness_m : float or array_like
        Path length t through the slab, metres.

    Returns
    -------
    numpy.ndarray
        Fraction in [0, 1] (broadcast shape).
    """
    return 1.0 - np.exp(-np.asarray(mu_per_m) * np.asarray(thickness_m))


def chord_lengths_m(shape: str, size_x_m: float, size_z_m: float, fov_width_m: float,
                    angles_rad: np.ndarray, n_rays: int = 512, s_m=None) -> np.ndarray:
    """Path lengths (n_angles, n_rays) through a cylinder or box cross-section.

    Rays are parallel, evenly spaced across ``fov_width_m`` (centred on the rotation axis),
    or at the detector coordinates ``s_m`` if given; ``size_x_m`` is the extent along x and
    ``size_z_m`` along the beam at angle 0.

    Parameters
    ----------
    shape : {"cylinder", "box"}
        Cross-section; anything but "cylinder" is treated as a box. A cylinder's diameter is
        ``size_x_m`` (``size_z_m`` is then ignored).
    size_x_m, size_z_m : float
        Extent across the beam and along it at angle 0, metres.
    fov_width_m : float
        Width of the field the rays cover, metres (ignored with ``s_m``).
    angles_rad : array_like (n_angles,)
        Projection angles, radians.
    n_rays : int
        Number of rays (ignored with ``s_m``).
    s_m : array_like (n_rays,), optional
        Ray coordinates across the beam, metres from the rotation axis.

    Returns
    -------
    numpy.ndarray
        (n_angles, n_rays) chord lengths, metres (0 for rays that miss).
    """
    if s_m is None:
        s = (np.arange(n_rays) + 0.5) / n_rays * fov_width_m - fov_width_m / 2
    else:
        s = np.asarray(s_m, dtype=float)
        n_rays = len(s)
    if shape == "cylinder":
        r = size_x_m / 2
        chord = 2 * np.sqrt(np.clip(r * r - s * s, 0, None))
        return np.broadcast_to(chord, (len(angles_rad), n_rays)).copy()
    # Rectangle rotated by θ: clip the ray p + t·d against the slabs |x| ≤ a/2, |z| ≤ b/2.
    th = np.asarray(angles_rad)[:, None]
    dx, dz = -np.sin(th), np.cos(th)          # ray direction in the sample frame
    px, pz = s[None, :] * np.cos(th), s[None, :] * np.sin(th)
    half = (size_x_m / 2, size_z_m / 2)
    tmin = np.full(np.broadcast_shapes(th.shape, s[None, :].shape), -np.inf)
    tmax = np.full_like(tmin, np.inf)
    for p, d, h in ((px, dx, half[0]), (pz, dz, half[1])):
        with np.errstate(divide="ignore", invalid="ignore"):
            t1 = (-h - p) / d
            t2 = (h - p) / d
        lo, hi = np.minimum(t1, t2), np.maximum(t1, t2)
        parallel = np.abs(d) < 1e-12
        inside = np.abs(p) <= h
        lo = np.where(parallel, np.where(inside, -np.inf, np.inf), lo)
        hi = np.where(parallel, np.where(inside, np.inf, -np.inf), hi)
        tmin, tmax = np.maximum(tmin, lo), np.minimum(tmax, hi)
    return np.clip(tmax - tmin, 0, None)


def field_absorbed_fraction(mu_per_m: float, shape: str, size_x_m: float, size_z_m: float,
                            fov_width_m: float, angles_rad: np.ndarray,
                            n_rays: int = 512) -> float:
    """Mean of 1 − exp(−μL) over a field ``fov_width_m`` wide (centred on the axis), with the
    rays spent on the sample's footprint.

    Rays that miss the sample absorb nothing, so the field's mean is the footprint's mean times
    the footprint's share of the field. The footprint is the sample's widest half-extent over
    every angle (d/2 for a cylinder, the half-diagonal for a box), clipped to the field: a 6 µm
    sample in a 6 mm field gets its ``n_rays`` rays, not the one or none that an even spacing
    over the field would give it.

    Parameters
    ----------
    mu_per_m : float
        Linear attenuation coefficient, 1/m.
    shape : {"cylinder", "box"}
    size_x_m, size_z_m : float
        The sample's extent across the beam and along it at angle 0, metres.
    fov_width_m : float
        The scanned field's width, metres.
    angles_rad : array
        Projection angles, radians.
    n_rays : int
        Rays across the footprint.

    Returns
    -------
    float
        The absorbed fraction averaged over the field and the angles.
    """
    half = size_x_m / 2 if shape == "cylinder" else math.hypot(size_x_m, size_z_m) / 2
    span = min(fov_width_m, 2 * half)
    if span <= 0 or fov_width_m <= 0:
        return 0.0
    s = (np.arange(n_rays) + 0.5) / n_rays * span - span / 2
    chords = chord_lengths_m(shape, size_x_m, size_z_m, span, angles_rad, s_m=s)
    return mean_absorbed_fraction(mu_per_m, chords) * span / fov_width_m


def mean_absorbed_fraction(mu_per_m: float, chords_m: np.ndarray) -> float:
    """Mean of 1 − exp(−μL) over all rays (misses included, with L = 0).

    Parameters
    ----------
    mu_per_m : float
        Linear attenuation coefficient μ, 1/m.
    chords_m : array_like
        Path lengths L, metres, any shape.

    Returns
    -------
    float
    """
    return float(np.mean(absorbed_fraction_slab(mu_per_m, chords_m)))


def energy_deposited_j(n_photons, energy_kev, mu_en_over_mu, absorbed_fraction):
    """N·E·(μ_en/μ)·f_abs in joules.

    Parameters
    ----------
    n_photons : float or array_like
        Number of incident photons N.
    energy_kev : float or array_like
        Photon energy E, keV.
    mu_en_over_mu : float or array_like
        Ratio of the energy-absorption to the total attenuation coefficient.
    absorbed_fraction : float or array_like
        Fraction of the photons removed from the beam, f_abs.

    Returns
    -------
    numpy.ndarray
        Deposited energy, joules.
    """
    return (np.asarray(n_photons) * photon_energy_j(energy_kev) * np.asarray(mu_en_over_mu)
            * np.asarray(absorbed_fraction))


def dose_gy(energy_j, mass_kg):
    """Dose in grays: deposited energy over irradiated mass.

    Parameters
    ----------
    energy_j : float or array_like
        Deposited energy, joules.
    mass_kg : float or array_like
        Irradiated mass, kilograms.

    Returns
    -------
    numpy.ndarray
        Dose, Gy (J/kg).
    """
    return np.asarray(energy_j) / np.asarray(mass_kg)
