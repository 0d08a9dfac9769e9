"""Formatting of forecast values with their units (tables, reports)."""

from __future__ import annotations

import math


def format_value(key: str, value) -> str:
    """``value`` of forecast key ``key`` for people: SI prefixes for metres and bytes."""
    from twin.forecast import UNITS

    unit = UNITS.get(key, "")
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
