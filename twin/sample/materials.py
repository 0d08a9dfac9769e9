"""Refractive index and absorption of materials from xraylib.

The complex refractive index is n = 1 − δ + iβ. Attenuation follows Beer–Lambert,
I/I₀ = exp(−μ t), with μ = 4πβ/λ; the dose uses the mass energy-absorption coefficient μ_en/ρ.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import numpy as np
import xraylib

from twin.core.errors import TwinInputError


@dataclass(frozen=True)
class Material:
    """A compound: a chemical formula or an xraylib NIST compound name, at a density."""

    name: str
    formula: str
    density_g_per_cm3: float


@dataclass(frozen=True)
class MaterialProperties:
    """X-ray optical properties of a material at one photon energy (SI unless named)."""

    material: Material
    energy_kev: float
    delta: float
    beta: float
    mu_per_m: float
    mu_en_over_rho_cm2_per_g: float

    @property
    def attenuation_length_m(self) -> float:
        """1/e intensity attenuation length, 1/μ."""
        return 1.0 / self.mu_per_m

    @property
    def mu_en_per_m(self) -> float:
        """Linear energy-absorption coefficient μ_en in 1/m."""
        return self.mu_en_over_rho_cm2_per_g * self.material.density_g_per_cm3 * 100.0

    def transmission(self, thickness_m):
        """Beer–Lambert intensity transmission exp(−μ t) through thickness_m.

        Parameters
        ----------
        thickness_m : float or array_like
            Thickness t, metres.

        Returns
        -------
        numpy.ndarray
            Intensity transmission in (0, 1], shaped like ``thickness_m``.
        """
        return np.exp(-self.mu_per_m * np.asarray(thickness_m, dtype=float))

    def as_dict(self) -> dict:
        """The fields, with the material's name, formula and density, and ``attenuation_length_m``.

        Returns
        -------
        dict
            Keys ``material``, ``formula``, ``density_g_per_cm3``, ``energy_kev``, ``delta``,
            ``beta``, ``mu_per_m``, ``mu_en_over_rho_cm2_per_g``, ``attenuation_length_m``.
        """
        return {
            "material": self.material.name,
            "formula": self.material.formula,
            "density_g_per_cm3": self.material.density_g_per_cm3,
            "energy_kev": self.energy_kev,
            "delta": self.delta,
            "beta": self.beta,
            "mu_per_m": self.mu_per_m,
            "mu_en_over_rho_cm2_per_g": self.mu_en_over_rho_cm2_per_g,
            "attenuation_length_m": self.attenuation_length_m,
        }


@lru_cache(maxsize=1)
def library() -> dict[str, Material]:
    """The named materials of ``twin/data/materials.toml``, keyed by lower-case name and alias."""
    text = resources.files("twin.data").joinpath("materials.toml").read_text()
    out: dict[str, Material] = {}
    for name, entry in tomllib.loads(text).items():
        mat = Material(name, entry["formula"], float(entry["density_g_per_cm3"]))
        for key in [name, *entry.get("aliases", [])]:
            out[key.lower()] = mat
    return out


def is_compound(formula: str) -> bool:
    """True for a formula xraylib parses or a name in its NIST compound list.

    Parameters
    ----------
    formula : str
        Chemical formula (``"C6H10O2"``) or NIST compound name.

    Returns
    -------
    bool
    """
    try:
        xraylib.CompoundParser(formula)
        return True
    except ValueError:
        pass
    try:
        xraylib.GetCompoundDataNISTByName(formula)
        return True
    except ValueError:
        return False


@lru_cache(maxsize=4096)
def resolve(name_or_formula: str, density_g_per_cm3: float | None = None,
            field: str = "material") -> Material:
    """A :class:`Material` from a library name, a chemical formula or a NIST compound name.

    A library name brings its density unless one is given; a formula needs one (a NIST
    compound name brings xraylib's density). Results are cached.

    Parameters
    ----------
    name_or_formula : str
        Library name or alias (case-insensitive), chemical formula or NIST compound name.
    density_g_per_cm3 : float, optional
        Density, g/cm³, overriding the library's or NIST's.
    field : str
        Name of the scenario field, used in error messages.

    Returns
    -------
    Material

    Raises
    ------
    TwinInputError
        ``<field> density`` for a density that is not finite and > 0, or for a formula given
        without a density; ``<field>`` for a name that is neither in the library nor a compound
        xraylib knows.
    """
    if density_g_per_cm3 is not None and not (np.isfinite(density_g_per_cm3)
                                              and density_g_per_cm3 > 0):
        raise TwinInputError(f"{field} density", density_g_per_cm3,
                             "the density must be a finite number > 0 g/cm³")
    lib = library()
    key = name_or_formula.strip().lower()
    if key in lib:
        mat = lib[key]
        if density_g_per_cm3 is not None:
            mat = Material(mat.name, mat.formula, float(density_g_per_cm3))
        return mat
    if not is_compound(name_or_formula):
        raise TwinInputError(
            field, name_or_formula,
            "allowed: a chemical formula such as 'C6H10O2', an xraylib NIST compound name, "
            f"or one of the named materials {sorted({m.name for m in lib.values()})}")
    if density_g_per_cm3 is None:
        try:
            density_g_per_cm3 = xraylib.GetCompoundDataNISTByName(name_or_formula)["density"]
        except ValueError:
            raise TwinInputError(f"{field} density", None,
                                 f"a density in g/cm³ is required for the formula "
                                 f"{name_or_formula!r}") from None
    return Material(name_or_formula, name_or_formula, float(density_g_per_cm3))


@lru_cache(maxsize=4096)
def properties(material: Material, energy_kev: float) -> MaterialProperties:
    """δ, β, μ and μ_en/ρ of ``material`` at ``energy_kev`` (xraylib, 1–200 keV).

    Parameters
    ----------
    material : Material
        The compound and its density.
    energy_kev : float
        Photon energy, keV.

    Returns
    -------
    MaterialProperties
        δ and β (dimensionless), μ in 1/m and μ_en/ρ in cm²/g. Results are cached.

    Raises
    ------
    TwinInputError
        ``energy_kev`` outside 1–200 keV or not finite.
    """
    if not (np.isfinite(energy_kev) and 1.0 <= energy_kev <= 200.0):
        raise TwinInputError("energy_kev", energy_kev, "allowed: 1 to 200 keV")
    rho = material.density_g_per_cm3
    delta = 1.0 - xraylib.Refractive_Index_Re(material.formula, energy_kev, rho)
    beta = xraylib.Refractive_Index_Im(material.formula, energy_kev, rho)
    mu_per_m = xraylib.CS_Total_CP(material.formula, energy_kev) * rho * 100.0
    mu_en = xraylib.CS_Energy_CP(material.formula, energy_kev)
    return MaterialProperties(material, float(energy_kev), float(delta), float(beta),
                              float(mu_per_m), float(mu_en))


def lookup(name_or_formula: str, energy_kev: float,
           density_g_per_cm3: float | None = None) -> MaterialProperties:
    """Shortcut: :func:`resolve` then :func:`properties`.

    Parameters
    ----------
    name_or_formula : str
        Library name, chemical formula or NIST compound name.
    energy_kev : float
        Photon energy, keV.
    density_g_per_cm3 : float, optional
        Density, g/cm³.

    Returns
    -------
    MaterialProperties

    Raises
    ------
    TwinInputError
        As :func:`resolve` and :func:`properties`.
    """
    return properties(resolve(name_or_formula, density_g_per_cm3), float(energy_kev))
