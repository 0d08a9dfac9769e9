"""Score anyone's reconstruction against the twin's ground truth (``twin score``).

Phase retrieval cannot fix, and different codes choose differently: a global phase, a linear
phase ramp, a translation of the whole image (integer and sub-pixel), and the twin-image
ambiguity O(r) ↔ conj(O(−r)) (with a conjugation alone for codes whose Fourier sign
convention is the other one). :func:`score` removes all of them before any metric:

1. the reconstruction is resampled to the truth's pixel size where the two differ;
2. the truth is cut to the scanned region (:func:`twin.analysis.truth.scanned_region`);
3. for each of the four candidates {O, conj O, O(−r), conj O(−r)} the region is found in the
   reconstruction by normalised cross-correlation of the de-planed, unwrapped phases (around
   the file's origin where it gives one, else anywhere), then aligned to sub-pixel precision
   with its phase offset and ramp removed (:func:`twin.analysis.metrics.align`);
4. the candidate with the highest phase PCC is kept, and PCC, SSIM and FRC (half-bit and 1/7,
   :func:`twin.analysis.metrics.fourier_correlation`) are computed on the unwrapped phases.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

from twin.analysis import metrics
from twin.analysis.truth import scanned_region
from twin.core.errors import TwinInputError
from twin.io import files as tio
from twin.io.products import Product, read_product

CANDIDATES = (("identity", False, False), ("conjugate", True, False),
              ("flip", False, True), ("conjugate+flip", True, True))


@dataclass(frozen=True)
class Score:
    """Metrics of a reconstruction against the ground truth (phases, after registration).

    Attributes
    ----------
    pcc_phase, ssim_phase : float
        Pearson correlation and SSIM of the unwrapped phases.
    frc_resolution_m, frc_resolution_7_m : float
        Half-period resolution where the FRC against the truth crosses the half-bit and 1/7
        thresholds (the pixel size if it never does).
    phase_rms_error_rad : float
        RMS of angle(recon · conj(truth)) over the region.
    transform : str
        Which of :data:`CANDIDATES` matched ("identity", "conjugate", "flip",
        "conjugate+flip").
    shift_px : (dy, dx)
        Translation of the reconstruction's region relative to where its origin put it.
    phase_offset_rad : float
        Removed global phase.
    phase_ramp_rad_per_px : (y, x)
        Removed linear phase ramp.
    region_px : (rows, cols)
        Size of the compared region.
    pixel_size_m : float
        Pixel size the comparison is made at (the truth's).
    source : str
        Layout the reconstruction was read from.
    frc : FourierCorrelation
        The curve.
    """

    pcc_phase: float
    ssim_phase: float
    frc_resolution_m: float
    frc_resolution_7_m: float
    phase_rms_error_rad: float
    transform: str
    shift_px: tuple[float, float]
    phase_offset_rad: float
    phase_ramp_rad_per_px: tuple[float, float]
    region_px: tuple[int, int]
    pixel_size_m: float
    source: str
    frc: metrics.FourierCorrelation

    def as_dict(self) -> dict:
        return {"pcc_phase": self.pcc_phase, "ssim_phase": self.ssim_phase,
                "frc_resolution_m": self.frc_resolution_m,
                "frc_resolution_7_m": self.frc_resolution_7_m,
                "phase_rms_error_rad": self.phase_rms_error_rad,
                "transform": self.transform, "shift_px": list(self.shift_px),
                "phase_offset_rad": self.phase_offset_rad,
                "phase_ramp_rad_per_px": list(self.phase_ramp_rad_per_px),
                "region_px": list(self.region_px), "pixel_size_m": self.pixel_size_m,
                "source": self.source}


def _feature(a: np.ndarray) -> np.ndarray:
    """De-planed unwrapped phase: insensitive to a global phase and a ramp."""
    return metrics._deplane(metrics.unwrap_phase(np.angle(a)))


def _box(a: np.ndarray, h: int, w: int) -> np.ndarray:
    """Sums of ``a`` over every h × w window (valid positions)."""
    c = np.zeros((a.shape[0] + 1, a.shape[1] + 1))
    c[1:, 1:] = np.cumsum(np.cumsum(a, 0), 1)
    return c[h:, w:] - c[:-h, w:] - c[h:, :-w] + c[:-h, :-w]


def _locate(image: np.ndarray, template: np.ndarray) -> tuple[tuple[int, int], float]:
    """Top-left (row, col) of ``template`` in ``image`` by normalised cross-correlation."""
    h, w = template.shape
    t = template - template.mean()
    t /= np.sqrt(np.sum(t * t)) + 1e-300
    H, W = image.shape
    shape = (H + h, W + w)
    corr = np.fft.irfft2(np.fft.rfft2(image, shape) * np.conj(np.fft.rfft2(t, shape)), shape)
    corr = corr[:H - h + 1, :W - w + 1]
    s1 = _box(image, h, w)
    s2 = _box(image * image, h, w)
    den = np.sqrt(np.maximum(s2 - s1 * s1 / (h * w), 1e-300))
    ncc = corr / den
    i, j = np.unravel_index(np.argmax(ncc), ncc.shape)
    return (int(i), int(j)), float(ncc[i, j])


def _resample(obj: np.ndarray, factor: float) -> np.ndarray:
    """``obj`` on a grid ``factor`` times finer (cubic spline on real and imaginary parts)."""
    return (ndimage.zoom(obj.real, factor, order=3)
            + 1j * ndimage.zoom(obj.imag, factor, order=3))


def score(recon: Product | np.ndarray, truth_object: np.ndarray, pixel_size_m: float,
          positions_m: np.ndarray, probe_px: int) -> Score:
    """Register a reconstruction to the ground truth and compute PCC, SSIM and FRC.

    Parameters
    ----------
    recon : Product or complex (H', W')
        The reconstruction (a bare array is taken at the truth's pixel size, its origin at its
        centre pixel).
    truth_object : complex (H, W)
        Ground-truth transmission, position 0 at pixel (H//2, W//2).
    pixel_size_m : float
        The truth's pixel size, metres.
    positions_m : float (N, 2 or 3)
        Scan positions x, y (metres) that define the scanned region.
    probe_px : int
        Probe window side in pixels (the region reaches a quarter of it past the positions).

    Returns
    -------
    Score
    """
    if not isinstance(recon, Product):
        recon = Product(np.asarray(recon, dtype=np.complex128), None, None, None, None, "array")
    truth_object = np.asarray(truth_object, dtype=np.complex128)
    obj = recon.object
    h0, w0 = obj.shape
    origin = np.array(recon.origin_px if recon.origin_px is not None else (h0 // 2, w0 // 2),
                      dtype=float)
    if recon.pixel_size_m is not None:
        factor = recon.pixel_size_m / pixel_size_m
        if abs(factor - 1) > 1e-3:
            obj = _resample(obj, factor)
            origin = origin * np.array(obj.shape) / np.array([h0, w0])

    rows, cols, _ = scanned_region(np.asarray(positions_m)[:, :2], pixel_size_m, probe_px)
    c = np.array(truth_object.shape) // 2
    r0, r1 = max(0, c[0] + rows.start), min(truth_object.shape[0], c[0] + rows.stop)
    c0, c1 = max(0, c[1] + cols.start), min(truth_object.shape[1], c[1] + cols.stop)
    t = truth_object[r0:r1, c0:c1]
    h, w = t.shape
    if h < 8 or w < 8:
        raise TwinInputError("--truth", f"scanned region {h}×{w} px",
                             "is too small to score (at least 8 × 8 pixels)")
    if obj.shape[0] < h or obj.shape[1] < w:
        raise TwinInputError("RECON", f"object {obj.shape} at {pixel_size_m:.3g} m pixels",
                             f"is smaller than the scanned region {h}×{w}")
    # where the region should start in the reconstruction if its origin is right
    expect = np.array([origin[0] + (r0 - c[0]), origin[1] + (c0 - c[1])])
    ft = _feature(t)
    hann = np.outer(np.hanning(h + 2)[1:-1], np.hanning(w + 2)[1:-1])
    best = None
    for name, conj, flip in CANDIDATES:
        o = np.conj(obj) if conj else obj
        e = expect
        if flip:
            o = o[::-1, ::-1]
            e = np.array(o.shape) - 1 - (expect + np.array([h, w]) - 1)
        # search a margin of a quarter region around the expected place (the whole object
        # when the expectation falls outside it)
        m = np.array([max(8, h // 4), max(8, w // 4)])
        lo = np.round(e).astype(int) - m
        hi = np.round(e).astype(int) + np.array([h, w]) + m
        if np.any(lo < 0) or np.any(hi > np.array(o.shape)):
            lo = np.maximum(lo, 0)
            hi = np.minimum(hi, np.array(o.shape))
            if np.any(hi - lo < np.array([h, w])):
                lo, hi = np.array([0, 0]), np.array(o.shape)
        win = o[lo[0]:hi[0], lo[1]:hi[1]]
        (i, j), _ = _locate(_feature(win), ft)
        a = win[i:i + h, j:j + w]
        # a Hann weight keeps the region's edges out of the sub-pixel registration
        al = metrics.align(a, t, weight=hann)
        # apply the sub-pixel shift to the larger window (a periodic shift of the region alone
        # would wrap its edges), cut again and fit the phase offset and ramp
        if np.any(np.abs(al.shift_px) > 0):
            moved = metrics.fourier_shift(win, al.shift_px)
            al1 = metrics.align(moved[i:i + h, j:j + w], t, weight=hann)
            al = metrics.Alignment(al1.aligned, al.shift_px + al1.shift_px, al1.phase_offset,
                                   al1.phase_ramp)
        pa = metrics.unwrap_phase(np.angle(al.aligned))
        pb = metrics.unwrap_phase(np.angle(t))
        pa = pa - 2 * np.pi * np.round(np.mean(pa - pb) / (2 * np.pi))
        p = metrics.pcc(pa, pb)
        if best is None or p > best[0]:
            shift = np.array([lo[0] + i, lo[1] + j], float) - e - al.shift_px
            best = (p, name, al, pa, pb, shift)
    p, name, al, pa, pb, shift = best
    rng = float(pb.max() - pb.min()) or 1.0
    frc = metrics.fourier_correlation(pa, pb, pixel_size_m)
    err = np.angle(al.aligned * np.conj(t))
    return Score(p, metrics.ssim(pa, pb, rng), frc.resolution_m("half_bit"),
                 frc.resolution_m("1/7"), float(np.sqrt(np.mean(err ** 2))), name,
                 (float(shift[0]), float(shift[1])), al.phase_offset, al.phase_ramp, (h, w),
                 float(pixel_size_m), recon.source, frc)


def score_files(recon_path: str | Path, truth_path: str | Path,
                pixel_size_m: float | None = None) -> Score:
    """:func:`score` of a reconstruction file against a twin CXI file's ground truth.

    Parameters
    ----------
    recon_path : str or Path
        Any layout :func:`twin.io.products.read_product` reads.
    truth_path : str or Path
        A CXI file written by ``twin simulate`` (it must carry ``/entry_1/sample_1/ground_truth``).
    pixel_size_m : float, optional
        The reconstruction's pixel size where its file does not say (default: the truth's).
    """
    data = tio.read_cxi(truth_path)
    if data.ground_truth is None:
        raise TwinInputError("--truth", str(truth_path),
                             "has no /entry_1/sample_1/ground_truth (only files written by "
                             "`twin simulate` carry one)")
    dx = data.truth.pixel_size_m
    if dx is None or not np.isfinite(dx):
        dx = data.object_pixel_m
    probe_px = (data.illumination.shape[-1] if data.illumination is not None
                else data.frames.shape[-1] * data.upsampling)
    recon = read_product(recon_path, pixel_size_m)
    return score(recon, data.ground_truth, dx, data.translations_m, probe_px)


def write_frc(s: Score, prefix: str | Path) -> tuple[Path, Path]:
    """The FRC curve as ``PREFIX.frc.csv`` and ``PREFIX.frc.png`` (atomically).

    The CSV has one row per ring: ``frequency_per_m``, ``half_period_m`` (1/(2f)), ``frc``,
    ``half_bit``, ``n_points``.
    """
    prefix = Path(prefix)
    csv_path = prefix.with_name(prefix.name + ".frc.csv")
    png_path = prefix.with_name(prefix.name + ".frc.png")
    f = s.frc
    with tio.atomic_path(csv_path) as tmp, open(tmp, "w", newline="") as fh:
        wr = csv.writer(fh)
        wr.writerow(["frequency_per_m", "half_period_m", "frc", "half_bit", "n_points"])
        for row in zip(f.frequency_per_m, 0.5 / f.frequency_per_m, f.correlation, f.half_bit,
                       f.n_points):
            wr.writerow([f"{v:.9g}" for v in row])
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5), dpi=100)
    x = f.frequency_per_m * 1e-6
    ax.plot(x, f.correlation, label="FRC (reconstruction vs truth)")
    ax.plot(x, f.half_bit, "--", label="half-bit threshold")
    ax.axhline(1 / 7, color="grey", lw=0.8, ls=":", label="1/7")
    res = s.frc_resolution_m
    ax.axvline(0.5 / res * 1e-6, color="k", lw=0.8,
               label=f"half-bit resolution {res * 1e9:.3g} nm")
    ax.set_xlabel("spatial frequency (1/µm)")
    ax.set_ylabel("correlation")
    ax.set_ylim(-0.1, 1.05)
    ax.legend(fontsize=7)
    fig.tight_layout()
    with tio.atomic_path(png_path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return csv_path, png_path
