"""The measured frames as a reconstruction reads them: one pass of statistics (cached on the
data), the amplitudes √I in the operator's FFT order, the reciprocal-space upsampling, and the
checks of their shapes.

The frames are an (N, ny, nx) array in memory or a :class:`twin.io.framestack.FrameStack`
streamed from the file; counts have DC at the centre pixel (CONTRACTS §3).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from twin.core.errors import TwinInputError
from twin.io.datamodel import PtychoData

__all__ = ["FrameStatistics", "amplitudes", "frame_statistics", "statistics", "upsampling_of"]


@dataclass(frozen=True)
class FrameStatistics:
    """What one pass over the frames gives: mean photons per frame, the mean frame (ny, nx)
    float64 and the masked total Σ mask·I (the cost's normalisation)."""

    mean_photons: float
    mean_frame: np.ndarray
    masked_total: float


def frame_statistics(frames, mask=None, chunk: int = 256) -> FrameStatistics:
    """One pass over ``frames`` ((N, ny, nx) array or a streamed
    :class:`twin.io.framestack.FrameStack`), chunk by chunk; non-finite counts raise
    :class:`TwinInputError` naming the dataset.

    Parameters
    ----------
    frames : ndarray or FrameStack (N, ny, nx)
        Measured counts (photons).
    mask : ndarray (ny, nx), optional
        1 for valid pixels, 0 for invalid ones; all valid when None.
    chunk : int
        Frames read at a time.

    Returns
    -------
    FrameStatistics
        Mean photons per frame and mean frame over the valid pixels, and Σ mask·I over all
        frames.

    Raises
    ------
    TwinInputError
        ``/entry_1/data_1/data`` when a count is NaN or infinite.
    """
    n = len(frames)
    total = np.zeros(frames.shape[1:], np.float64)
    for a in range(0, n, chunk):
        f = np.asarray(frames[a:min(a + chunk, n)], dtype=np.float32)
        if not np.all(np.isfinite(f)):
            raise TwinInputError("/entry_1/data_1/data", "NaN/inf", "counts must be finite")
        total += f.sum(axis=0, dtype=np.float64)
    m = 1.0 if mask is None else mask
    # the mean frame and photons over the valid pixels only: a masked pixel's counts (a hot
    # pixel, a gap's fill value) must not set the starting probe's power or shape
    mean = total * m / max(n, 1)
    return FrameStatistics(float(mean.sum()), mean, float(np.sum(total * m)))


def statistics(data: PtychoData) -> FrameStatistics:
    """:func:`frame_statistics` of ``data`` (cached), the mean frame and photons less the
    background (the probe's share of the counts).

    The cache is kept on ``data`` and renewed when its frames, mask or background object
    changes. The mean frame less the background is clipped at 0; ``masked_total`` keeps the
    background.

    Parameters
    ----------
    data : PtychoData
        The data set.

    Returns
    -------
    FrameStatistics

    Raises
    ------
    TwinInputError
        As :func:`frame_statistics`.
    """
    st = getattr(data, "_twin_statistics", None)
    bg = getattr(data, "background", None)
    key = (data.frames, data.mask, bg)
    if st is None or any(a is not b for a, b in zip(st[0], key)):
        fs = frame_statistics(data.frames, data.mask)
        if bg is not None:
            m = 1.0 if data.mask is None else data.mask
            mean = np.maximum(fs.mean_frame - np.asarray(bg, np.float64) * m, 0)
            fs = FrameStatistics(float(mean.sum()), mean, fs.masked_total)
        st = (key, fs)
        object.__setattr__(data, "_twin_statistics", st)
    return st[1]


def upsampling_of(data: PtychoData, upsampling: int | None) -> int:
    """The reciprocal-space upsampling u: ``upsampling``, else the illumination's side over
    the frames' (where it divides), else the file's.

    Parameters
    ----------
    data : PtychoData
        The data set (frames, illumination, ``upsampling``).
    upsampling : int or None
        An explicit choice (the option), used as is when not None.

    Returns
    -------
    int
    """
    if upsampling is not None:
        return upsampling
    nd = data.frames.shape[-1]
    ill = data.illumination
    if ill is not None and ill.shape[-1] % nd == 0:
        return ill.shape[-1] // nd
    return data.upsampling


def amplitudes(frames: np.ndarray) -> np.ndarray:
    """√I of (B, n, n) frames, moved from DC-at-centre to plain FFT order, float32.

    Parameters
    ----------
    frames : array_like (..., n, n)
        Counts with DC at the centre pixel (CONTRACTS §3); negative values count as 0.

    Returns
    -------
    numpy.ndarray
        (..., n, n) float32 amplitudes, ifftshifted over the last two axes.
    """
    return np.fft.ifftshift(np.sqrt(np.maximum(np.asarray(frames, np.float32), 0)),
                            axes=(-2, -1)).astype(np.float32, copy=False)


def _checked_frames(data: PtychoData):
    """(frames, streamed): the frames in memory as float32, or the stream; shapes checked."""
    streamed = not isinstance(data.frames, np.ndarray)
    frames = data.frames if streamed else np.asarray(data.frames, dtype=np.float32)
    if len(frames.shape) != 3 or frames.shape[1] != frames.shape[2]:
        raise TwinInputError("/entry_1/data_1/data", frames.shape,
                             "must be square frames (N, n, n)")
    if len(frames) != len(data.translations_m):
        raise TwinInputError("/entry_1/data_1/translation", len(data.translations_m),
                             f"must have one row per frame ({len(frames)} frames)")
    if not np.all(np.isfinite(np.asarray(data.translations_m)[:, :2])):
        raise TwinInputError("/entry_1/data_1/translation", "NaN/inf",
                             "positions must be finite")
    return frames, streamed
