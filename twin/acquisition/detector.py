"""Photon-counting detectors: presets and the closed forms of counting.

Presets live in ``twin/acquisition/detectors.toml`` (data, not code). A :class:`DetectorMode` is one
preset in one operating mode with any scenario overrides applied.

Dead time (Knoll, *Radiation Detection and Measurement*, ch. 4), for a true rate n and dead
time τ, gives the recorded rate m:

* non-paralyzable: m = n / (1 + nτ)
* paralyzable: m = n·exp(−nτ)

The simulation (:func:`count_frames`) does not apply these means: it draws each photon's
arrival time and decides photon by photon whether the front end was live, so that the variance
of the recorded counts is right too (the formulas above are only tested against it).

Detector response (:class:`Response`), before counting: the quantum efficiency of the sensor
(the photo-absorbed fraction, xraylib), the charge-sharing kernel (a Gaussian charge cloud of
rms t·√(2kT/(qV)) and a counting threshold) and a fixed flat-field gain map.

The counting model itself (:func:`count_frames`, :func:`record_photons`, the Poisson draws
and the counter's code) lives in :mod:`twin.acquisition.counting`; its names are
re-exported here.
"""

from __future__ import annotations

import math
import tomllib
import zlib
from dataclasses import dataclass, replace
from functools import lru_cache
from importlib import resources

import numpy as np

from twin.acquisition.counting import (PHOTON_BY_PHOTON_MAX, count_frames,  # noqa: F401
                                      float8_decode, float8_encode, poisson_frames,
                                      record_photons, sorted_uniforms)
from twin.core.errors import TwinInputError

__all__ = ["BOLTZMANN_EV_PER_K", "PHOTON_BY_PHOTON_MAX", "SENSOR_TEMPERATURE_K", "DetectorMode",
           "Response", "binned_recorded_rate", "charge_cloud_sigma_m", "charge_sharing_kernel",
           "count_frames", "crop_window", "float8_decode", "float8_encode", "gain_map",
           "gap_mask", "poisson_frames", "preset_mode", "presets", "quantum_efficiency",
           "record_photons", "recorded_rate_nonparalyzable", "recorded_rate_paralyzable",
           "saturation_level", "sorted_uniforms", "true_rate_nonparalyzable"]


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
    dead_time_model: str = "nonparalyzable"
    sensor_material: str = "none"
    sensor_density_g_per_cm3: float = 0.0
    sensor_thickness_m: float = 0.0
    bias_v: float = 0.0
    threshold_fraction: float = 0.5
    gain_spread_rms: float = 0.0

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
    return tomllib.loads(resources.files("twin.acquisition").joinpath("detectors.toml").read_text())


def preset_mode(preset: str, mode: str | None = None, **overrides) -> DetectorMode:
    """A :class:`DetectorMode` for ``preset`` and ``mode`` with ``overrides`` applied.

    Parameters
    ----------
    preset : str
        Preset name, a table of ``detectors.toml``.
    mode : str, optional
        Operating mode of the preset; its ``default_mode`` when None or empty.
    **overrides
        Field values of :class:`DetectorMode` to replace (SI, as the field names say); those
        given as None are ignored.

    Returns
    -------
    DetectorMode

    Raises
    ------
    TwinInputError
        ``detector.preset`` or ``detector.mode`` for an unknown preset or mode;
        ``detector.dead_time_model`` for a model other than "paralyzable" or "nonparalyzable".
    TypeError
        For an override that names no field of :class:`DetectorMode` (from
        ``dataclasses.replace``).
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
        beam_y_px=int(entry.get("beam_y_px", entry["pixels_y"] // 2)),
        dead_time_model=str(m.get("dead_time_model", "nonparalyzable")),
        sensor_material=str(entry.get("sensor_material", "none")),
        sensor_density_g_per_cm3=float(entry.get("sensor_density_g_per_cm3", 0.0)),
        sensor_thickness_m=float(entry.get("sensor_thickness_m", 0.0)),
        bias_v=float(entry.get("bias_v", 0.0)),
        threshold_fraction=float(entry.get("threshold_fraction", 0.5)),
        gain_spread_rms=float(entry.get("gain_spread_rms", 0.0)))
    given = {k: v for k, v in overrides.items() if v is not None}
    if given.get("dead_time_model", "paralyzable") not in ("paralyzable", "nonparalyzable"):
        raise TwinInputError("detector.dead_time_model", given["dead_time_model"],
                             "allowed: 'paralyzable', 'nonparalyzable'")
    return replace(det, **given) if given else det


def recorded_rate_nonparalyzable(true_rate_hz, dead_time_s):
    """m = n / (1 + nτ).

    Parameters
    ----------
    true_rate_hz : float or array_like
        True (incident) count rate n, counts per second.
    dead_time_s : float or array_like
        Dead time τ, seconds.

    Returns
    -------
    numpy.ndarray
        Recorded rate m, counts per second (float64, broadcast shape).
    """
    n = np.asarray(true_rate_hz, dtype=float)
    return n / (1.0 + n * np.asarray(dead_time_s, dtype=float))


def recorded_rate_paralyzable(true_rate_hz, dead_time_s):
    """m = n·exp(−nτ).

    Parameters
    ----------
    true_rate_hz : float or array_like
        True (incident) count rate n, counts per second.
    dead_time_s : float or array_like
        Dead time τ, seconds.

    Returns
    -------
    numpy.ndarray
        Recorded rate m, counts per second (float64, broadcast shape).
    """
    n = np.asarray(true_rate_hz, dtype=float)
    return n * np.exp(-n * np.asarray(dead_time_s, dtype=float))


def true_rate_nonparalyzable(recorded_rate_hz, dead_time_s):
    """Inverse of the non-paralyzable model: n = m / (1 − mτ) (valid for mτ < 1).

    Parameters
    ----------
    recorded_rate_hz : float or array_like
        Recorded count rate m, counts per second.
    dead_time_s : float or array_like
        Dead time τ, seconds.

    Returns
    -------
    numpy.ndarray
        True rate n, counts per second; not checked: negative or infinite where mτ ≥ 1.
    """
    m = np.asarray(recorded_rate_hz, dtype=float)
    return m / (1.0 - m * np.asarray(dead_time_s, dtype=float))


def binned_recorded_rate(true_rate_hz, dead_time_s, binning):
    """Recorded rate of a binned pixel whose b×b native front ends each count 1/b² of the rate.

    Each native front end follows the non-paralyzable model.

    Parameters
    ----------
    true_rate_hz : float or array_like
        True count rate on the binned pixel, counts per second.
    dead_time_s : float or array_like
        Dead time of one native front end, seconds.
    binning : int or array_like
        Binning factor b (native pixels per binned pixel along each axis).

    Returns
    -------
    numpy.ndarray
        Recorded rate of the binned pixel, counts per second.
    """
    b2 = np.asarray(binning, dtype=float) ** 2
    return b2 * recorded_rate_nonparalyzable(np.asarray(true_rate_hz) / b2, dead_time_s)


# ----------------------------------------------------------------------------- pixels


def gap_mask(det: DetectorMode) -> np.ndarray:
    """(pixels_y, pixels_x) native mask: 1 = sensitive pixel, 0 = gap between ASICs.

    Gaps of ``gap_px`` pixels follow every ``chip_px`` sensitive pixels along both axes; all
    pixels are sensitive when either is 0.

    Parameters
    ----------
    det : DetectorMode
        The detector.

    Returns
    -------
    numpy.ndarray
        (pixels_y, pixels_x) uint8 mask.
    """
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
    the direct beam; raises ValueError where it does not fit on the detector.

    The window is moved inward where the beam is closer to an edge than half the crop.

    Parameters
    ----------
    det : DetectorMode
        The detector (its ``beam_y_px``/``beam_x_px`` and ``binning``).
    crop : int
        Crop side in effective (binned) pixels.

    Returns
    -------
    (slice, slice)
        Rows and columns of ``crop·binning`` native pixels each.

    Raises
    ------
    ValueError
        When ``crop·binning`` exceeds the detector's pixels along either axis.
    """
    n = crop * det.binning
    r0, c0 = det.beam_y_px - n // 2, det.beam_x_px - n // 2
    r0 = min(max(r0, 0), det.pixels_y - n)
    c0 = min(max(c0, 0), det.pixels_x - n)
    if r0 < 0 or c0 < 0:
        raise ValueError(f"a {crop}×{crop} crop does not fit on the {det.preset} detector")
    return slice(r0, r0 + n), slice(c0, c0 + n)


def saturation_level(det: DetectorMode) -> float:
    """The recorded value of a full counter (after the 8-bit float code where the mode has it).

    Parameters
    ----------
    det : DetectorMode
        The detector mode (``counter_bits``, ``float8``).

    Returns
    -------
    float
        2**bits − 1, or its value after the float8 encode/decode round trip, counts.
    """
    if det.float8:
        return float(float8_decode(float8_encode(det.max_counts)))
    return float(det.max_counts)


# ----------------------------------------------------------------------------- response

BOLTZMANN_EV_PER_K = 8.617333262e-5
SENSOR_TEMPERATURE_K = 300.0


def quantum_efficiency(det: DetectorMode, energy_kev: float) -> float:
    """Fraction of incident photons that the sensor photo-absorbs (and so can count).

    QE = (μ_photo/μ_total)·(1 − exp(−μ_total·t)) for a sensor of thickness t (xraylib cross
    sections): photons that Compton- or Rayleigh-scatter out of the sensor are lost, and a
    sensor too thin lets photons through. An entrance window or dead layer is neglected.

    Parameters
    ----------
    det : DetectorMode
        The detector (its ``sensor_*`` fields); "none" gives 1.
    energy_kev : float
        Photon energy, keV.
    """
    if det.sensor_material == "none" or det.sensor_thickness_m <= 0:
        return 1.0
    import xraylib

    rho = det.sensor_density_g_per_cm3
    mu_total = xraylib.CS_Total_CP(det.sensor_material, energy_kev) * rho * 100.0   # 1/m
    mu_photo = xraylib.CS_Photo_CP(det.sensor_material, energy_kev) * rho * 100.0
    return float(mu_photo / mu_total * -math.expm1(-mu_total * det.sensor_thickness_m))


def charge_cloud_sigma_m(det: DetectorMode) -> float:
    """rms lateral width of the charge cloud at the pixel electrodes, metres.

    Drift through the full sensor depth t at bias V takes t²/(μV); diffusion over that time
    spreads the cloud by σ = √(2Dt_drift) = t·√(2kT/(qV)) (Einstein relation D = μkT/q),
    independent of the mobility: an upper bound, for photons absorbed at the entrance face.

    Parameters
    ----------
    det : DetectorMode
        The detector (``sensor_thickness_m``, ``bias_v``); T is :data:`SENSOR_TEMPERATURE_K`.

    Returns
    -------
    float
        σ in metres; 0 without a bias or a sensor thickness.
    """
    if det.bias_v <= 0 or det.sensor_thickness_m <= 0:
        return 0.0
    return det.sensor_thickness_m * math.sqrt(2 * BOLTZMANN_EV_PER_K * SENSOR_TEMPERATURE_K
                                              / det.bias_v)


def charge_sharing_kernel(det: DetectorMode, n_sub: int = 24) -> np.ndarray:
    """(3, 3) mean counts in a pixel and its neighbours per photon absorbed in the centre pixel.

    The photon is absorbed at a uniformly distributed point of the pixel (an ``n_sub`` ×
    ``n_sub`` grid of points); its Gaussian charge cloud (:func:`charge_cloud_sigma_m`) splits
    among the pixels, and each pixel whose share exceeds ``threshold_fraction`` counts it.
    At a threshold of one half a photon is counted at most once: near the corners, where no
    pixel gets half, it is lost. Below one half it can be counted twice.

    Parameters
    ----------
    det : DetectorMode
        The detector (sensor, bias, ``pixel_size_m``, ``threshold_fraction``).
    n_sub : int
        Absorption points per pixel side.

    Returns
    -------
    numpy.ndarray
        (3, 3) float64, indexed [dy + 1, dx + 1]; the identity kernel (1 at the centre) when the
        charge cloud has no width.
    """
    from scipy.special import erf

    sig = charge_cloud_sigma_m(det) / det.pixel_size_m
    k = np.zeros((3, 3))
    if sig <= 0:
        k[1, 1] = 1.0
        return k
    u = (np.arange(n_sub) + 0.5) / n_sub                   # absorption points, pixel units
    edges = np.array([-1.0, 0.0, 1.0, 2.0])
    # share of the cloud in pixel columns −1, 0, +1 for each absorption point
    cdf = 0.5 * (1 + erf((edges[None, :] - u[:, None]) / (sig * math.sqrt(2))))
    share = np.diff(cdf, axis=1)                            # (n_sub, 3)
    both = share[:, None, :, None] * share[None, :, None, :]   # (y, x, 3, 3)
    k = np.mean(both > det.threshold_fraction, axis=(0, 1))
    return k


def gain_map(det: DetectorMode) -> np.ndarray:
    """(pixels_y, pixels_x) relative efficiency of each native pixel after the flat field.

    A fixed map per preset (seeded by the preset's name, not by the scenario's seed: it is a
    property of the detector), normal with rms ``gain_spread_rms`` about 1.

    Parameters
    ----------
    det : DetectorMode
        The detector (``preset``, ``gain_spread_rms``, pixel counts).

    Returns
    -------
    numpy.ndarray
        (pixels_y, pixels_x) float32, clipped at 0.
    """
    rng = np.random.default_rng(zlib.crc32(det.preset.encode()))
    g = 1.0 + det.gain_spread_rms * rng.standard_normal((det.pixels_y, det.pixels_x))
    return np.clip(g, 0.0, None).astype(np.float32)


@dataclass(frozen=True)
class Response:
    """What the sensor does to the expected photons before they are counted.

    Attributes
    ----------
    qe : float
        Quantum efficiency (0–1).
    kernel : (3, 3) float
        Charge-sharing kernel (:func:`charge_sharing_kernel`).
    gain : (ny, nx) float32 or None
        Flat-field gain of the simulated native pixels (the crop window of :func:`gain_map`).
    """

    qe: float
    kernel: np.ndarray
    gain: np.ndarray | None = None

    @classmethod
    def of(cls, det: DetectorMode, energy_kev: float, window=None) -> "Response":
        """The response of ``det`` at ``energy_kev``; ``window`` (rows, cols) slices the gain
        map to the simulated native pixels.

        Parameters
        ----------
        det : DetectorMode
            The detector.
        energy_kev : float
            Photon energy, keV.
        window : (slice, slice), optional
            Native-pixel window (e.g. :func:`crop_window`); the whole map when None.

        Returns
        -------
        Response
            With ``gain`` None when the preset has no gain spread.
        """
        g = gain_map(det) if det.gain_spread_rms > 0 else None
        if g is not None and window is not None:
            g = g[window]
        return cls(quantum_efficiency(det, energy_kev), charge_sharing_kernel(det), g)

    def apply(self, expected: np.ndarray) -> np.ndarray:
        """Expected counts (..., ny, nx) per native pixel from expected incident photons.

        The photons are scaled by ``qe``, spread by the charge-sharing kernel (a photon absorbed in
        pixel (y, x) is counted in (y + dy, x + dx) with weight kernel[dy + 1, dx + 1]; nothing is
        counted beyond the frame's edges) and multiplied by ``gain``.

        Parameters
        ----------
        expected : array_like (..., ny, nx)
            Expected incident photons per native pixel; ``gain``, if any, must broadcast with it.

        Returns
        -------
        numpy.ndarray
            (..., ny, nx) float32 expected counts.
        """
        lam = np.asarray(expected, dtype=np.float32) * np.float32(self.qe)
        k = self.kernel
        if np.count_nonzero(k) > 1 or k[1, 1] != 1:
            out = lam * np.float32(k[1, 1])
            ny, nx = lam.shape[-2:]
            for dy in (-1, 0, 1):
                for dx in (-1, 0, 1):
                    w = np.float32(k[dy + 1, dx + 1])
                    if (dy == 0 and dx == 0) or w == 0:
                        continue
                    # a photon absorbed in pixel (y, x) is counted in (y + dy, x + dx)
                    out[..., max(dy, 0):ny + min(dy, 0), max(dx, 0):nx + min(dx, 0)] += (
                        w * lam[..., max(-dy, 0):ny + min(-dy, 0), max(-dx, 0):nx + min(-dx, 0)])
            lam = out
        if self.gain is not None:
            lam = lam * self.gain
        return lam
