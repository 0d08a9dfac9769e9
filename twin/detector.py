"""Photon-counting detectors: presets and the closed forms of counting.

Presets live in ``twin/data/detectors.toml`` (data, not code). A :class:`DetectorMode` is one
preset in one operating mode with any scenario overrides applied.

Dead time (Knoll, *Radiation Detection and Measurement*, ch. 4), for a true rate n and dead
time τ, gives the recorded rate m:

* non-paralyzable: m = n / (1 + nτ)
* paralyzable: m = n·exp(−nτ)
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, replace
from functools import lru_cache
from importlib import resources

import numpy as np

from twin.errors import TwinInputError


@dataclass(frozen=True)
class DetectorMode:
    """One detector in one operating mode. Pixel counts and sizes are native (before binning)."""

    preset: str
    mode: str
    description: str
    pixels_x: int
    pixels_y: int
    pixel_size_m: float
    counter_bits: int
    bytes_per_pixel: int
    binning: int
    max_frame_rate_hz: float
    max_count_rate_per_pixel_hz: float
    dead_time_s: float
    readout_dead_time_s: float
    counters: int
    float8: bool

    @property
    def effective_pixel_size_m(self) -> float:
        """Pixel pitch after on-chip binning."""
        return self.pixel_size_m * self.binning

    @property
    def effective_shape(self) -> tuple[int, int]:
        """(ny, nx) of a frame after binning."""
        return self.pixels_y // self.binning, self.pixels_x // self.binning

    @property
    def active_width_m(self) -> float:
        """The shorter side of the active area, D in the resolution limit λz/D."""
        return min(self.pixels_x, self.pixels_y) * self.pixel_size_m

    @property
    def max_counts(self) -> int:
        """Largest count one counter holds before it overflows (2**bits − 1)."""
        return 2 ** self.counter_bits - 1


@lru_cache(maxsize=1)
def presets() -> dict:
    """The raw preset tables of ``detectors.toml``."""
    return tomllib.loads(resources.files("twin.data").joinpath("detectors.toml").read_text())


def preset_mode(preset: str, mode: str | None = None, **overrides) -> DetectorMode:
    """A :class:`DetectorMode` for ``preset`` and ``mode`` with ``overrides`` applied.

    Raises :class:`TwinInputError` for an unknown preset, mode or override.
    """
    table = presets()
    if preset not in table:
        raise TwinInputError("detector.preset", preset, f"allowed: {sorted(table)}")
    entry = table[preset]
    mode = mode or entry["default_mode"]
    if mode not in entry["modes"]:
        raise TwinInputError("detector.mode", mode,
                             f"allowed for {preset}: {sorted(entry['modes'])}")
    m = entry["modes"][mode]
    det = DetectorMode(
        preset=preset, mode=mode, description=entry["description"],
        pixels_x=int(entry["pixels_x"]), pixels_y=int(entry["pixels_y"]),
        pixel_size_m=float(entry["pixel_size_m"]), counter_bits=int(m["counter_bits"]),
        bytes_per_pixel=int(m["bytes_per_pixel"]), binning=int(m["binning"]),
        max_frame_rate_hz=float(m["max_frame_rate_hz"]),
        max_count_rate_per_pixel_hz=float(m["max_count_rate_per_pixel_hz"]),
        dead_time_s=float(m["dead_time_s"]), readout_dead_time_s=float(m["readout_dead_time_s"]),
        counters=int(m["counters"]), float8=bool(m["float8"]))
    given = {k: v for k, v in overrides.items() if v is not None}
    return replace(det, **given) if given else det


def recorded_rate_nonparalyzable(true_rate_hz, dead_time_s):
    """m = n / (1 + nτ)."""
    n = np.asarray(true_rate_hz, dtype=float)
    return n / (1.0 + n * np.asarray(dead_time_s, dtype=float))


def recorded_rate_paralyzable(true_rate_hz, dead_time_s):
    """m = n·exp(−nτ)."""
    n = np.asarray(true_rate_hz, dtype=float)
    return n * np.exp(-n * np.asarray(dead_time_s, dtype=float))


def true_rate_nonparalyzable(recorded_rate_hz, dead_time_s):
    """Inverse of the non-paralyzable model: n = m / (1 − mτ) (valid for mτ < 1)."""
    m = np.asarray(recorded_rate_hz, dtype=float)
    return m / (1.0 - m * np.asarray(dead_time_s, dtype=float))


def binned_recorded_rate(true_rate_hz, dead_time_s, binning):
    """Recorded rate of a binned pixel whose b×b native front ends each count 1/b² of the rate."""
    b2 = np.asarray(binning, dtype=float) ** 2
    return b2 * recorded_rate_nonparalyzable(np.asarray(true_rate_hz) / b2, dead_time_s)
