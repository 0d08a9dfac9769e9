"""Fresnel zone plate optics: closed forms used by the forecast and by the probe model.

A zone plate of diameter D and outermost zone width Δr focuses photons of wavelength λ at
f = D·Δr/λ (first order), with numerical aperture NA = λ/(2Δr), Rayleigh resolution 1.22·Δr and
depth of focus ±2Δr²/λ (Attwood, *Soft X-rays and Extreme Ultraviolet Radiation*, ch. 9).
The beam behind the focus is a cone of full angle D/f = λ/Δr: at a defocus Δz its geometric
diameter is D·|Δz|/f, and on a detector at distance z downstream of the sample the direct
beam fills a disc of diameter z·λ/Δr (with the central stop's shadow in its middle).
"""

from __future__ import annotations

import numpy as np


def focal_length_m(diameter_m, outermost_zone_m, wavelength_m):
    """First-order focal length f = D·Δr/λ of a zone plate.

    Parameters
    ----------
    diameter_m : float or array_like
        Zone-plate diameter D, metres.
    outermost_zone_m : float or array_like
        Outermost zone width Δr, metres.
    wavelength_m : float or array_like
        Wavelength λ, metres.

    Returns
    -------
    numpy.ndarray
        Focal length in metres (0-d for scalar input; broadcast shape otherwise).
    """
    return np.asarray(diameter_m) * np.asarray(outermost_zone_m) / np.asarray(wavelength_m)


def numerical_aperture(outermost_zone_m, wavelength_m):
    """Numerical aperture NA = λ/(2Δr) of a zone plate.

    Parameters
    ----------
    outermost_zone_m : float or array_like
        Outermost zone width Δr, metres.
    wavelength_m : float or array_like
        Wavelength λ, metres.

    Returns
    -------
    numpy.ndarray
        Numerical aperture (dimensionless, broadcast shape of the inputs).
    """
    return np.asarray(wavelength_m) / (2.0 * np.asarray(outermost_zone_m))


def depth_of_focus_m(outermost_zone_m, wavelength_m):
    """Full depth of focus 4Δr²/λ (i.e. ±2Δr²/λ about the focus).

    Parameters
    ----------
    outermost_zone_m : float or array_like
        Outermost zone width Δr, metres.
    wavelength_m : float or array_like
        Wavelength λ, metres.

    Returns
    -------
    numpy.ndarray
        Full (not half) depth of focus in metres.
    """
    return 4.0 * np.asarray(outermost_zone_m) ** 2 / np.asarray(wavelength_m)


def rayleigh_resolution_m(outermost_zone_m):
    """Rayleigh resolution 1.22·Δr of the focused spot.

    Parameters
    ----------
    outermost_zone_m : float or array_like
        Outermost zone width Δr, metres.

    Returns
    -------
    numpy.ndarray
        Rayleigh resolution in metres.
    """
    return 1.22 * np.asarray(outermost_zone_m)


def number_of_zones(diameter_m, outermost_zone_m):
    """Number of zones N = D/(4Δr) of a zone plate.

    Parameters
    ----------
    diameter_m : float or array_like
        Zone-plate diameter D, metres.
    outermost_zone_m : float or array_like
        Outermost zone width Δr, metres.

    Returns
    -------
    numpy.ndarray
        Number of zones (a float, not rounded).
    """
    return np.asarray(diameter_m) / (4.0 * np.asarray(outermost_zone_m))


def beam_diameter_at_defocus_m(diameter_m, outermost_zone_m, wavelength_m, defocus_m):
    """Geometric beam diameter D·|Δz|/f at a distance Δz from the focus (no diffraction).

    Parameters
    ----------
    diameter_m : float or array_like
        Zone-plate diameter D, metres.
    outermost_zone_m : float or array_like
        Outermost zone width Δr, metres.
    wavelength_m : float or array_like
        Wavelength λ, metres.
    defocus_m : float or array_like
        Distance Δz from the focus, metres; its sign is ignored.

    Returns
    -------
    numpy.ndarray
        Full beam diameter in metres.
    """
    f = focal_length_m(diameter_m, outermost_zone_m, wavelength_m)
    return np.asarray(diameter_m) * np.abs(np.asarray(defocus_m)) / f


def defocus_for_beam_diameter_m(diameter_m, outermost_zone_m, wavelength_m, beam_diameter_m):
    """Distance past the focus at which the geometric beam diameter equals ``beam_diameter_m``.

    Inverse of :func:`beam_diameter_at_defocus_m`: Δz = d·f/D.

    Parameters
    ----------
    diameter_m : float or array_like
        Zone-plate diameter D, metres.
    outermost_zone_m : float or array_like
        Outermost zone width Δr, metres.
    wavelength_m : float or array_like
        Wavelength λ, metres.
    beam_diameter_m : float or array_like
        Wanted full beam diameter d, metres.

    Returns
    -------
    numpy.ndarray
        Defocus Δz in metres (non-negative for non-negative input).
    """
    f = focal_length_m(diameter_m, outermost_zone_m, wavelength_m)
    return np.asarray(beam_diameter_m) * f / np.asarray(diameter_m)


def far_field_disc_diameter_m(outermost_zone_m, wavelength_m, distance_m):
    """Diameter z·λ/Δr of the direct-beam disc on a detector at ``distance_m`` from the sample.

    Parameters
    ----------
    outermost_zone_m : float or array_like
        Outermost zone width Δr, metres.
    wavelength_m : float or array_like
        Wavelength λ, metres.
    distance_m : float or array_like
        Sample–detector distance z, metres.

    Returns
    -------
    numpy.ndarray
        Disc diameter on the detector in metres.
    """
    return np.asarray(distance_m) * np.asarray(wavelength_m) / np.asarray(outermost_zone_m)
