"""Values for people: labels, units and the unit a scientist would quote (tables, reports, CLI).

Every stored value is SI unless its key's suffix says otherwise (CONTRACTS); :data:`LABELS`
gives each known key a label and the unit of its stored value, and :func:`format_value` writes
the value in the unit one would quote: nm or µm for lengths, h or days for long times, TB for
data, MGy for dose, kHz for rates, per cent for overlaps.
"""

from __future__ import annotations

import math

# Units named by a key's suffix (CONTRACTS: SI unless the suffix says otherwise), longest first.
_SUFFIX_UNITS = (
    ("_bytes_per_s", "B/s"), ("_um2_per_s", "µm²/s"), ("_um3_per_s", "µm³/s"),
    ("_photons_per_um2", "ph/µm²"), ("_per_pixel_hz", "Hz"), ("_bytes", "B"), ("_um3", "µm³"),
    ("_kev", "keV"), ("_days", "d"), ("_hz", "Hz"), ("_gy", "Gy"), ("_m", "m"), ("_s", "s"),
    ("_h", "h"), ("_j", "J"),
)

#: key → (label for people, unit of the stored value). ``"%"`` marks a fraction shown in per
#: cent, ``"counts/s"`` a count rate. Keys not listed get their suffix's unit (:func:`unit_of`).
LABELS: dict[str, tuple[str, str]] = {
    # the plan
    "energy_kev": ("photon energy", "keV"),
    "wavelength_m": ("X-ray wavelength", "m"),
    "flux_photons_per_s": ("photon flux at the sample (all beams)", "photons/s"),
    "frame_rate_hz": ("detector frame rate", "Hz"),
    "exposure_s": ("exposure per frame", "s"),
    "frames_per_projection": ("frames per projection", ""),
    "lines_per_projection": ("scan lines per projection (per beam)", ""),
    "scan_rate_um2_per_s": ("area scanned per second", "µm²/s"),
    "scan_time_s": ("raster time per projection", "s"),
    "projection_time_s": ("time per projection (with turnarounds, overheads)", "s"),
    "n_projections": ("projections", ""),
    "n_projections_crowther": ("projections for Crowther's criterion", ""),
    "total_time_s": ("total acquisition time", "s"),
    "total_time_h": ("total acquisition time", "h"),
    "total_time_days": ("total acquisition time", "d"),
    "shifts": ("beamtime in 8-hour shifts (overheads included)", ""),
    "sample_overhead_s": ("alignment and sample change (once per sample)", "s"),
    "imaged_volume_um3": ("imaged volume", "µm³"),
    "volume_rate_um3_per_s": ("volume imaged per second", "µm³/s"),
    # data
    "frame_bytes": ("stored frame size", "B"),
    "data_volume_bytes": ("data volume (stored frames)", "B"),
    "data_rate_bytes_per_s": ("data rate", "B/s"),
    # dose
    "photons_total": ("photons on the sample", "photons"),
    "energy_deposited_j": ("energy absorbed by the sample", "J"),
    "dose_gy": ("dose to the imaged volume", "Gy"),
    "fluence_photons_per_um2": ("fluence per projection", "photons/µm²"),
    # resolution
    "pixel_size_m": ("reconstructed pixel size λz/(N·p)", "m"),
    "resolution_limit_m": ("detector-aperture limit λz/D", "m"),
    "resolution_forecast_m": ("forecast 2D resolution", "m"),
    "resolution_3d_forecast_m": ("forecast 3D resolution", "m"),
    "crowther_resolution_m": ("resolution Crowther allows with these projections", "m"),
    "resolution_simulated_m": ("simulated resolution (FRC half-bit)", "m"),
    "resolution_simulated_std_m": ("standard error of the simulated resolution", "m"),
    "frc_halves_m": ("FRC of two independent halves (half-bit)", "m"),
    "pcc_simulated": ("phase correlation with the truth (simulated)", ""),
    "frc_resolution_m": ("FRC with the truth, half-bit threshold", "m"),
    "frc_resolution_7_m": ("FRC with the truth, 1/7 threshold", "m"),
    # detector
    "peak_count_rate_per_pixel_hz": ("peak count rate on one pixel", "counts/s"),
    "peak_recorded_rate_per_pixel_hz": ("peak recorded rate (after dead time)", "counts/s"),
    "count_rate_loss_fraction": ("counts lost to dead time at the peak", "%"),
    "detector_max_count_rate_per_pixel_hz": ("detector's count-rate limit per pixel", "counts/s"),
    "peak_counts_per_frame": ("peak counts per pixel and frame", "counts"),
    "detector_max_counts": ("counter maximum", "counts"),
    "saturated": ("detector saturated", ""),
    "dose_limit_gy": ("dose limit (beamtime.dose_limit_gy)", "Gy"),
    "dose_limit_exceeded": ("dose over the limit", ""),
    "data_rate_limit_bytes_per_s": ("data-rate limit (beamtime)", "B/s"),
    "data_rate_exceeded": ("data rate over the limit", ""),
    "flags": ("feasibility flags", ""),
    # optics and scan
    "zone_plate_focal_length_m": ("zone-plate focal length", "m"),
    "beam_diameter_m": ("beam diameter at the sample", "m"),
    "defocus_m": ("sample distance from the focus", "m"),
    "depth_of_focus_m": ("depth of focus", "m"),
    "overlap_fast": ("probe overlap along the fast axis", "%"),
    "overlap_slow": ("probe overlap along the slow axis", "%"),
    "position_interpolation_factor": ("frames per captured position", ""),
    "beam_on_time_s": ("beam-on time", "s"),
    "peak_local_dose_gy": ("peak local dose", "Gy"),
    "data_volume_full_frame_bytes": ("data volume (uncropped frames)", "B"),
    "compression_ratio": ("compression ratio", ""),
    "data_volume_compressed_bytes": ("data volume (compressed)", "B"),
    "resolution_exponent_k": ("dose–resolution exponent k", ""),
    "resolution_exponent_k_std": ("standard error of k", ""),
    "resolution_exponent_k_detector": ("exponent above the turnover (detector-limited)", ""),
    "resolution_turnover_fluence_photons_per_um2": ("turnover fluence (worse above it)",
                                                    "ph/µm²"),
    "resolution_extrapolated": ("a term reads the law outside the simulated fluences", ""),
    "resolution_3d_worst_m": ("3D resolution, worst direction", "m"),
    "resolution_3d_along_axis_m": ("3D FSC along the rotation axis (30° cone)", "m"),
    "resolution_3d_across_axis_m": ("3D FSC across the rotation axis (30° band)", "m"),
    "resolution_3d_shell_m": ("3D FSC over whole shells", "m"),
    "missing_wedge_elongation": ("missing-wedge elongation", ""),
    "depth_of_field_m": ("depth of field", "m"),
    "projection_approximation_ok": ("projection approximation holds", ""),
    "dose_limited_3d_resolution_m": (
        "dose-fractionation 3D term (2D law at all projections' fluence)", "m"),
    "resolution_model": ("resolution model", ""),
    "resolution_limited_by": ("resolution limited by", ""),
}

_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")

# (scale in the stored unit, name), largest first, for units with prefixes people use
_PREFIXES = {
    "m": ((1.0, "m"), (1e-3, "mm"), (1e-6, "µm"), (1e-9, "nm"), (1e-12, "pm")),
    "B": ((1e15, "PB"), (1e12, "TB"), (1e9, "GB"), (1e6, "MB"), (1e3, "kB"), (1.0, "B")),
    "B/s": ((1e12, "TB/s"), (1e9, "GB/s"), (1e6, "MB/s"), (1e3, "kB/s"), (1.0, "B/s")),
    "Gy": ((1e5, "MGy", 1e6), (1e3, "kGy", 1e3), (0.0, "Gy", 1.0)),
    "Hz": ((1e9, "GHz"), (1e6, "MHz"), (1e3, "kHz"), (1.0, "Hz")),
    "J": ((1.0, "J"), (1e-3, "mJ"), (1e-6, "µJ"), (1e-9, "nJ")),
}


def unit_of(key: str) -> str:
    """The unit of a key's stored value: :data:`LABELS`'s, else the suffix's, else ``""``.

    ``"resolution_forecast_m"`` → ``"m"``, ``"scan_rate_um2_per_s"`` → ``"µm²/s"``.

    Parameters
    ----------
    key : str
        A value key (CONTRACTS naming: SI unless the suffix says otherwise).

    Returns
    -------
    str
        The unit name; ``""`` for dimensionless or unknown keys.
    """
    if key in LABELS:
        return LABELS[key][1]
    for suffix, unit in _SUFFIX_UNITS:
        if key.endswith(suffix):
            return unit
    return ""


def label(key: str) -> str:
    """The label for people of a value key (the key with spaces where it has none).

    Parameters
    ----------
    key : str
        A value key, possibly dotted (``"forecast.scan_time_s"``).

    Returns
    -------
    str
        :data:`LABELS`'s label for ``key``; otherwise the part after the last dot with its unit
        suffix removed and underscores turned into spaces.
    """
    if key in LABELS:
        return LABELS[key][0]
    name = key.rsplit(".", 1)[-1]
    for suffix, _ in _SUFFIX_UNITS:
        if name.endswith(suffix):
            name = name.removesuffix(suffix)
            break
    return name.replace("_", " ")


def _number(value: float, digits: int = 4) -> str:
    """``value`` to ``digits`` significant figures, as ``1.23 × 10⁶`` beyond 10⁵ or below 10⁻³."""
    if value == 0 or not math.isfinite(value):
        return f"{value:g}"
    if abs(value) >= 1e5 or abs(value) < 1e-3:
        mantissa, exp = f"{value:.{digits - 1}e}".split("e")
        mantissa = mantissa.rstrip("0").rstrip(".")
        return f"{mantissa} × 10{str(int(exp)).translate(_SUPERSCRIPT)}"
    if abs(value) >= 10 ** (digits - 1):                 # 68000, not 6.8e+04
        return f"{round(value, digits - 1 - int(math.floor(math.log10(abs(value))))):,.0f}"
    return f"{value:.{digits}g}"


def _duration(seconds: float) -> str:
    for limit, scale, name in ((1e-3, 1e-6, "µs"), (1.0, 1e-3, "ms"), (120.0, 1.0, "s"),
                               (7200.0, 60.0, "min"), (72 * 3600.0, 3600.0, "h")):
        if abs(seconds) < limit:
            return f"{seconds / scale:.3g} {name}"
    return f"{seconds / 86400:.3g} days"


def display_scale(unit: str, typical: float) -> tuple[float, str]:
    """(factor, unit name) that shows values near ``typical`` (stored in ``unit``) as people
    quote them: multiply a stored value by ``factor`` to get it in the returned unit.

    For plot axes, where one unit must serve a whole range.

    Parameters
    ----------
    unit : str
        Unit of the stored values (``"s"``, ``"%"``, ``"m"``, ``"B"``, ``"B/s"``, ``"Gy"``,
        ``"Hz"``, ``"J"``; others are returned unscaled).
    typical : float or None
        A typical stored value; its magnitude picks the prefix. None or non-finite counts as 0.

    Returns
    -------
    factor : float
        Multiplier from the stored unit to the returned one.
    name : str
        The display unit (e.g. ``"nm"``, ``"h"``, ``"MGy"``).
    """
    typical = abs(typical) if typical is not None and math.isfinite(typical) else 0.0
    if unit == "s":
        for limit, scale, name in ((1.0, 1e-3, "ms"), (120.0, 1.0, "s"), (7200.0, 60.0, "min"),
                                   (72 * 3600.0, 3600.0, "h")):
            if typical < limit:
                return 1 / scale, name
        return 1 / 86400, "days"
    if unit == "%":
        return 100.0, "%"
    if unit in _PREFIXES:
        for entry in _PREFIXES[unit]:
            threshold, name = entry[0], entry[1]
            scale = entry[2] if len(entry) > 2 else threshold
            if typical >= threshold * 0.9995 or entry is _PREFIXES[unit][-1]:
                return 1 / scale, name
    return 1.0, unit


def format_value(key: str, value, unit: str | None = None) -> str:
    """``value`` of key ``key`` in the unit one would quote (``"270 nm"``, ``"6.92 h"``).

    Parameters
    ----------
    key : str
        The value's key; its unit comes from :func:`unit_of` unless ``unit`` is given.
    value : float, int, bool, str, list or None
        The stored value (SI, or the unit of the key's suffix). ``None`` or NaN print "—".
    unit : str, optional
        Unit of the stored value, overriding the key's.
    """
    unit = unit_of(key) if unit is None else unit
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple)):       # e.g. the forecast's flags
        return ", ".join(str(x) for x in value) or "none"
    if unit in ("", "counts", "photons") and isinstance(value, int):
        return f"{value:,} {unit}".strip()
    value = float(value)
    if not math.isfinite(value):
        return f"{value:g} {unit}".strip()
    if unit == "s":
        return _duration(value)
    if unit == "d":
        return f"{value:.3g} days"
    if unit == "h":
        return f"{value:.3g} h"
    if unit == "%":
        return f"{100 * value:.3g} %"
    if unit in _PREFIXES and value != 0:
        factor, name = display_scale(unit, value)
        if abs(value * factor) < 1e-3:
            # far below the smallest unit (3 × 10⁻¹⁰ pm): rounding noise, not a measurement
            return f"0 {name}"
        return f"{_number(value * factor)} {name}"
    return f"{_number(value)} {unit}".strip()


def labelled_rows(values: dict, keys=None) -> list[tuple[str, str]]:
    """(label, formatted value) rows for the ``keys`` of ``values`` present (all by default).

    Parameters
    ----------
    values : dict
        Stored values by key.
    keys : iterable of str, optional
        Keys to show, in this order; keys missing from ``values`` are skipped.

    Returns
    -------
    list of (str, str)
        (:func:`label`, :func:`format_value`) per key.
    """
    keys = list(values) if keys is None else [k for k in keys if k in values]
    return [(label(k), format_value(k, values[k])) for k in keys]


#: Resolution keys left null because their point did not resolve, and the flag that says so.
_UNRESOLVED_BY = {"resolution_forecast_m": "resolution_resolved",
                  "resolution_forecast_fire_m": "resolution_resolved",
                  "resolution_3d_forecast_m": "resolution_3d_resolved",
                  "resolution_3d_forecast_fire_m": "resolution_3d_resolved"}


def shown_value(key: str, value, values: dict) -> str:
    """:func:`format_value` of forecast key ``key``, except that a resolution left null because
    its point did not resolve reads "unresolved", not a blank.

    Parameters
    ----------
    key : str
    value : float, int, bool, str, list or None
    values : dict
        The forecast's values, whose flags say why a resolution is null.
    """
    if value is None and values.get(_UNRESOLVED_BY.get(key, "")) is False:
        return "unresolved"
    return format_value(key, value)
