"""Reconstruction against the ground truth a simulation kept (CONTRACTS §3 and §4 grids).

Both objects have the translations' origin at their centre pixel and the same pixel size;
:func:`compare` registers and scores them with :func:`twin.analysis.score.score`, the one
function behind every score twin prints.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from twin.analysis import metrics


@dataclass(frozen=True)
class Comparison:
    """:func:`compare`'s result; floats are NaN where :attr:`resolved` is False (see
    :class:`twin.analysis.score.Score`, whose numbers these are)."""

    pcc_phase: float
    ssim_phase: float
    ms_ssim_phase: float
    frc_resolution_m: float          # half-bit half period, reconstruction vs ground truth
    frc_resolution_7_m: float        # 1/7 threshold
    phase_rms_error_rad: float
    region_px: tuple[int, int]
    frc: metrics.FourierCorrelation
    aligned_phase: np.ndarray
    truth_phase: np.ndarray
    resolved: bool = True
    message: str = ""
    frc_resolution_bound: bool = False
    frc_resolution_7_bound: bool = False

    def as_dict(self) -> dict:
        """The scalar fields (and the bound flags, ``resolved``, ``message``) as a JSON-ready dict.

        Returns
        -------
        dict
            Keys ``pcc_phase``, ``ssim_phase``, ``ms_ssim_phase``, ``frc_resolution_m``,
            ``frc_resolution_7_m`` (half periods, metres), ``frc_resolution_bound``,
            ``frc_resolution_7_bound``, ``phase_rms_error_rad``, ``resolved``, ``message``.
        """
        return {"pcc_phase": self.pcc_phase, "ssim_phase": self.ssim_phase,
                "ms_ssim_phase": self.ms_ssim_phase,
                "frc_resolution_m": self.frc_resolution_m,
                "frc_resolution_7_m": self.frc_resolution_7_m,
                "frc_resolution_bound": self.frc_resolution_bound,
                "frc_resolution_7_bound": self.frc_resolution_7_bound,
                "phase_rms_error_rad": self.phase_rms_error_rad,
                "resolved": self.resolved, "message": self.message}


def scanned_region(positions_m: np.ndarray, pixel_m: float, probe_px: int,
                   shrink_px: int | None = None) -> tuple[slice, slice, tuple[float, float]]:
    """Rows/cols (relative to the centre pixel) that every frame's probe centre region covers.

    From the positions' extent in pixels, widened by ``pad`` on each side (negative ``pad``
    shrinks it).

    Parameters
    ----------
    positions_m : ndarray (N, ≥2)
        Translations x, y, metres (CONTRACTS §3).
    pixel_m : float
        Object pixel size, metres.
    probe_px : int
        Probe side, pixels; the default pad is probe_px // 4.
    shrink_px : int, optional
        The pad instead of probe_px // 4.

    Returns
    -------
    rows, cols : slice
        Pixel offsets from the centre pixel (y rows, x columns).
    centre : (float, float)
        Mean position (y, x), pixels from the centre pixel.
    """
    x, y = positions_m[:, 0] / pixel_m, positions_m[:, 1] / pixel_m
    pad = probe_px // 4 if shrink_px is None else shrink_px
    return (slice(int(np.ceil(y.min())) - pad, int(np.floor(y.max())) + pad),
            slice(int(np.ceil(x.min())) - pad, int(np.floor(x.max())) + pad), (y.mean(), x.mean()))


def lit_positions(translations_m: np.ndarray, beam_offsets_m=None) -> np.ndarray:
    """The positions every beam's window went to: ``translations_m`` (N, ≥2) plus each beam's
    x, y offset (several beams share each frame), stacked; the translations without offsets.

    Parameters
    ----------
    translations_m : array_like (N, ≥2)
        Frame translations x, y (, z), metres.
    beam_offsets_m : array_like (B, 2), optional
        Beam offsets x, y, metres.

    Returns
    -------
    numpy.ndarray
        (B·N, ≥2) float, beam-major (beam 0's N positions first); (N, ≥2) without offsets.
    """
    t = np.asarray(translations_m, float)
    if beam_offsets_m is None:
        return t
    shift = np.zeros((len(beam_offsets_m), 1, t.shape[1]))
    shift[:, 0, :2] = beam_offsets_m
    return (t + shift).reshape(-1, t.shape[1])


def compare(obj: np.ndarray, truth: np.ndarray, pixel_m: float, positions_m: np.ndarray,
            probe_px: int) -> Comparison:
    """Metrics of a reconstructed object against the ground truth over the scanned region.

    The registration and the numbers are :func:`twin.analysis.score.score`'s (one function for
    ``twin reconstruct``, ``twin run`` and ``twin score``); ``obj`` is taken at ``pixel_m``
    with its origin at its centre pixel.

    Parameters
    ----------
    obj : ndarray (H, W) complex
        Reconstructed object transmission.
    truth : ndarray complex
        Ground-truth transmission on the same pixel, origin at its centre pixel.
    pixel_m : float
        Object pixel size, metres.
    positions_m : ndarray (N, ≥2)
        Translations x, y, metres (all beams' windows).
    probe_px : int
        Probe side, pixels.

    Returns
    -------
    Comparison
        Floats NaN where the score is unresolved; MS-SSIM over the truth phase's range.
    """
    from twin.analysis import score as sc

    s = sc.score(np.asarray(obj), truth, pixel_m, positions_m, probe_px)
    nan = float("nan")

    def v(x):
        """``x`` as a float, NaN for None.

        Parameters
        ----------
        x : float or None

        Returns
        -------
        float
        """
        return nan if x is None else float(x)

    pa, pb = s.aligned_phase, s.truth_phase
    rng = float(pb.max() - pb.min()) or 1.0
    ms = metrics.ms_ssim(pa, pb, rng) if s.ssim_phase is not None else nan
    return Comparison(v(s.pcc_phase), v(s.ssim_phase), ms, v(s.frc_resolution_m),
                      v(s.frc_resolution_7_m), v(s.phase_rms_error_rad), s.region_px, s.frc,
                      pa, pb, s.resolved, s.message, s.frc_resolution_bound,
                      s.frc_resolution_7_bound)
