"""Formatting of forecast values with their units (tables, reports)."""

from __future__ import annotations

import math


# Units named by a key's suffix (CONTRACTS: SI unless the suffix says otherwise), longest first.
_SUFFIX_UNITS = (
    ("_bytes_per_s", "B/s"), ("_um2_per_s", "µm²/s"), ("_um3_per_s", "µm³/s"),
    ("_photons_per_um2", "ph/µm²"), ("_per_pixel_hz", "Hz"), ("_bytes", "B"), ("_um3", "µm³"),
    ("_kev", "keV"), ("_days", "d"), ("_hz", "Hz"), ("_gy", "Gy"), ("_m", "m"), ("_s", "s"),
    ("_h", "h"), ("_j", "J"),
)


def unit_of(key: str) -> str:
    """The unit a value key's suffix names (``"resolution_forecast_m"`` → ``"m"``), or ``""``."""
    for suffix, unit in _SUFFIX_UNITS:
        if key.endswith(suffix):
            return unit
    return ""


def format_value(key: str, value, unit: str | None = None) -> str:
    """``value`` of key ``key`` for people: SI prefixes for metres and bytes.

    ``unit`` defaults to the one the key's suffix names (:func:`unit_of`).
    """
    unit = unit_of(key) if unit is None else unit
    if value is None:
        return "—"
    if isinstance(value, bool) or isinstance(value, str):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if unit == "m":
        for scale, name in ((1e-9, "nm"), (1e-6, "µm"), (1e-3, "mm"), (1.0, "m")):
            if abs(value) < 1000 * scale or name == "m":
                return f"{value / scale:.4g} {name}"
    if unit == "B" or unit == "B/s":
        for scale, name in ((1e12, "TB"), (1e9, "GB"), (1e6, "MB"), (1e3, "kB"), (1, "B")):
            if abs(value) >= scale or name == "B":
                return f"{value / scale:.4g} {name}{'/s' if unit == 'B/s' else ''}"
    if math.isfinite(value) and value != 0 and (abs(value) >= 1e5 or abs(value) < 1e-3):
        return f"{value:.4e} {unit}".strip()
    return f"{value:.6g} {unit}".strip()
