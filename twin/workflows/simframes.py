"""Detector frames of a :class:`~twin.workflows.simplan.Plan`, block by block.

:func:`frames` yields the detector's recorded counts in blocks of :data:`BLOCK` frames;
:func:`expected_frames` gives their mean (all beams, motion blur averaged) through the plan's
:class:`twin.operators.farfield.FineFarField`, one per beam, made once per plan on its backend.
Each block's random stream is seeded by the seed and the block's index
(:func:`~twin.workflows.simplan.noise_key`): the same scenario and seed give the same frames, and
a part of a run gives exactly the first frames of the whole run.
"""

from __future__ import annotations

import numpy as np

from twin.acquisition import detector as _detector
from twin.core.xp import get_xp
from twin.operators.farfield import CACHE_BYTES, ROW_BYTES, SUBPIXEL_QUANTUM, FineFarField
from twin.workflows.simplan import Plan, noise_key

#: Frames per block: the unit of the frames' random streams and of :func:`frames`' output.
BLOCK = 256


def _operator(p: Plan, beam: int) -> FineFarField:
    """The detector model of ``beam`` (:class:`twin.operators.farfield.FineFarField`), made
    once per plan and beam on the plan's backend: its propagator, cached shifts and device
    arrays serve every block; made again if the plan's slabs or probes are replaced."""
    d = p._device
    xp = get_xp(p.backend)
    if (d.get("xp") is not xp or d.get("of") is None or d["of"][0] is not p.fine_slices
            or d["of"][1] is not p.fine_probes):
        d.clear()
        d.update(xp=xp, of=(p.fine_slices, p.fine_probes), ops={},
                 slices=xp.ascontiguousarray(xp.asarray(p.fine_slices, dtype=xp.complex64)))
    op = d["ops"].get(beam)
    if op is None:
        nb = len(p.fine_probes)            # the beams share the caches' memory
        op = FineFarField(xp.asarray(p.fine_probes[beam]), d["slices"], p.oversampling,
                          p.n_native, p.fine_pixel_m, p.slice_spacing_m, p.wavelength_m,
                          quantum=SUBPIXEL_QUANTUM, cache_bytes=CACHE_BYTES // nb,
                          row_bytes=ROW_BYTES // nb)
        d["ops"][beam] = op
    return op


def expected_frames(p: Plan, start: int, stop: int) -> np.ndarray:
    """Mean incident photons per native detector pixel and exposure of frames
    ``start`` … ``stop − 1``: the beams' intensities summed, each averaged over the frame's
    motion-blur samples (``p.blur_samples``).

    Parameters
    ----------
    p : Plan
        The simulation's plan (:func:`~twin.workflows.simplan.plan`).
    start, stop : int
        Frame indices of the scan, ``stop`` exclusive.

    Returns
    -------
    (k, n_native, n_native) float32 ndarray
        k = ``stop − start`` frames, before the detector's response, counting and binning.
    """
    hit = p._cache.get("sub_positions")
    if hit is None or hit[0] is not p.trajectory or hit[1] != p.blur_samples:
        # the whole scan's, once (not once per block)
        hit = p._cache["sub_positions"] = (p.trajectory, p.blur_samples,
                                           p.trajectory.sub_positions(p.blur_samples))
    sub = hit[2][start:stop]                                              # (k, K, 2)
    k, n_sub = sub.shape[:2]
    acc = np.zeros((k, p.n_native, p.n_native), np.float32)
    for bi, off in enumerate(p.beam_offsets_m):
        op = _operator(p, bi)
        inten = op.intensity(p.fine_top_left_px((sub + off).reshape(-1, 2)))
        if n_sub == 1:
            acc += inten                   # the mean of one sample, without its passes
        else:
            acc += inten.reshape(k, n_sub, p.n_native, p.n_native).mean(axis=1)
    return acc


def frames(p: Plan, start: int = 0, stop: int | None = None):
    """Yield the detector's recorded counts of frames ``start`` … ``stop − 1``, block by block.

    Each block of :data:`BLOCK` frames (aligned to multiples of :data:`BLOCK` of the whole scan)
    is drawn with its own random stream, so a block's counts do not depend on ``start`` and
    ``stop``; the first and last blocks are cut to the range asked for.

    Parameters
    ----------
    p : Plan
        The simulation's plan (:func:`~twin.workflows.simplan.plan`).
    start : int
        First frame.
    stop : int or None
        End of the range, exclusive (None: ``p.n_frames``, the whole scan).

    Yields
    ------
    first : int
        Index of the block's first frame in the scan.
    counts : (k, n_eff, n_eff) float32 ndarray
        The recorded counts of k ≤ :data:`BLOCK` frames (after binning, counter limit and
        ``p.mask``; :func:`twin.acquisition.detector.count_frames`).
    """
    stop = p.n_frames if stop is None else stop
    det = p.det
    for b0 in range(start - start % BLOCK, stop, BLOCK):
        b1 = min(b0 + BLOCK, p.n_frames)
        lam = expected_frames(p, b0, b1)
        rng = np.random.default_rng(noise_key(p.scenario.seed, p.projection) + [b0 // BLOCK])
        counts = _detector.count_frames(lam, det, p.exposure_s, rng, p.dead_time_model,
                                        p.scenario.detector.overflow, p.mask,
                                        response=p.response)
        lo, hi = max(start, b0), min(stop, b1)
        yield lo, counts[lo - b0:hi - b0]

