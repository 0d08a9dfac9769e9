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
    chip_px: int = 0
    gap_px: int = 0
    beam_x_px: int = 0
    beam_y_px: int = 0

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
        counters=int(m["counters"]), float8=bool(m["float8"]),
        chip_px=int(entry.get("chip_px", 0)), gap_px=int(entry.get("gap_px", 0)),
        beam_x_px=int(entry.get("beam_x_px", entry["pixels_x"] // 2)),
        beam_y_px=int(entry.get("beam_y_px", entry["pixels_y"] // 2)))
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


# ----------------------------------------------------------------------------- counting


def gap_mask(det: DetectorMode) -> np.ndarray:
    """(pixels_y, pixels_x) native mask: 1 = sensitive pixel, 0 = gap between ASICs."""
    mask = np.ones((det.pixels_y, det.pixels_x), np.uint8)
    if det.gap_px > 0 and det.chip_px > 0:
        step = det.chip_px + det.gap_px
        for start in range(det.chip_px, det.pixels_x, step):
            mask[:, start:start + det.gap_px] = 0
        for start in range(det.chip_px, det.pixels_y, step):
            mask[start:start + det.gap_px, :] = 0
    return mask


def crop_window(det: DetectorMode, crop: int) -> tuple[slice, slice]:
    """Native-pixel window (rows, cols) of a ``crop`` × ``crop`` (effective) crop centred on
    the direct beam; raises ValueError where it does not fit on the detector."""
    n = crop * det.binning
    r0, c0 = det.beam_y_px - n // 2, det.beam_x_px - n // 2
    r0 = min(max(r0, 0), det.pixels_y - n)
    c0 = min(max(c0, 0), det.pixels_x - n)
    if r0 < 0 or c0 < 0:
        raise ValueError(f"a {crop}×{crop} crop does not fit on the {det.preset} detector")
    return slice(r0, r0 + n), slice(c0, c0 + n)


def float8_encode(counts) -> np.ndarray:
    """8-bit floating point (3-bit exponent, 5-bit mantissa) of a 12-bit counter value.

    e = 0 holds 0–31 exactly; e ≥ 1 holds (32 + m)·2^(e−1), so 32–63 stay exact and the step
    doubles with each exponent up to 64 counts at 2048–4095. seed 000 §2.2.1 names the mode but
    not its format: this is twin's assumption, a relative precision of ≤ 1/32.
    """
    c = np.clip(np.asarray(counts, dtype=np.int64), 0, 4095)
    e = np.where(c < 32, 0, np.floor(np.log2(np.maximum(c, 1))).astype(np.int64) - 4)
    m = np.where(e == 0, c, (c >> np.maximum(e - 1, 0)) - 32)
    return ((e << 5) | m).astype(np.uint8)


def float8_decode(code) -> np.ndarray:
    """Counts from :func:`float8_encode` codes: the centre of each code's interval."""
    c = np.asarray(code, dtype=np.int64)
    e, m = c >> 5, c & 31
    low = np.where(e == 0, m, (32 + m) << np.maximum(e - 1, 0))
    step = np.where(e <= 1, 1, 1 << np.maximum(e - 1, 0))
    return (low + (step - 1) / 2.0).astype(np.float32)


def count_frames(expected, det: DetectorMode, exposure_s: float, rng: np.random.Generator,
                 dead_time_model: str = "nonparalyzable", overflow: str = "saturate",
                 mask=None) -> np.ndarray:
    """Photon-counting detector acting on expected photons per native pixel.

    ``expected``: (..., n·b, n·b) mean photons per native pixel per exposure (b = binning).
    Steps: Poisson arrivals; count-rate loss per native pixel (non-paralyzable
    m = N/(1 + Nτ/T), paralyzable m = N·exp(−Nτ/T), T the exposure); b×b on-chip binning
    (summed); the counter's 2^bits − 1 limit (``overflow``: "saturate" clips, "wrap" rolls
    over); the 8-bit floating-point compression where the mode has it; gaps and ``mask``
    zeroed. Returns float32 counts (..., n, n) (float because float8 decodes to interval
    centres; integral otherwise).
    """
    lam = np.asarray(expected, dtype=np.float64)
    # a child stream for the dead-time rounding, drawn first: the k-th frame's counts then do
    # not depend on how many frames are drawn together (a prefix of a run reproduces it)
    rng_loss = np.random.default_rng(rng.integers(2 ** 63))
    counts = rng.poisson(np.clip(lam, 0, None)).astype(np.float64)
    if det.dead_time_s > 0:
        x = counts * det.dead_time_s / exposure_s
        if dead_time_model == "nonparalyzable":
            rec = counts / (1 + x)
        elif dead_time_model == "paralyzable":
            rec = counts * np.exp(-x)
        else:
            raise ValueError(f"dead_time_model {dead_time_model!r}: use 'nonparalyzable' or "
                             f"'paralyzable'")
        # stochastic rounding keeps the mean recorded count right
        counts = np.floor(rec + rng_loss.random(rec.shape))
    b = det.binning
    if b > 1:
        sh = counts.shape
        counts = counts.reshape(*sh[:-2], sh[-2] // b, b, sh[-1] // b, b).sum(axis=(-3, -1))
    top = det.max_counts
    if overflow == "saturate":
        counts = np.minimum(counts, top)
    elif overflow == "wrap":
        counts = np.mod(counts, top + 1)
    else:
        raise ValueError(f"overflow {overflow!r}: use 'saturate' or 'wrap'")
    if det.float8:
        counts = float8_decode(float8_encode(counts))
    if mask is not None:
        counts = counts * mask
    return counts.astype(np.float32)
