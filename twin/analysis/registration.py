"""Where the truth's scanned region lies in a reconstruction (steps 1–4 of
:mod:`twin.analysis.score`).

The reconstruction is resampled to the truth's pixel size and the truth cut to the scanned
region (:func:`_region`); for one candidate of the phase-retrieval ambiguities (conjugate,
point-reflected) :func:`_candidate` finds the region by the normalised cross-correlation of the
phase-gradient phasors O(r + 1)·conj O(r) (:func:`_locate`; blind to a global phase, a ramp and
2π wraps), aligns it to sub-pixel precision with :func:`twin.analysis.alignment.align` and
measures its phase coherence with the truth.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from twin.analysis import metrics
from twin.analysis.truth import scanned_region
from twin.core.errors import TwinInputError
from twin.io.products import Product


def _phasor_gradients(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """exp(i∂φ) along rows and columns: O(r + ŷ)·conj O(r) and O(r + x̂)·conj O(r), unit
    modulus (zero where O is)."""
    z = np.asarray(a, dtype=np.complex128)
    gy = z[1:, 1:] * np.conj(z[:-1, 1:])
    gx = z[1:, 1:] * np.conj(z[1:, :-1])
    return tuple(g / np.where(np.abs(g) > 0, np.abs(g), 1.0) for g in (gy, gx))


def _box(a: np.ndarray, h: int, w: int) -> np.ndarray:
    """Sums of ``a`` over every h × w window (valid positions)."""
    c = np.zeros((a.shape[0] + 1, a.shape[1] + 1), dtype=a.dtype)
    c[1:, 1:] = np.cumsum(np.cumsum(a, 0), 1)
    return c[h:, w:] - c[:-h, w:] - c[h:, :-w] + c[:-h, :-w]


def _ncc(image: np.ndarray, template: np.ndarray) -> np.ndarray:
    """|normalised cross-correlation| of a complex template at every valid place in ``image``
    (magnitude: a constant phase factor, such as a ramp gives the phasors, does not matter)."""
    h, w = template.shape
    t = template - template.mean()
    t = t / (np.sqrt(np.sum(np.abs(t) ** 2)) + 1e-300)
    H, W = image.shape
    shape = (H + h, W + w)
    corr = np.fft.ifft2(np.fft.fft2(image, shape) * np.conj(np.fft.fft2(t, shape)))
    corr = corr[:H - h + 1, :W - w + 1]
    s1 = _box(image, h, w)
    s2 = _box(np.abs(image) ** 2, h, w).real
    den = np.sqrt(np.maximum(s2 - np.abs(s1) ** 2 / (h * w), 1e-300))
    return np.abs(corr) / den


def _locate(image: np.ndarray, template: np.ndarray) -> tuple[int, int]:
    """Top-left (row, col) of the complex ``template`` in ``image`` by the phase-gradient
    phasors' normalised cross-correlation."""
    iy, ix = _phasor_gradients(image)
    ty, tx = _phasor_gradients(template)
    ncc = _ncc(iy, ty) + _ncc(ix, tx)
    i, j = np.unravel_index(np.argmax(ncc), ncc.shape)
    return int(i), int(j)


def _resample(obj: np.ndarray, factor: float) -> np.ndarray:
    """``obj`` on a grid ``factor`` times finer (cubic spline on real and imaginary parts)."""
    return (ndimage.zoom(obj.real, factor, order=3)
            + 1j * ndimage.zoom(obj.imag, factor, order=3))


def _wrap(a: np.ndarray) -> np.ndarray:
    return (a + np.pi) % (2 * np.pi) - np.pi


def _search_window(o: np.ndarray, e: np.ndarray, h: int, w: int) -> np.ndarray:
    """Rows/cols [lo, hi) of ``o`` to search: a quarter region around the expected top-left
    ``e`` (the whole object when that falls outside it)."""
    m = np.array([max(8, h // 4), max(8, w // 4)])
    lo = np.round(e).astype(int) - m
    hi = np.round(e).astype(int) + np.array([h, w]) + m
    if np.any(lo < 0) or np.any(hi > np.array(o.shape)):
        lo = np.maximum(lo, 0)
        hi = np.minimum(hi, np.array(o.shape))
        if np.any(hi - lo < np.array([h, w])):
            lo, hi = np.array([0, 0]), np.array(o.shape)
    return np.stack([lo, hi])


def _candidate(obj, t, expect, conj, flip, hann):
    """Register one candidate: (coherence, alignment, shift of its region from expected)."""
    h, w = t.shape
    o = np.conj(obj) if conj else obj
    e = expect
    if flip:
        o = o[::-1, ::-1]
        e = np.array(o.shape) - 1 - (expect + np.array([h, w]) - 1)
    (lo, hi) = _search_window(o, e, h, w)
    win = o[lo[0]:hi[0], lo[1]:hi[1]]
    i, j = _locate(win, t)
    al = metrics.align(win[i:i + h, j:j + w], t, weight=hann)
    # apply the sub-pixel shift to the larger window (a periodic shift of the region alone
    # would wrap its edges), cut again and fit the phase offset and ramp
    if np.any(np.abs(al.shift_px) > 0):
        moved = metrics.fourier_shift(win, al.shift_px)
        al1 = metrics.align(moved[i:i + h, j:j + w], t, weight=hann)
        al = metrics.Alignment(al1.aligned, al.shift_px + al1.shift_px, al1.phase_offset,
                               al1.phase_ramp)
    diff = _wrap(np.angle(al.aligned) - np.angle(t))
    coherence = float(np.abs(np.sum(hann * np.exp(1j * diff))) / np.sum(hann))
    shift = np.array([lo[0] + i, lo[1] + j], float) - e - al.shift_px
    return coherence, al, shift


def _region(recon: Product, truth_object: np.ndarray, pixel_size_m: float,
            positions_m: np.ndarray, probe_px: int):
    """The reconstruction at the truth's pixel, the truth's scanned region and where that
    region should start in the reconstruction if its origin is right."""
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
    if not np.all(np.isfinite(obj)):
        raise TwinInputError("RECON", "an object with NaN or infinite values",
                             "finite complex values")
    return obj, t, np.array([origin[0] + (r0 - c[0]), origin[1] + (c0 - c[1])])
