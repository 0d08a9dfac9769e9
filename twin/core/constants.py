"""Physical constants (CODATA 2018, SI) and unit conversions used throughout twin."""

from __future__ import annotations

import numpy as np

H_PLANCK_J_S = 6.62607015e-34
C_LIGHT_M_PER_S = 299_792_458.0
E_CHARGE_C = 1.602176634e-19
#: h·c in keV·m, so that λ[m] = HC_KEV_M / E[keV]
HC_KEV_M = H_PLANCK_J_S * C_LIGHT_M_PER_S / (E_CHARGE_C * 1e3)
UM = 1e-6
UM2 = 1e-12
UM3 = 1e-18


def wavelength_m(energy_kev):
    """X-ray wavelength in metres for a photon energy in keV (array-friendly).

    Parameters
    ----------
    energy_kev : float or array_like
        Photon energy, keV.

    Returns
    -------
    numpy.ndarray
        λ = h·c/E in metres, float64, same shape as ``energy_kev``.
    """
    return HC_KEV_M / np.asarray(energy_kev, dtype=float)


def photon_energy_j(energy_kev):
    """Photon energy in joules for an energy in keV.

    Parameters
    ----------
    energy_kev : float or array_like
        Photon energy, keV.

    Returns
    -------
    numpy.ndarray
        Energy in joules (E[keV]·10³·e), float64, same shape as ``energy_kev``.
    """
    return np.asarray(energy_kev, dtype=float) * 1e3 * E_CHARGE_C
