"""Reconstruction against the ground truth a simulation kept (CONTRACTS §3 and §4 grids).

Both objects have the translations' origin at their centre pixel and the same pixel size, so
the scanned region is cut from each at the same place; the reconstruction is then aligned
(:func:`twin.metrics.align`) and compared on its phase.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from twin.analysis import metrics


@dataclass(frozen=True)
class Comparison:
    pcc_phase: float
    ssim_phase: float
    ms_ssim_phase: float
    frc_resolution_m: float          # half-bit, reconstruction vs ground truth
    frc_resolution_7_m: float        # 1/7 threshold
    phase_rms_error_rad: float
    region_px: tuple[int, int]
    frc: metrics.FourierCorrelation
    aligned_phase: np.ndarray
    truth_phase: np.ndarray

    def as_dict(self) -> dict:
        return {"pcc_phase": self.pcc_phase, "ssim_phase": self.ssim_phase,
                "ms_ssim_phase": self.ms_ssim_phase,
                "frc_resolution_m": self.frc_resolution_m,
                "frc_resolution_7_m": self.frc_resolution_7_m,
                "phase_rms_error_rad": self.phase_rms_error_rad}


def scanned_region(positions_m: np.ndarray, pixel_m: float, probe_px: int,
                   shrink_px: int | None = None) -> tuple[slice, slice, tuple[float, float]]:
    """Rows/cols (relative to the centre pixel) that every frame's probe centre region covers."""
    x, y = positions_m[:, 0] / pixel_m, positions_m[:, 1] / pixel_m
    pad = probe_px // 4 if shrink_px is None else shrink_px
    return (slice(int(np.ceil(y.min())) - pad, int(np.floor(y.max())) + pad),
            slice(int(np.ceil(x.min())) - pad, int(np.floor(x.max())) + pad), (y.mean(), x.mean()))


def lit_positions(translations_m: np.ndarray, beam_offsets_m=None) -> np.ndarray:
    """The positions every beam's window went to: ``translations_m`` (N, ≥2) plus each beam's
    x, y offset (several beams share each frame), stacked; the translations without offsets."""
    t = np.asarray(translations_m, float)
    if beam_offsets_m is None:
        return t
    shift = np.zeros((len(beam_offsets_m), 1, t.shape[1]))
    shift[:, 0, :2] = beam_offsets_m
    return (t + shift).reshape(-1, t.shape[1])


def _cut(a: np.ndarray, rows: slice, cols: slice) -> np.ndarray:
    c = np.array(a.shape) // 2
    r0, r1 = max(0, c[0] + rows.start), min(a.shape[0], c[0] + rows.stop)
    c0, c1 = max(0, c[1] + cols.start), min(a.shape[1], c[1] + cols.stop)
    return a[r0:r1, c0:c1]


def compare(obj: np.ndarray, truth: np.ndarray, pixel_m: float, positions_m: np.ndarray,
            probe_px: int) -> Comparison:
    """Metrics of a reconstructed object against the ground truth over the scanned region."""
    rows, cols, _ = scanned_region(positions_m, pixel_m, probe_px)
    a = _cut(obj, rows, cols)
    b = _cut(truth, rows, cols)
    a, b = metrics.crop_common(a, b)
    al = metrics.align(a, b)
    # thick samples wrap the phase many times over: compare unwrapped phases, and measure the
    # error on the complex ratio, which no wrap disturbs
    err = np.angle(al.aligned * np.conj(b))
    pb = metrics.unwrap_phase(np.angle(b))
    pa = metrics.unwrap_phase(np.angle(al.aligned))
    pa = pa - 2 * np.pi * np.round(np.mean(pa - pb) / (2 * np.pi))
    frc = metrics.fourier_correlation(pa, pb, pixel_m)
    rng = float(pb.max() - pb.min()) or 1.0
    return Comparison(metrics.pcc(pa, pb), metrics.ssim(pa, pb, rng), metrics.ms_ssim(pa, pb, rng),
                      frc.resolution_m("half_bit"), frc.resolution_m("1/7"),
                      float(np.sqrt(np.mean(err ** 2))), a.shape, frc, pa, pb)
