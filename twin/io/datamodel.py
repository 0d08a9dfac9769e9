"""The data model of :mod:`twin.io`: what a ptychographic data set (:class:`PtychoData`, with
its :class:`GroundTruth`) and a projection stack (:class:`Projections`) hold, and the checks
every such set passes once, where it is read (:func:`check_ptycho_data`).

Arrays follow CONTRACTS §3 and §5: frames (N, ny, nx) with DC at the frame centre,
translations (N, 3) x, y, 0 in metres, probes (M, ny, nx) at the object pixel size.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from twin.core.constants import HC_KEV_M
from twin.core.errors import TwinInputError
from twin.operators.propagation import farfield_pixel_m

__all__ = ["GroundTruth", "Projections", "PtychoData", "check_ptycho_data"]


@dataclass
class GroundTruth:
    """What the simulation knew and a real experiment would not (CONTRACTS §3, and the file's
    ``/entry_1/twin`` group). Every field is None in a file that does not carry it.

    Attributes
    ----------
    object : complex64 (H, W)
        Object transmission, ``/entry_1/sample_1/ground_truth``.
    pixel_size_m : float
        Its pixel size.
    translations_m : float64 (N, 3)
        True probe positions (x, y, 0), same frame selection as the data.
    captured : bool (N,)
        Whether the PandA captured a fresh encoder reading for the frame.
    probe_modes : complex64 (B, M, n, n)
        The probe modes the simulation used (per beam).
    object_origin_m, beam_offsets_m : arrays
        Origin of the object grid from the scan centre; offsets of the beams.
    scenario_json : str
        The scenario the file was simulated from.
    seed, saturated_frames : int
    """

    object: np.ndarray | None = None
    pixel_size_m: float | None = None
    translations_m: np.ndarray | None = None
    captured: np.ndarray | None = None
    probe_modes: np.ndarray | None = None
    object_origin_m: np.ndarray | None = None
    beam_offsets_m: np.ndarray | None = None
    scenario_json: str | None = None
    seed: int | None = None
    saturated_frames: int | None = None


@dataclass
class PtychoData:
    """The content of a CXI file of CONTRACTS §3 (frames may be a subset).

    Attributes
    ----------
    frames : float32 (N, ny, nx)
        Counts, DC at the frame centre.
    translations_m : float64 (N, 3)
        Probe positions x, y, 0 as recorded (what a user has).
    distance_m, pixel_size_m, energy_kev : float
        Sample–detector distance, effective pixel (after binning), photon energy.
    illumination : complex64 (M, py, px) or None
        The starting probe, at the object pixel size (``upsampling`` × the frame side).
    mask : (ny, nx) or None
        1 = valid pixel.
    exposure_s, frame_rate_hz : float or None
        Exposure per frame and frame rate, where the file says.
    upsampling : int
        Object pixels per detector-limited pixel the illumination is sampled at (1 unless the
        frames were binned on the chip).
    truth : GroundTruth
        The simulation's ground truth (empty for measured data).
    beam_offsets_m : float64 (B, 2) or None
        Several beams share every frame (multibeam): beam b lights the object at the
        translation plus this x, y offset; None for one beam.
    beam_illumination : complex64 (B, M, n, n) or None
        The starting probe of each beam (as ``illumination``); None: ``illumination`` for all.
    background : float or (ny, nx) or None
        Counts per pixel and frame added to the model intensity (Σ|Ψ|² + b); None: none.
    """

    frames: np.ndarray
    translations_m: np.ndarray
    distance_m: float
    pixel_size_m: float
    energy_kev: float
    illumination: np.ndarray | None = None
    mask: np.ndarray | None = None
    exposure_s: float | None = None
    frame_rate_hz: float | None = None
    upsampling: int = 1
    truth: GroundTruth = field(default_factory=GroundTruth)
    beam_offsets_m: np.ndarray | None = None
    beam_illumination: np.ndarray | None = None
    background: float | np.ndarray | None = None

    @property
    def n_beams(self) -> int:
        """Beams sharing each frame (1 unless the file gives several offsets)."""
        return 1 if self.beam_offsets_m is None else len(self.beam_offsets_m)

    @property
    def ground_truth(self) -> np.ndarray | None:
        """The true object transmission (``truth.object``)."""
        return self.truth.object

    @property
    def wavelength_m(self) -> float:
        """Photon wavelength hc/E, metres."""
        return HC_KEV_M / self.energy_kev

    @property
    def object_pixel_m(self) -> float:
        """λz/(N·p) of the frames as stored."""
        return farfield_pixel_m(self.wavelength_m, self.distance_m, self.frames.shape[-1],
                                self.pixel_size_m)



def check_ptycho_data(d: PtychoData) -> PtychoData:
    """Refuse a data set no reconstruction can use, naming the CXI dataset at fault.

    Counts held in memory must be finite (frames left in the file, a
    :class:`~twin.io.framestack.FrameStack`, are checked as they are read), and so must the
    translations' x, y and the illumination; the distance, the pixel size and the energy must
    be positive.

    Parameters
    ----------
    d : PtychoData
        The data set as read.

    Returns
    -------
    PtychoData
        ``d`` itself.

    Raises
    ------
    TwinInputError
        Naming the dataset (``/entry_1/...``), the offending value and what is allowed.
    """
    if isinstance(d.frames, np.ndarray) and not np.all(np.isfinite(d.frames)):
        raise TwinInputError("/entry_1/data_1/data", "NaN/inf", "counts must be finite")
    tr = d.translations_m
    if not np.all(np.isfinite(tr[:, :2])):
        bad = int(np.flatnonzero(~np.all(np.isfinite(tr[:, :2]), axis=1))[0])
        raise TwinInputError("/entry_1/data_1/translation", f"NaN/inf in row {bad}",
                             "positions must be finite")
    if d.illumination is not None and not np.all(np.isfinite(d.illumination)):
        raise TwinInputError("/entry_1/instrument_1/source_1/illumination", "NaN/inf",
                             "the probe must be finite")
    for name, v in (("distance", d.distance_m), ("x_pixel_size", d.pixel_size_m),
                    ("energy", d.energy_kev)):
        if not (np.isfinite(v) and v > 0):
            raise TwinInputError(f"/entry_1/instrument_1/{name}", v, "must be a positive number")
    return d


@dataclass
class Projections:
    """A tomographic projection stack (CONTRACTS §5, Data Exchange).

    Attributes
    ----------
    data : float32 (n_angles, rows, cols)
        Projected phase (or any line integral).
    theta_deg : float64 (n_angles,)
        Rotation angles, degrees.
    voxel_size_m : float or None
        Pixel size where the file gives it.
    """

    data: np.ndarray
    theta_deg: np.ndarray
    voxel_size_m: float | None = None
