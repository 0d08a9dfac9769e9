"""The counting model of a photon-counting detector: what reaches the counters, photon by photon.

:func:`count_frames` turns expected photons per native pixel into recorded counts: the detector
response (:class:`~twin.acquisition.detector.Response`), Poisson arrivals
(:func:`poisson_frames`), dead time decided photon by photon from each photon's arrival time
(:func:`record_photons`; paralyzable or non-paralyzable), b × b on-chip binning, the counter's
depth and its 8-bit floating-point code (:func:`float8_encode`). The closed forms of dead time
that this model is tested against live with the presets in :mod:`twin.acquisition.detector`,
which re-exports the names of this module.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from twin.core.errors import TwinInputError

if TYPE_CHECKING:  # annotations only: detector.py imports this module
    from twin.acquisition.detector import DetectorMode, Response


def float8_encode(counts) -> np.ndarray:
    """8-bit floating point (3-bit exponent, 5-bit mantissa) of a 12-bit counter value.

    e = 0 holds 0–31 exactly; e ≥ 1 holds (32 + m)·2^(e−1), so 32–63 stay exact and the step
    doubles with each exponent up to 64 counts at 2048–4095. seed 000 §2.2.1 names the mode but
    not its format: this is twin's assumption, a relative precision of ≤ 1/32.

    Parameters
    ----------
    counts : array_like of int
        Counter values (clipped to 0–4095).

    Returns
    -------
    uint8 array shaped like ``counts``
        The codes (exponent in the top 3 bits, mantissa in the low 5).
    """
    c = np.clip(np.asarray(counts, dtype=np.int64), 0, 4095)
    e = np.where(c < 32, 0, np.floor(np.log2(np.maximum(c, 1))).astype(np.int64) - 4)
    m = np.where(e == 0, c, (c >> np.maximum(e - 1, 0)) - 32)
    return ((e << 5) | m).astype(np.uint8)


def float8_decode(code) -> np.ndarray:
    """Counts from :func:`float8_encode` codes: the centre of each code's interval.

    Parameters
    ----------
    code : array_like of int
        8-bit codes.

    Returns
    -------
    float32 array shaped like ``code``
        The counts the codes stand for.
    """
    c = np.asarray(code, dtype=np.int64)
    e, m = c >> 5, c & 31
    low = np.where(e == 0, m, (32 + m) << np.maximum(e - 1, 0))
    step = np.where(e <= 1, 1, 1 << np.maximum(e - 1, 0))
    return (low + (step - 1) / 2.0).astype(np.float32)


def sorted_uniforms(counts: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """For each group g, ``counts[g]`` sorted uniforms on (0, 1), groups laid end to end.

    Order statistics without a sort: the partial sums of k + 1 exponential variables, divided
    by their total, are k sorted uniforms (Devroye, *Non-Uniform Random Variate Generation*,
    ch. V.2). Sorted keys make the inverse-CDF search that follows cache-friendly.

    Parameters
    ----------
    counts : int array (G,)
        How many uniforms each group gets.
    rng : numpy.random.Generator

    Returns
    -------
    float array (Σ counts,)
        The uniforms, group after group, sorted within each group.
    """
    counts = np.asarray(counts, dtype=np.int64)
    n = int(counts.sum())
    e = rng.exponential(size=n + len(counts))
    cs = np.cumsum(e)
    ends = np.cumsum(counts + 1) - 1
    before = np.concatenate([[0.0], cs[ends[:-1]]])
    total = cs[ends] - before
    keep = np.ones(len(cs), bool)
    keep[ends] = False
    gid = np.repeat(np.arange(len(counts)), counts)
    return (cs[keep] - before[gid]) / total[gid]


def poisson_frames(lam: np.ndarray, rng_n: np.random.Generator, rng_u: np.random.Generator,
                   rng_d: np.random.Generator, rng_v: np.random.Generator | None = None,
                   block: int = 8) -> np.ndarray:
    """Independent Poisson counts of means ``lam`` (..., ny, nx), frame by frame.

    Sparse frames (fewer expected photons than pixels, the rule at high frame rates) use the
    splitting property of the Poisson process, exactly: the frame's photon number is drawn as
    K ~ Poisson(Σλ) and each photon is placed by inverse-CDF sampling of λ/Σλ, in two stages
    (first a ``block`` × ``block`` tile by the tiles' sums, then a pixel within the tile), so
    that only tiles that receive photons are scanned. Dense frames draw one Poisson number per
    pixel. ``rng_n`` gives the photon numbers, ``rng_u`` and ``rng_v`` the placements (tile,
    then pixel), ``rng_d`` the dense frames; each is consumed in frame order, so a frame's
    counts do not depend on the frames drawn with it.

    Parameters
    ----------
    lam : float array (..., ny, nx)
        Expected counts per pixel.
    rng_n, rng_u, rng_d : numpy.random.Generator
        Photon numbers, tile placements, dense frames.
    rng_v : numpy.random.Generator or None
        Pixel placements within a tile (default: ``rng_u``).
    block : int
        Tile side of the two-stage placement (1 where it does not divide the frame).

    Returns
    -------
    float32 array shaped like ``lam``
        The counts.
    """
    shape = lam.shape
    ny, nx = shape[-2:]
    frames = lam.reshape(-1, ny, nx)
    n_pix = ny * nx
    b = block if (ny % block == 0 and nx % block == 0) else 1
    hb, wb = ny // b, nx // b
    tiles = frames.reshape(-1, hb, b, wb, b).sum(axis=(2, 4)).astype(np.float64)
    tiles = tiles.reshape(len(frames), hb * wb)
    totals = tiles.sum(axis=1)
    out = np.zeros((len(frames), n_pix), np.float32)
    sparse = totals < n_pix / 4
    k = rng_n.poisson(np.where(sparse, totals, 0.0))
    rows = np.nonzero(sparse & (k > 0))[0]
    if len(rows):
        _place_photons(frames, tiles, totals, rows, k[rows], b, out,
                       rng_u, rng_v if rng_v is not None else rng_u)
    dense = np.nonzero(~sparse)[0]
    for r in dense:                       # dense frames: one draw per pixel, in frame order
        out[r] = rng_d.poisson(frames[r].ravel())
    return out.reshape(shape)



# ----------------------------------------------------------------------------- dead time


#: Pixels with more photons than this in one exposure are drawn from the renewal-theory normal
#: law (:func:`_record_many`) instead of photon by photon: their count would otherwise cost
#: memory and time in proportion to the photons (10⁷ per frame at 10¹⁰ photons/s and 1 ms).
PHOTON_BY_PHOTON_MAX = 64


def _record_many(k: np.ndarray, exposure_s: float, dead_time_s: float, model: str,
                 rng: np.random.Generator) -> np.ndarray:
    """Recorded counts of pixels that received many photons ``k`` (≫ 1) in one exposure.

    Given k arrivals in T (rate n = k/T, x = nτ), the recorded count is close to normal
    (renewal theory; Müller 1973). Its unconditional mean m(n) and variance v(n) are
    non-paralyzable m = nT/(1 + x), v = m/(1 + x)²; paralyzable m = nT·e^(−x),
    v = m(1 − 2x·e^(−x)). Conditioned on k the variance loses the part that k's own Poisson
    spread carries, (dm/dk)²·k: non-paralyzable k·x/(1 + x)⁴, paralyzable
    k·e^(−x) − k·e^(−2x)(1 + x²).
    """
    kf = k.astype(np.float64)
    x = kf * dead_time_s / exposure_s
    if model == "paralyzable":
        mean = kf * np.exp(-x)
        var = kf * np.exp(-x) - kf * np.exp(-2 * x) * (1 + x * x)
    else:
        mean = kf / (1 + x)
        var = kf * x / (1 + x) ** 4
    rec = np.rint(mean + np.sqrt(np.maximum(var, 0.0)) * rng.standard_normal(len(kf)))
    return np.clip(rec, 1, kf).astype(np.float32)


def record_photons(counts, exposure_s: float, dead_time_s: float, model: str,
                   rng: np.random.Generator) -> np.ndarray:
    """Recorded counts of pixels that received ``counts`` photons in one exposure, photon by
    photon.

    Arrival times are drawn for every photon (uniform within the exposure, given the count:
    a Poisson process of constant rate), and each photon is counted if the front end is live
    when it arrives. Paralyzable: live when the previous photon (counted or not) arrived at
    least τ earlier. Non-paralyzable (instant retrigger): live when the last *counted* photon
    arrived at least τ earlier. The front end is live at the start of each exposure.

    Parameters
    ----------
    counts : int array (any shape)
        Photons arriving per pixel in the exposure.
    exposure_s, dead_time_s : float
        Exposure T and dead time τ, seconds.
    model : {"paralyzable", "nonparalyzable"}
    rng : numpy.random.Generator

    Returns
    -------
    float32 array shaped like ``counts``.
    """
    if model not in ("paralyzable", "nonparalyzable"):
        raise TwinInputError("detector.dead_time_model", model,
                             "allowed: 'paralyzable', 'nonparalyzable'")
    c = np.asarray(counts)
    out = c.astype(np.float32, copy=True)
    if dead_time_s <= 0:
        return out
    flat = out.reshape(-1)
    # a generator of its own for the many-photon pixels, split off at a fixed point of the
    # stream, so that a prefix of the frames still reproduces the whole run
    rng_many = np.random.default_rng(rng.integers(2 ** 63))
    many = np.nonzero(c.reshape(-1) > PHOTON_BY_PHOTON_MAX)[0]
    if len(many):
        flat[many] = _record_many(c.reshape(-1)[many], exposure_s, dead_time_s, model, rng_many)
    idx = np.nonzero((c.reshape(-1) >= 2) & (c.reshape(-1) <= PHOTON_BY_PHOTON_MAX))[0]
    if len(idx) == 0:
        return out
    k = c.reshape(-1)[idx].astype(np.int64)
    # times drawn in the pixels' own order (frame-major), so that the first frames of a block
    # get the same draws whatever follows them (a prefix of a run reproduces it)
    t = sorted_uniforms(k, rng) * exposure_s           # grouped by pixel, sorted within
    starts = np.cumsum(k) - k
    if model == "paralyzable":
        flat[idx] = _live_paralyzable(t, starts, dead_time_s)
    else:
        flat[idx] = _live_nonparalyzable(t, k, starts, dead_time_s)
    return out


def _live_paralyzable(t: np.ndarray, starts: np.ndarray, dead_time_s: float) -> np.ndarray:
    """Photons a paralyzable front end counts per pixel: each photon that arrives at least τ
    after the one before it (counted or not), and every pixel's first.

    Parameters
    ----------
    t : float (Σk,)
        Arrival times, seconds, grouped by pixel and sorted within each pixel.
    starts : int (P,)
        Index in ``t`` of each pixel's first photon.
    dead_time_s : float
        Dead time τ, seconds.

    Returns
    -------
    (P,) array
        Recorded counts per pixel.
    """
    ok = np.empty(len(t), bool)
    ok[0] = True
    ok[1:] = np.diff(t) >= dead_time_s
    ok[starts] = True
    return np.add.reduceat(ok, starts)


def _live_nonparalyzable(t: np.ndarray, k: np.ndarray, starts: np.ndarray,
                         dead_time_s: float) -> np.ndarray:
    """Photons a non-paralyzable front end counts per pixel: each photon that arrives at
    least τ after the last *counted* one, and every pixel's first.

    The pixels are walked photon rank by photon rank (j-th photon of every pixel at once),
    most photons first so that the pixels that still have a j-th photon are a prefix.

    Parameters
    ----------
    t : float (Σk,)
        Arrival times, seconds, grouped by pixel and sorted within each pixel.
    k : int (P,)
        Photons per pixel (≥ 1).
    starts : int (P,)
        Index in ``t`` of each pixel's first photon.
    dead_time_s : float
        Dead time τ, seconds.

    Returns
    -------
    float (P,)
        Recorded counts per pixel, in the pixels' order.
    """
    order = np.argsort(-k, kind="stable")
    k, starts = k[order], starts[order]
    last = t[starts].copy()
    rec = np.ones(len(k))
    n_live = np.searchsorted(-k, -np.arange(k[0]), side="left")   # [j]: groups with > j
    for j in range(1, int(k[0])):
        m = int(n_live[j])                              # groups with more than j photons
        tj = t[starts[:m] + j]
        ok = tj - last[:m] >= dead_time_s
        last[:m] = np.where(ok, tj, last[:m])
        rec[:m] += ok
    out = np.empty_like(rec)
    out[order] = rec
    return out


def count_frames(expected, det: DetectorMode, exposure_s: float, rng: np.random.Generator,
                 dead_time_model: str | None = None, overflow: str = "saturate",
                 mask=None, response: Response | None = None) -> np.ndarray:
    """Photon-counting detector acting on expected photons per native pixel.

    Parameters
    ----------
    expected : (..., n·b, n·b) float
        Mean incident photons per native pixel per exposure (b = binning).
    det : DetectorMode
    exposure_s : float
        Exposure T, seconds.
    rng : numpy.random.Generator
    dead_time_model : {"paralyzable", "nonparalyzable"} or None
        Default: the mode's (``det.dead_time_model``).
    overflow : {"saturate", "wrap"}
        What a counter does above 2^bits − 1: hold at the maximum, or roll over.
    mask : (n, n) or None
        Multiplies the result (gaps, bad pixels).
    response : Response or None
        Quantum efficiency, charge sharing and gain applied to ``expected`` first.

    Returns
    -------
    float32 (..., n, n) recorded counts (float because float8 decodes to interval centres;
    integral otherwise).

    Steps: the response; Poisson arrivals; dead time photon by photon per native pixel
    (:func:`record_photons`); b×b on-chip binning (summed); the counter's limit; the 8-bit
    floating-point code where the mode has it; ``mask``.
    """
    lam = np.asarray(expected)
    if response is not None:
        lam = response.apply(lam)
    model = dead_time_model or det.dead_time_model
    if overflow not in ("saturate", "wrap"):
        raise ValueError(f"overflow {overflow!r}: use 'saturate' or 'wrap'")
    # child streams drawn first: the k-th frame's counts then do not depend on how many frames
    # are drawn together (a prefix of a run reproduces it)
    seeds = rng.integers(2 ** 63, size=5)
    counts = poisson_frames(lam, *(np.random.default_rng(x) for x in seeds[:3]),
                            rng_v=np.random.default_rng(seeds[4]))
    if det.dead_time_s > 0:
        rng_loss = np.random.default_rng(seeds[3])
        counts = record_photons(counts, exposure_s, det.dead_time_s, model, rng_loss)
    counts = _counter(_bin_on_chip(counts, det.binning), det, overflow)
    if mask is not None:
        counts = counts * mask
    return counts.astype(np.float32)


def _bin_on_chip(counts: np.ndarray, b: int) -> np.ndarray:
    """b × b on-chip binning: (…, n·b, n·b) counts summed into (…, n, n); ``counts`` itself
    for b = 1."""
    if b <= 1:
        return counts
    # strided adds: far faster than a reduction over two length-b axes
    binned = counts[..., 0::b, 0::b].copy()
    for i in range(b):
        for j in range(b):
            if i or j:
                binned += counts[..., i::b, j::b]
    return binned


def _counter(counts: np.ndarray, det: DetectorMode, overflow: str) -> np.ndarray:
    """What the counter holds: at most 2^bits − 1 (``overflow`` "saturate": held there;
    "wrap": rolled over), then the 8-bit floating-point code where the mode has one."""
    top = det.max_counts
    if overflow == "saturate":
        counts = np.minimum(counts, top)
    else:
        counts = np.mod(counts, top + 1)
    if det.float8 and counts.max(initial=0) >= 64:        # exact below 64
        counts = float8_decode(float8_encode(counts))
    return counts


def _place_photons(frames: np.ndarray, tiles: np.ndarray, totals: np.ndarray,
                   rows: np.ndarray, kk: np.ndarray, b: int, out: np.ndarray,
                   rng_u: np.random.Generator, rng_v: np.random.Generator) -> None:
    """:func:`poisson_frames`' sparse frames ``rows``: ``kk`` photons each, placed in ``out``
    by inverse-CDF sampling, a ``b`` × ``b`` tile first, then a pixel within it."""
    hb, wb = frames.shape[1] // b, frames.shape[2] // b
    n_tiles = hb * wb
    # stage 1: a tile per photon, from the tiles' CDF of each frame laid end to end
    cdf1 = np.cumsum(tiles[rows].ravel())
    start1 = np.concatenate([[0.0], cdf1[n_tiles - 1::n_tiles][:-1]])
    # sorted within each frame, so the queries below are sorted overall
    u1 = sorted_uniforms(kk, rng_u)
    t = np.repeat(start1, kk) + u1 * np.repeat(totals[rows], kk)
    gtile = np.minimum(np.searchsorted(cdf1, t, side="right"), len(rows) * n_tiles - 1)
    # stage 2: a pixel within the tile, from the CDFs of the hit tiles only
    hit = np.nonzero(np.bincount(gtile, minlength=len(rows) * n_tiles))[0]
    lut = np.empty(len(rows) * n_tiles, np.int64)
    lut[hit] = np.arange(len(hit))
    inv = lut[gtile]                   # non-decreasing: photons come grouped by tile
    fr, tl = np.divmod(hit, n_tiles)
    ty, tx = np.divmod(tl, wb)
    pix = frames.reshape(-1, hb, b, wb, b)[rows[fr], ty, :, tx, :].reshape(len(hit), b * b)
    cdf2 = np.cumsum(pix.ravel(), dtype=np.float64)
    tile_sum = tiles[rows[fr], tl]
    start2 = np.concatenate([[0.0], cdf2[b * b - 1::b * b][:-1]])
    u2 = sorted_uniforms(np.bincount(inv, minlength=len(hit)), rng_v)
    v = start2[inv] + u2 * tile_sum[inv]
    g = np.minimum(np.searchsorted(cdf2, v, side="right"), len(hit) * b * b - 1)
    per_tile = np.bincount(g, minlength=len(hit) * b * b).reshape(len(hit), b, b)
    out5 = out.reshape(-1, hb, b, wb, b)
    out5[rows[fr], ty, :, tx, :] = per_tile
