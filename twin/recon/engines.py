"""Ptychographic reconstruction engines: ePIE, rPIE, LSQML and multislice, with probe modes
and several beams, written once against ``xp``.

Every engine works on minibatches of scan positions at once (no per-frame Python loop) and runs
through the adjoint-tested operators of :mod:`twin.operators` (``FarFieldPtychography`` and
``Multislice``): the exit waves of a batch are formed, propagated to the detector, corrected
there (:mod:`twin.recon.modulus`), and the object and probe updates of all positions of the
batch are the operators' adjoints of the correction (summed into the object with window
additions). One minibatch step (:func:`minibatch_step`) serves one beam and B beams alike; the
update rules are registered by name (:data:`UPDATES`).

* **ePIE** (Maiden & Rodenburg 2009) and **rPIE** (Maiden, Johnson & Li 2017): the modulus
  constraint replaces the far-field amplitude by the measured one (all probe modes scaled
  alike, Thibault & Menzel 2013); updates conj(P)Δψ / ((1 − α)|P|² + α·max|P|²) (rPIE;
  α = 1 gives ePIE's max-normalised step).
* **LSQML** (Odstrčil, Menzel & Guizar-Sicairos 2018): the exit-wave update is the gradient of
  the Gaussian (amplitude) or Poisson log-likelihood; object and probe directions are
  preconditioned sums over the batch, and their step lengths are the least-squares solution of
  ‖χ − a·P·ΔO − b·ΔP·O‖² for every position (the median over the batch is applied).
* **Multislice** (Maiden, Humphry & Rodenburg 2012): the object is L slices a distance Δz
  apart; the correction at the exit is carried back through each slice and propagation.
* **Several beams** (multibeam ptychography, Lyubomirskiy et al. 2022): the frame is the
  incoherent sum over beams b and their modes m of |F(P_bm · O(r + d_b))|², so the beams enter
  the modulus constraint as further modes, each reading the object at its own offset d_b.

Position correction: :mod:`twin.recon.positions`; the options: :mod:`twin.recon.options`; the
choices left to the data ("auto") are made before the engines run (:mod:`twin.recon.auto`).

Conventions: CONTRACTS §3 frames (DC at the centre) and translations; the object's centre
pixel is the translations' origin (CONTRACTS §4).
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from twin.core import kernels
from twin.core.xp import to_numpy
from twin.io.datamodel import PtychoData
from twin.operators.multislice import Multislice
from twin.recon import positions
from twin.recon.modulus import far_correction
from twin.recon.options import (ALGORITHMS, AUTO, SUBPIXEL_SHIFT, Algorithm, LsqmlSteps,
                                Options, Result, Start)
from twin.recon.probes import orthogonalize_modes
from twin.recon.state import State, apply_start, to_result

__all__ = ["reconstruct", "minibatch_step", "multislice_step", "UPDATES", "State", "Options",
           "Result", "Start", "AUTO", "ALGORITHMS", "SUBPIXEL_SHIFT", "orthogonalize_modes"]


# ----------------------------------------------------------------------------- one batch


@dataclass
class Batch:
    """One minibatch's exit waves and their corrections.

    The beams of a batch fall into groups that share a rectangle of the object
    (:meth:`State.beam_groups`); one beam is one group of one beam.
    """

    idx: np.ndarray                 # (F,) frame indices
    objs: list                      # per group: a view of the object (updated in place)
    beams: list                     # per beam, in beam order: (group, operator, sel)
    waves: list                     # per beam: (psi, patch, probes) of operator.exit_waves
    chi: object                     # (F, B·M, n, n) exit-wave corrections Δψ of every beam
    chis: list                      # per beam: (F, M, n, n)
    cost: float
    num_o: list = field(default_factory=list)    # per group: Σ conj(P)·Δψ over the windows
    den_o: list = field(default_factory=list)    # per group: Σ |P|²
    num_ps: list = field(default_factory=list)   # per beam: Σ conj(O)·Δψ (None: no update)
    ows: list = field(default_factory=list)      # per beam: Σ_frames |O|² (n, n)
    upd_probe: bool = False


def _cat(arrays, xp):
    """The arrays joined along the mode axis (one: itself, not a copy)."""
    return arrays[0] if len(arrays) == 1 else xp.concatenate(arrays, axis=1)


def _corrections(st: State, idx: np.ndarray, opts: Options) -> Batch:
    """Exit waves of every beam of the batch, their far fields corrected against the frames
    (all beams and modes in one modulus constraint) and carried back to the exit."""
    xp = st.xp
    amp = st.amplitudes(idx)
    groups = st.beam_groups(idx)
    objs = [st.slices[0][view] for view, _, _ in groups]              # views: updated in place
    beams = sorted(((b, g, op, sel) for g, (_, members, sel) in enumerate(groups)
                    for b, op in members), key=lambda x: x[0])
    beams = [(g, op, sel) for _, g, op, sel in beams]
    waves = [op.exit_waves(objs[g], sel) for g, op, sel in beams]     # (psi, patch, probes)
    op0 = beams[0][1]
    chi = op0.far(_cat([w[0] for w in waves], xp), overwrite=True)
    cost = far_correction(st, chi, amp, opts)
    chi = op0.far_adj(chi, overwrite=True)                             # Δψ of every beam
    m = st.probe.shape[0]
    chis = [chi] if len(beams) == 1 else [xp.ascontiguousarray(chi[:, b * m:(b + 1) * m])
                                          for b in range(len(beams))]
    return Batch(idx, objs, beams, waves, chi, chis, cost)


def _gradient_positions(b: Batch, opts: Options):
    """(F, 2) position steps from every beam's exit-wave correction (before O changes): all
    beams of a frame move together (one stage), from the sum of their gradients."""
    num = den = 0
    for (g, op, sel), (_, _, pr), c in zip(b.beams, b.waves, b.chis):
        a, d = positions.position_dots(op, sel, b.objs[g], pr, c)
        num, den = num + a, den + d
    return positions.position_step(opts, num, den)


def _update_terms(st: State, b: Batch, it: int, opts: Options) -> None:
    """The object's numerator and preconditioner per group (every beam's terms summed), and
    each beam's probe numerator and Σ|O|² from its own windows."""
    xp = st.xp
    b.num_o, b.den_o = [None] * len(b.objs), [None] * len(b.objs)
    for (g, op, sel), (_, _, pr), c in zip(b.beams, b.waves, b.chis):
        n, d = op.object_update_terms(c, pr, sel)
        b.num_o[g], b.den_o[g] = (n, d) if b.num_o[g] is None else (b.num_o[g] + n,
                                                                     b.den_o[g] + d)
    b.upd_probe = it >= opts.probe_update_start
    for (_, op, sel), (_, patch, _), c in zip(b.beams, b.waves, b.chis):
        ow = xp.empty(patch.shape[1:], xp.float32)                     # Σ_frames |O_b|²
        b.num_ps.append(op.exit_adj_probe(c, patch, sel, weight=ow) if b.upd_probe else None)
        if not b.upd_probe:
            ow = (patch.real ** 2 + patch.imag ** 2).sum(axis=0)
        b.ows.append(ow)


# ----------------------------------------------------------------------------- update rules


def _pie(st: State, b: Batch, opts: Options, alpha: float) -> None:
    """ePIE/rPIE: conj(P)Δψ / ((1 − α)|P|² + α·max|P|²) for the object (max over the whole
    object), likewise for each beam's probe with |O|²."""
    mx = max(float(d.max()) for d in b.den_o)
    for o, n, d in zip(b.objs, b.num_o, b.den_o):
        d *= (1 - alpha)
        d += alpha * mx + 1e-12
        n /= d
        n *= opts.object_step
        o += n
    if b.upd_probe:
        st.probes = [op.probe + opts.probe_step * n / ((1 - alpha) * ow
                                                       + alpha * float(ow.max()) + 1e-12)
                     for (_, op, _), n, ow in zip(b.beams, b.num_ps, b.ows)]


def _steps_from_dots(aa, ac, bb, ab, bc, with_probe: bool):
    """Per-position LS steps (object, probe) from the inner products, clipped to [0, 2]."""
    if not with_probe:
        return np.clip(to_numpy(ac / (aa + 1e-12)), 0, 2), None
    det = aa * bb - ab * ab + 1e-12
    so = to_numpy((bb * ac - ab * bc) / det)
    sp = to_numpy((aa * bc - ab * ac) / det)
    return np.clip(so, 0, 2), np.clip(sp, 0, 2)


def _ls_steps_fused(probe, d_obj_patch, d_probe, patch, chi):
    """:func:`_ls_steps` on the CPU's fused kernel (the exit-wave directions never stored)."""
    dots = np.empty((len(chi), 5))
    dp = d_probe if d_probe is not None else np.zeros_like(probe)
    kernels.ls_dots(probe, d_obj_patch, np.asarray(dp, np.complex64), patch, chi, dots)
    return _steps_from_dots(*dots.T, with_probe=d_probe is not None)


def _ls_steps(a_exit, b_exit, chi, xp):
    """Least-squares step lengths of every position (B,), for object and probe directions:
    the minimiser of ‖χ − a·(P·ΔO) − b·(ΔP·O)‖² per position, clipped to [0, 2]."""
    def dot(x, y):
        """Re Σ conj(x)·y over the last three axes (modes, rows, columns): one value per frame.

        Parameters
        ----------
        x, y : ndarray (B, M, n, n) complex
            Exit-wave fields.

        Returns
        -------
        ndarray (B,)
            Real inner products.
        """
        return xp.real(xp.sum(xp.conj(x) * y, axis=(1, 2, 3)))

    aa, ac = dot(a_exit, a_exit), dot(a_exit, chi)
    if b_exit is None:
        return _steps_from_dots(aa, ac, None, None, None, with_probe=False)
    bb, ab, bc = dot(b_exit, b_exit), dot(a_exit, b_exit), dot(b_exit, chi)
    return _steps_from_dots(aa, ac, bb, ab, bc, with_probe=True)


def _batch_ls_steps(st: State, b: Batch, d_obj, d_probes):
    """LSQML's (object, probe) step of every frame of the batch, every beam's directions
    joined as modes (one beam with one mode: the CPU's fused kernel)."""
    xp = st.xp
    (g, op, sel), (_, patch, probes) = b.beams[0], b.waves[0]
    if len(b.beams) == 1 and op.fused and probes.shape[0] == 1:
        return _ls_steps_fused(probes[0], op.patches(d_obj[g], sel), d_probes[0], patch, b.chi)
    a_exit = _cat([w[2] * op.patches(d_obj[g], sel)[:, None]
                   for (g, op, sel), w in zip(b.beams, b.waves)], xp)      # P·ΔO
    b_exit = (_cat([op.frame_probes(sel, dp) * w[1][:, None]              # ΔP·O
                    for (_, op, sel), w, dp in zip(b.beams, b.waves, d_probes)], xp)
              if b.upd_probe else None)
    return _ls_steps(a_exit, b_exit, b.chi, xp)


def _lsqml(st: State, b: Batch, opts: Options) -> None:
    """LSQML: preconditioned directions, least-squares step lengths (their median, or each
    position's own, Odstrčil et al. 2018)."""
    xp = st.xp
    reg = opts.lsqml_regularization
    mx = max(float(d.max()) for d in b.den_o)                          # over the whole object
    pre_o = [1 / (d + reg * mx) for d in b.den_o]
    pre_ps = [1 / (ow + reg * float(ow.max())) for ow in b.ows]
    d_obj = [n * p for n, p in zip(b.num_o, pre_o)]
    d_probes = [n * p if b.upd_probe else None for n, p in zip(b.num_ps, pre_ps)]
    so, sp = _batch_ls_steps(st, b, d_obj, d_probes)
    if opts.lsqml_steps == LsqmlSteps.MEDIAN:
        for o, d in zip(b.objs, d_obj):
            o += (opts.object_step * float(np.median(so))) * d
        if b.upd_probe:
            s = opts.probe_step * float(np.median(sp))
            st.probes = [op.probe + s * dp for (_, op, _), dp in zip(b.beams, d_probes)]
        return
    w = xp.asarray(so, dtype=xp.float32)[:, None, None, None]
    upd = [0] * len(b.objs)
    for (g, op, sel), wv, c in zip(b.beams, b.waves, b.chis):
        upd[g] = upd[g] + op.exit_adj_object(w * c, wv[2], sel)
    for o, u, p in zip(b.objs, upd, pre_o):
        o += opts.object_step * u * p
    if b.upd_probe:
        wp = xp.asarray(sp, dtype=xp.float32)[:, None, None, None]
        st.probes = [op.probe + opts.probe_step * op.exit_adj_probe(wp * c, wv[1], sel) * pp
                     for (_, op, sel), wv, c, pp in zip(b.beams, b.waves, b.chis, pre_ps)]


#: The update rules of :func:`minibatch_step`, by algorithm. Multislice with one slice is the
#: 2D update with ePIE's step; with several slices the whole step is :func:`multislice_step`.
UPDATES: dict[Algorithm, Callable[[State, Batch, Options], None]] = {
    Algorithm.EPIE: lambda st, b, opts: _pie(st, b, opts, 1.0),
    Algorithm.RPIE: lambda st, b, opts: _pie(st, b, opts, opts.alpha),
    Algorithm.LSQML: _lsqml,
    Algorithm.MULTISLICE: lambda st, b, opts: _pie(st, b, opts, 1.0),
}


def minibatch_step(st: State, idx: np.ndarray, opts: Options, it: int) -> float:
    """One minibatch of frames ``idx`` at iteration ``it`` (0-based), for B ≥ 1 beams: exit
    waves, modulus constraint, gradient position steps, then the object and probe update of
    ``UPDATES[opts.algorithm]``; returns the batch's cost. With several beams the object
    update sums every beam's terms (numerator and preconditioner) and each beam's probe is
    updated from its own windows; each beam works on the sub-rectangle its windows cover
    where the beams' rectangles are disjoint (:meth:`State.beam_groups`).

    Parameters
    ----------
    st : State
        Updated in place (object slices, probes, positions).
    idx : numpy.ndarray of int (B,)
        Frame indices of the minibatch.
    opts : Options
        Resolved options.
    it : int
        Iteration (0-based): gates the probe update and the position gradient.

    Returns
    -------
    float
        The batch's cost Σ mask·(√Î − √I)² (not normalised).
    """
    b = _corrections(st, idx, opts)
    pos_step = _gradient_positions(b, opts) if positions.gradient_on(opts, it) else None
    _update_terms(st, b, it, opts)
    UPDATES[Algorithm(opts.algorithm)](st, b, opts)
    if pos_step is not None:
        st.set_positions(st.clip(st.pos[idx] + pos_step), idx)
    return b.cost


def multislice_step(st: State, idx: np.ndarray, opts: Options, it: int) -> float:
    """One minibatch of the multislice engine (one beam, L > 1 slices): the correction at the
    exit carried back through each slice; rPIE-type updates of each slice and the probe.

    Each slice takes 1/L of ``object_step`` and is clipped to |O_l| ≤ 1; the probe is updated
    from iteration ``probe_update_start`` on.

    Parameters
    ----------
    st : State
        Updated in place (slices, probe).
    idx : numpy.ndarray of int (B,)
        Frame indices of the minibatch.
    opts : Options
        Resolved options (``alpha``, ``object_step``, ``probe_step``, ``probe_update_start``).
    it : int
        Iteration (0-based).

    Returns
    -------
    float
        The batch's cost (not normalised).
    """
    xp = st.xp
    op = st.op
    L = st.slices.shape[0]
    patches = xp.stack([op.patches(st.slices[l], idx) for l in range(L)], axis=1)  # (B, L, n, n)
    ms = Multislice(patches[:, None], st.prop)                          # slices (B, 1, L, n, n)
    incident, wave = ms.forward_waves(op.frame_probes(idx))           # L × (B, M, n, n)
    chi = op.far(wave, overwrite=True)
    cost = far_correction(st, chi, st.amplitudes(idx), opts)
    grads, chi_in = ms.gradients(incident, op.far_adj(chi, overwrite=True))
    a = opts.alpha
    for l in range(L):
        num = op.patches_adj(grads[l].sum(axis=1), idx)
        w = incident[l]
        den = op.patches_adj((w.real ** 2 + w.imag ** 2).sum(axis=1), idx)
        # the L slices share one exit-wave error: each takes 1/L of the correction, else the
        # summed corrections overshoot and the iteration diverges
        norm = (1 - a) * den + a * float(den.max()) + 1e-12
        upd = st.slices[l] + (opts.object_step / L) * num / norm
        # a slice transmits at most what enters it: |O_l| ≤ 1 keeps the product of slices
        # (and the back-propagated corrections) bounded
        st.slices[l] = upd / xp.maximum(1.0, xp.abs(upd))
    if it >= opts.probe_update_start:
        pw = patches[:, 0].real ** 2 + patches[:, 0].imag ** 2
        num_p = op.frame_probes_adj(chi_in, idx)                     # gradient at the entrance
        den_p = pw.sum(axis=0)
        st.probe = st.probe + opts.probe_step * num_p / ((1 - a) * den_p
                                                         + a * float(den_p.max()) + 1e-12)
    return cost


# ----------------------------------------------------------------------------- iterations


def _step_for(st: State, opts: Options):
    """The minibatch step the options ask for."""
    if opts.algorithm == Algorithm.MULTISLICE and st.slices.shape[0] > 1:
        return multislice_step
    return minibatch_step


def _iteration(st: State, opts: Options, it: int, bar) -> float:
    """One pass over every frame; returns the normalised cost."""
    step = _step_for(st, opts)
    total = 0.0
    for idx in st.batches(opts):
        total += step(st, idx, opts, it)
        if bar is not None:
            bar.update(len(idx))
    positions.after_iteration(st, it, opts)
    if st.n_beams == 1:
        st.probe = orthogonalize_modes(st.probe, st.xp)
    else:
        st.probes = [orthogonalize_modes(o.probe, st.xp) for o in st.beam_ops]
    return total / max(st.norm, 1e-12)


class _Guard:
    """Divergence: a non-finite cost or probe, or a cost above ``divergence_factor`` × the
    best, restores the last good iteration's state."""

    def __init__(self, costs):
        self.best = min(costs) if costs else math.inf
        self.last_good = None

    def diverged(self, st: State, opts: Options, it: int, cost: float, kept: int):
        """None if iteration ``it`` is good (its state kept), else the message.

        An iteration diverged when its cost is not finite, a probe holds NaN or inf, or the cost
        exceeds ``divergence_factor`` × the best so far; the state of the last good iteration is
        then restored (when there is one) and a warning issued.

        Parameters
        ----------
        st : State
            The reconstruction state (restored in place on divergence).
        opts : Options
            ``divergence_factor``.
        it : int
            The iteration just done (0-based).
        cost : float
            Its normalised cost.
        kept : int
            Number of the iteration whose state is kept, for the message.

        Returns
        -------
        str or None
        """
        xp = st.xp
        finite = math.isfinite(cost) and all(bool(xp.all(xp.isfinite(o.probe)))
                                             for o in st.beam_ops)
        if not finite or cost > opts.divergence_factor * self.best:
            msg = (f"diverged at iteration {it + 1} (cost {cost:.4g}, best {self.best:.4g}); "
                   f"kept the state of iteration {kept}")
            warnings.warn(msg, stacklevel=3)
            if self.last_good is not None:
                st.slices, st.probes = self.last_good[0], self.last_good[1]
                st.set_positions(self.last_good[2])
            return msg
        self.best = min(self.best, cost)
        self.last_good = (st.slices.copy(), [o.probe.copy() for o in st.beam_ops],
                          st.pos.copy())
        return None


def _progress_bar(opts: Options, n_pos: int):
    from tqdm import tqdm

    return tqdm(total=opts.iterations * n_pos, desc=f"{opts.algorithm}", unit="frame",
                unit_scale=True, smoothing=0.05,
                bar_format="{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} "
                           "frame-it [{elapsed}<{remaining} ETA, {rate_fmt}{postfix}]")


def _begin(data: PtychoData, opts: Options, start: Start | None):
    """(state, costs so far): the state at ``start`` (a resumed run continues the batch
    order)."""
    if opts.automatic:
        raise ValueError("options left to automatic choice (algorithm/position correction "
                         "'auto' or modes 0): resolve them with twin.recon.auto.prepare "
                         "first, or call twin.recon.reconstruct")
    st = State(data, opts)
    start = Start() if start is None else start
    apply_start(st, start, opts)
    for _ in range(len(start.cost)):
        st.batches(opts)
    return st, list(start.cost)


def reconstruct(data: PtychoData, opts: Options = Options(), progress: bool = False,
                callback=None, start: Start | None = None, state_every: int = 0,
                on_state=None, chosen=()) -> Result:
    """Reconstruct object, probe (modes) and positions from ``data`` with resolved options.

    Parameters
    ----------
    data : PtychoData
        Frames in memory, or streamed from the file (``read_cxi(..., lazy=True)``: only one
        batch of frames is in memory at a time), with a starting probe (the illumination).
    opts : Options
        Engine settings with nothing left to "auto": :func:`twin.recon.auto.prepare` resolves
        them (and a starting probe) first; :func:`twin.recon.reconstruct` does both.
    progress : bool
        A progress bar over frames × iterations, with the rate, the ETA and the cost.
    callback : callable, optional
        ``callback(iteration, cost)`` after every iteration.
    start : Start, optional
        A starting object, probe, positions and earlier costs (a resumed run: its iterations
        are counted on top of ``len(start.cost)``, the batch order continues, and the result's
        cost starts with ``start.cost``).
    state_every, on_state : int, callable, optional
        ``on_state(result)`` with the state as a :class:`Result` after every ``state_every``-th
        iteration (counted with the resumed ones), except the last, whose state is the
        returned result (checkpoints, previews).
    chosen : sequence of str
        The automatic choices' reasons, copied into ``Result.chosen``.

    Returns
    -------
    Result
        Divergence (a non-finite cost or probe, or a cost above ``divergence_factor`` × the
        best) stops the iterations; the result is the state of the last good iteration and
        ``Result.stopped_early`` says so.
    """
    st, costs = _begin(data, opts, start)
    first, last = len(costs), len(costs) + opts.iterations
    guard, stopped = _Guard(costs), None
    bar = _progress_bar(opts, len(st.pos)) if progress else None
    t0 = time.perf_counter()
    for it in range(first, last):
        cost = _iteration(st, opts, it, bar)
        stopped = guard.diverged(st, opts, it, cost, len(costs))
        if stopped:
            break
        costs.append(cost)
        if bar is not None:
            bar.set_postfix_str(f"it {it + 1}/{last}, cost {cost:.4g}")
        if callback is not None:
            callback(it, cost)
        if on_state is not None and state_every > 0 and (it + 1) % state_every == 0 \
                and it + 1 < last:
            on_state(to_result(st, costs, time.perf_counter() - t0, None, list(chosen), first))
    if bar is not None:
        bar.close()
    return to_result(st, costs, time.perf_counter() - t0, stopped, list(chosen), first)
