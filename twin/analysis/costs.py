"""What simulating and reconstructing an acquisition costs, in core-hours and GPU-hours.

The model counts the transforms each stage must do, prices each at its FFT's measured time, and
divides by the share of that limit the stage reaches (measured). Both numbers come from
``twin/data/costs.json``, which ``tools/measure_costs.py`` writes on a named machine:

* simulation, per frame: beams × blur samples × modes × (1 + 2·(slices − 1)) transforms of the
  fine window N × N (one far field per exit wave; each propagation between slices is a forward
  and an inverse transform);
* reconstruction, per frame and iteration: beams × modes × 2 × (1 + 2·(slices − 1)) transforms of
  the probe window n × n (forward and back for every mode, through every slice);
* a transform of n × n costs t(n), measured for powers of two and interpolated in
  n²·log₂(n²) (the FFT's operation count) between them.

Where ``costs.json`` holds a measurement of the scenario's own stage (same windows, modes,
slices, beams, blur), its measured seconds per frame are used instead of the model. GPU figures
price the transforms at the GPU's measured FFT time and reconstruction share; simulation on the
GPU is priced at the reconstruction's share, which is stated (``cost_model``) as an assumption
until a GPU measures it.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

COSTS_FILE = Path(__file__).resolve().parents[1] / "data" / "costs.json"


@dataclass(frozen=True)
class Work:
    """The transforms one stage does per frame (per iteration for a reconstruction).

    Attributes
    ----------
    window : int
        Side of the transformed arrays, pixels.
    transforms : float
        Transforms of ``window`` × ``window`` per frame (and iteration).
    key : str
        The stage's signature in ``costs.json`` (a measured entry with this key wins).
    """

    window: int
    transforms: float
    key: str


def simulation_work(window: int, beams: int, blur: int, modes: int, slices: int) -> Work:
    """Transforms per simulated frame (module docstring).

    n = beams·blur·modes·(1 + 2·(slices − 1)).

    Parameters
    ----------
    window : int
        Side of the transformed arrays, pixels.
    beams : int
        Beams per frame.
    blur : int
        Sub-positions per exposure (motion blur).
    modes : int
        Probe modes.
    slices : int
        Multislice slices (1: a single projection).

    Returns
    -------
    Work
        With key ``sim:<window>:<beams>:<blur>:<modes>:<slices>``.
    """
    n = beams * blur * modes * (1 + 2 * (slices - 1))
    return Work(window, float(n), f"sim:{window}:{beams}:{blur}:{modes}:{slices}")


def reconstruction_work(window: int, beams: int, modes: int, slices: int) -> Work:
    """Transforms per frame and iteration of a reconstruction (module docstring).

    n = beams·modes·2·(1 + 2·(slices − 1)).

    Parameters
    ----------
    window : int
        Side of the transformed arrays, pixels.
    beams : int
        Beams per frame.
    modes : int
        Probe modes.
    slices : int
        Object slices.

    Returns
    -------
    Work
        With key ``rec:<window>:<beams>:<modes>:<slices>``.
    """
    n = beams * modes * 2 * (1 + 2 * (slices - 1))
    return Work(window, float(n), f"rec:{window}:{beams}:{modes}:{slices}")


@lru_cache(maxsize=1)
def table() -> dict:
    """The measured costs (``twin/data/costs.json``); empty where none were shipped."""
    try:
        return json.loads(COSTS_FILE.read_text())
    except (OSError, ValueError):
        return {}


def fft_seconds(window: int, device: str = "cpu", costs: dict | None = None) -> float:
    """Measured (core- or GPU-) seconds of one complex64 transform of ``window`` × ``window``.

    Interpolated in n²·log₂(n²) between the measured sizes, extrapolated linearly in it beyond
    them; NaN where the device has no measurement.

    Parameters
    ----------
    window : int
        Transform side, pixels.
    device : {"cpu", "gpu"}
        Which measurements to use.
    costs : dict, optional
        The cost table; :func:`table` when None.

    Returns
    -------
    float
        Seconds (core-seconds on the CPU), or NaN.
    """
    t = (costs if costs is not None else table()).get(device, {}).get("fft_seconds", {})
    if not t:
        return math.nan
    sizes = np.array(sorted(int(k) for k in t), float)
    ops = sizes ** 2 * np.log2(sizes ** 2)
    per_op = np.array([t[str(int(k))] for k in sizes]) / ops
    x = window ** 2 * math.log2(max(window, 2) ** 2)
    return float(x * np.interp(math.log2(window), np.log2(sizes), per_op))


def seconds_per_unit(work: Work, stage: str, device: str = "cpu",
                     costs: dict | None = None) -> float:
    """Measured seconds of one frame (one frame-iteration for a reconstruction) of ``work``.

    Parameters
    ----------
    work : Work
    stage : {"simulation", "reconstruction"}
    device : {"cpu", "gpu"}
        "cpu": core-seconds; "gpu": GPU-seconds.
    costs : dict, optional
        The cost table; :func:`table` (``twin/data/costs.json``) when None.

    Returns
    -------
    float
        The measured entry for ``work.key`` where there is one, else transforms × FFT time /
        the stage's measured share of the FFT limit; NaN where the device has no measurement.
    """
    c = costs if costs is not None else table()
    dev = c.get(device, {})
    hit = dev.get("measured", {}).get(work.key)
    if hit is not None:
        return float(hit)
    share = dev.get(f"{stage}_share", dev.get("reconstruction_share", math.nan))
    return work.transforms * fft_seconds(work.window, device, c) / share


def hours(units: np.ndarray | float, seconds_each: float) -> np.ndarray:
    """Hours for ``units`` frames (or frame-iterations) at ``seconds_each`` each.

    Parameters
    ----------
    units : float or array_like
        Number of frames or frame-iterations.
    seconds_each : float
        Seconds per unit.

    Returns
    -------
    numpy.ndarray
        Hours, shaped like ``units``.
    """
    return np.asarray(units, float) * seconds_each / 3600.0
