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
    """First-order focal length f = D·Δr/λ in metres."""
    return np.asarray(diameter_m) * np.asarray(outermost_zone_m) / np.asarray(wavelength_m)


def numerical_aperture(outermost_zone_m, wavelength_m):
    """NA = λ/(2Δr)."""
    return np.asarray(wavelength_m) / (2.0 * np.asarray(outermost_zone_m))


def depth_of_focus_m(outermost_zone_m, wavelength_m):
    """Full depth of focus 4Δr²/λ (i.e. ±2Δr²/λ about the focus)."""
    return 4.0 * np.asarray(outermost_zone_m) ** 2 / np.asarray(wavelength_m)


def rayleigh_resolution_m(outermost_zone_m):
    """Rayleigh resolution 1.22·Δr of the focused spot."""
    return 1.22 * np.asarray(outermost_zone_m)


def number_of_zones(diameter_m, outermost_zone_m):
    """N = D/(4Δr)."""
    return np.asarray(diameter_m) / (4.0 * np.asarray(outermost_zone_m))


def beam_diameter_at_defocus_m(diameter_m, outermost_zone_m, wavelength_m, defocus_m):
    """Geometric beam diameter D·|Δz|/f at a distance Δz from the focus (no diffraction)."""
    f = focal_length_m(diameter_m, outermost_zone_m, wavelength_m)
    return np.asarray(diameter_m) * np.abs(np.asarray(defocus_m)) / f


def defocus_for_beam_diameter_m(diameter_m, outermost_zone_m, wavelength_m, beam_diameter_m):
    """Distance past the focus at which the geometric beam diameter equals ``beam_diameter_m``."""
    f = focal_length_m(diameter_m, outermost_zone_m, wavelength_m)
    return np.asarray(beam_diameter_m) * f / np.asarray(diameter_m)


def far_field_disc_diameter_m(outermost_zone_m, wavelength_m, distance_m):
    """Diameter of the direct-beam disc on a detector at ``distance_m`` from the sample."""
    return np.asarray(distance_m) * np.asarray(wavelength_m) / np.asarray(outermost_zone_m)
