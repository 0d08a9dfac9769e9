"""Position correction: refined scan positions during a reconstruction.

* **gradient**: the cost's derivative with respect to each position, from the object's
  gradient under the probe (as in LSQML-type codes): Δr = Re⟨∂ψ/∂r, Δψ⟩ / ‖∂ψ/∂r‖², relaxed
  and clipped (:func:`position_step`, applied inside each minibatch step);
* **annealing** (Maiden et al. 2012): trial shifts of shrinking size, the best kept, after
  each iteration (:func:`annealing`);
* fly scans: the corrections smoothed along the trajectory (:func:`smooth_corrections`).

Positions are (row, col) pixels of the object's top-left window corner
(:class:`~twin.recon.state.State`).
"""

from __future__ import annotations

import numpy as np

from twin.core import kernels
from twin.core.xp import to_numpy
from twin.recon.modulus import bin_sum
from twin.recon.options import Options, PositionCorrection


def position_dots(op, idx, obj, probes, chi):
    """(num, den), each (B, 2): Re⟨∂ψ/∂r, Δψ⟩ and ‖∂ψ/∂r‖² per position and axis, with ∂ψ/∂r
    from the operator's exact patch derivative.

    Parameters
    ----------
    op : FarFieldPtychography
        The (local) operator, whose ``patch_gradients`` give ∂O/∂row and ∂O/∂col per window.
    idx : array_like of int (B,)
        Windows of the batch in ``op``.
    obj : ndarray (H, W) complex
        The object (or the local view) that ``op`` reads.
    probes : ndarray (M, n, n) or (1, M, n, n) complex
        Probe modes.
    chi : ndarray (B, M, n, n) complex
        Exit-wave correction Δψ.

    Returns
    -------
    num, den : numpy.ndarray
        (B, 2) float on the host, axes (row, col).
    """
    xp = op.xp
    nums, dens = [], []
    for g in op.patch_gradients(obj, idx):
        if op.fused and probes.shape[0] == 1 and chi.dtype == np.complex64:
            dots = np.empty((len(g), 2))                               # fused CPU pass
            kernels.direction_dots(np.asarray(probes[0], np.complex64),
                                   np.asarray(g, np.complex64), chi, dots)
            nums.append(dots[:, 0])
            dens.append(dots[:, 1])
            continue
        d = probes * g[:, None]
        nums.append(to_numpy(xp.real(xp.sum(xp.conj(d) * chi, axis=(1, 2, 3)))))
        dens.append(to_numpy(xp.sum(d.real ** 2 + d.imag ** 2, axis=(1, 2, 3))))
    return np.stack(nums, axis=1), np.stack(dens, axis=1)


def position_step(opts: Options, num, den):
    """(B, 2) shift of each position that best explains the exit-wave correction, from
    :func:`position_dots`' (num, den) (several beams: their sums), relaxed and clipped.

    Δr = relaxation·num/(den + 10⁻¹²), clipped to ±``max_position_step_px``.

    Parameters
    ----------
    opts : Options
        ``position_relaxation`` and ``max_position_step_px``.
    num, den : ndarray (B, 2)
        From :func:`position_dots`.

    Returns
    -------
    numpy.ndarray
        (B, 2) shifts (row, col), object pixels.
    """
    step = opts.position_relaxation * (num / (den + 1e-12))
    return np.clip(step, -opts.max_position_step_px, opts.max_position_step_px)


def smooth_corrections(st, width: int) -> None:
    """Replace the corrections (refined − initial positions) by their moving average over
    ``width`` consecutive frames: a fly-scan's position errors vary smoothly in time, the
    per-frame estimates do not.

    The ends are padded with the edge values; the positions are then clipped
    (:meth:`State.clip`).

    Parameters
    ----------
    st : State
        Its positions are replaced in place.
    width : int
        Frames in the moving average.
    """
    corr = st.pos - st.pos0
    k = np.ones(width) / width
    pad = width // 2
    sm = np.stack([np.convolve(np.pad(corr[:, i], pad, mode="edge"), k, mode="valid")[:len(corr)]
                   for i in range(2)], axis=1)
    st.set_positions(st.clip(st.pos0 + sm))


def annealing(st, it: int, opts: Options):
    """Maiden et al. 2012: trial shifts of shrinking radius; keep whichever lowers the error.

    In groups of about 256 positions, four random trial shifts uniform in ±r pixels per axis,
    r = 1 − it/iterations + 0.05, are compared with the current position by the masked amplitude
    misfit; each position keeps its best.

    Parameters
    ----------
    st : State
        Its positions are updated in place; its generator draws the shifts.
    it : int
        Current iteration (0-based).
    opts : Options
        ``iterations``.
    """
    xp = st.xp
    radius = 1.0 * (1 - it / max(opts.iterations, 1)) + 0.05
    n_trials = 4
    obj = st.object
    for idx in np.array_split(np.arange(len(st.pos)), max(1, len(st.pos) // 256)):
        base = st.pos[idx]
        trials = [base] + [base + st.rng.uniform(-radius, radius, base.shape)
                           for _ in range(n_trials)]
        trials = [st.clip(t) for t in trials]
        errs = []
        amp = st.amplitudes(idx)
        for t in trials:
            far = st.op.with_positions(t).fwd(obj)
            model = xp.sqrt(bin_sum((far.real ** 2 + far.imag ** 2).sum(axis=1), st.u))
            errs.append(to_numpy(xp.sum((model - amp) ** 2 * st.mask, axis=(1, 2))))
        best = np.argmin(np.stack(errs), axis=0)
        st.set_positions(np.stack(trials)[best, np.arange(len(idx))], idx)


def after_iteration(st, it: int, opts: Options) -> None:
    """What position correction does once an iteration's batches are done: annealing's
    trials, and the fly-scan smoothing of the corrections.

    Nothing before ``opts.position_correction_start``.

    Parameters
    ----------
    st : State
        Updated in place.
    it : int
        The iteration just done (0-based).
    opts : Options
        ``position_correction``, ``position_correction_start``,
        ``position_smoothing_frames``.
    """
    if it < opts.position_correction_start:
        return
    if opts.position_correction == PositionCorrection.ANNEALING:
        annealing(st, it, opts)
    if (opts.position_correction != PositionCorrection.NONE
            and opts.position_smoothing_frames > 1):
        smooth_corrections(st, opts.position_smoothing_frames)


def gradient_on(opts: Options, it: int) -> bool:
    """Whether the minibatch steps of iteration ``it`` move the positions (gradient).

    Parameters
    ----------
    opts : Options
        ``position_correction`` and ``position_correction_start``.
    it : int
        Iteration (0-based).

    Returns
    -------
    bool
    """
    return (opts.position_correction == PositionCorrection.GRADIENT
            and it >= opts.position_correction_start)
