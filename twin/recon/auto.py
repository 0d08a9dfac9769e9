"""The choices a reconstruction leaves to the data ("auto"), made before the engines run.

:func:`auto_options` picks the engine, the probe modes and position correction, and refines
the starting probe, from test reconstructions on a subset of the frames; :func:`model_probe`
makes a starting probe from the data alone where the file has none; :func:`prepare` does what
a given :class:`~twin.recon.options.Options` leaves open and returns data and options the
engines (:func:`twin.recon.engines.reconstruct`) take as they are. Never looks at
``data.truth``.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from dataclasses import dataclass

import numpy as np

from twin.core.errors import TwinInputError
from twin.io.datamodel import PtychoData
from twin.operators.propagation import Propagator, farfield_adj
from twin.recon import engines
from twin.recon.frames import statistics, upsampling_of
from twin.recon.options import AUTO, Algorithm, Options, PositionCorrection
from twin.recon.probes import ILLUMINATION

#: auto_options' rules (issue 11 §1), measured on realistic data (benchmarks/bench_recon.py
#: --defaults: object finer than the pixel, 3 incoherent modes, 3 px encoder noise, a probe
#: model 25 % off in defocus, 2·10⁴ photons/frame; 625 frames, 50 iterations, one run):
#: rPIE 1 mode 0.651, LSQML 1 mode 0.539, rPIE 3 modes + gradient positions 0.854, LSQML 3
#: modes + gradient 0.809 (PCC of the phase). rPIE is the engine.
AUTO_ENGINE = Algorithm.RPIE
AUTO_TEST_FRAMES = 256          # frames of the test reconstruction (the scan's centre)
AUTO_TEST_MODES = 4             # modes the test reconstruction is given
AUTO_MODE_POWER = 0.05          # a mode is kept if it carries ≥ 5 % of the power
AUTO_POSITION_RMS_PX = 0.5      # correction rms (pixels) above which positions are uncertain
#: The relative cost gain a propagated starting probe must bring over the given one (1 %).
DEFOCUS_MIN_GAIN = 0.01


@dataclass
class AutoChoice:
    """What :func:`auto_options` chose: the options, the refined starting probe (M, n, n)
    complex64 (or None: the file's) and one line of reasoning per choice."""

    options: Options
    illumination: np.ndarray | None
    reasons: list[str]
    beam_illumination: np.ndarray | None = None     # several beams: (B, M, n, n)


def _centre_subset(data: PtychoData, k: int) -> PtychoData:
    """The ``k`` frames nearest the scan's centre (a compact, fully overlapped patch)."""
    tr = np.asarray(data.translations_m)[:, :2]
    if len(tr) <= k:
        idx = np.arange(len(tr))
    else:
        d = np.linalg.norm(tr - np.median(tr, axis=0), axis=1)
        idx = np.sort(np.argpartition(d, k)[:k])
    return dataclasses.replace(data, frames=np.asarray(data.frames[idx], np.float32),
                               translations_m=np.asarray(data.translations_m)[idx])


def _scan_step(tr, k: int, dx: float) -> float:
    """The median distance of the first ``k`` positions to their nearest neighbour."""
    if len(tr) <= 1:
        return 4 * dx
    return float(np.median(np.sort(np.linalg.norm(tr[:, None] - tr[None, :k], axis=-1),
                                   axis=0)[1]))


def _defocus_search(sub: PtychoData, probe: np.ndarray, n: int, u: int, base: Options):
    """Refine the defocus of a probe model: propagate it by trial distances and keep the one
    whose object-only reconstruction (probe held fixed, 3 iterations on ``sub``) fits the
    frames best. The trial distances change the beam's diameter by 0, ±½, ±1, ±2 scan steps
    (the beam's divergence from the frames' bright-field radius)."""
    lam = sub.wavelength_m
    nd = sub.frames.shape[-1]
    dx = sub.object_pixel_m
    # divergence: the radius of the bright field (mean frame above 10 % of its peak), in q
    mean = statistics(sub).mean_frame
    q = np.fft.fftshift(np.fft.fftfreq(nd, dx * u))
    q2 = q[:, None] ** 2 + q[None, :] ** 2
    bright = mean > 0.1 * mean.max() if mean.max() > 0 else np.ones_like(mean, bool)
    q_max = float(np.sqrt(q2[bright].max())) if bright.any() else 1 / (4 * dx)
    step = _scan_step(np.asarray(sub.translations_m)[:, :2], 64, dx)
    unit = step / (2 * lam * max(q_max, 1e-30))        # Δz that widens the beam by one step
    best, best_cost, costs = 0.0, np.inf, {}
    for k in (0.0, -0.5, 0.5, -1.0, 1.0, -2.0, 2.0):
        dz = k * unit
        prop = Propagator((n, n), dx, dz, lam) if dz != 0 else None
        p = probe if dz == 0 else np.asarray(prop.fwd(probe), np.complex64)
        trial = dataclasses.replace(sub, illumination=p)
        if sub.beam_illumination is not None:           # several beams: each one's model
            beams = np.asarray(sub.beam_illumination, np.complex64)
            trial = dataclasses.replace(trial, beam_illumination=beams if dz == 0 else
                                        np.asarray(prop.fwd(beams), np.complex64))
        r = engines.reconstruct(trial, dataclasses.replace(
            base, algorithm="rpie", iterations=3, modes=probe.shape[0],
            position_correction="none", probe_update_start=10 ** 6, upsampling=u))
        c = r.cost[-1] if r.cost else np.inf
        costs[k] = c
        if c < best_cost:
            best, best_cost = dz, c
    # the given probe stays unless a propagated one fits clearly better: a gain within the
    # cost's noise (equal to four digits) is no reason to move it
    if not best_cost < costs[0.0] * (1 - DEFOCUS_MIN_GAIN):
        best = 0.0
    return best, costs


def _mean_pupil(data: PtychoData, n: int, u: int) -> np.ndarray:
    amp = np.sqrt(np.maximum(statistics(data).mean_frame, 0))
    return (np.repeat(np.repeat(amp, u, axis=0), u, axis=1) / u).astype(np.complex64)


def model_probe(data: PtychoData, n: int, u: int, defocus_m: float | None = None) -> np.ndarray:
    """A probe model (n, n) complex64 from the data alone: the mean diffraction amplitude is
    the illuminated pupil; the probe is its inverse transform after a defocus. Without
    ``defocus_m`` the defocus is chosen among candidates that make the beam 1–8 scan steps
    wide, by the lowest data cost after two rPIE iterations on a subset of the frames.

    The candidates are 0 and k·step/(2λq_max) for k = 1, 2, 4, 8 (q_max where the mean
    amplitude falls to 10 % of its peak); candidates whose beam would not fit in the window are
    skipped; the subset is the first 200 frames.

    Parameters
    ----------
    data : PtychoData
        Frames (in memory or streamed), positions, geometry.
    n : int
        Probe side, pixels (frames' side times ``u``).
    u : int
        Upsampling: each detector pixel's mean amplitude, divided by u, fills u×u pupil pixels.
    defocus_m : float, optional
        Propagation distance of the pupil's field (Fresnel, exp(−iπλΔz|q|²)), metres.

    Returns
    -------
    numpy.ndarray
        (n, n) complex64 probe (not scaled to the photons).
    """
    pupil = _mean_pupil(data, n, u)
    q = np.fft.fftshift(np.fft.fftfreq(n, data.object_pixel_m))
    qy, qx = np.meshgrid(q, q, indexing="ij")
    q2 = qx ** 2 + qy ** 2
    if defocus_m is None:
        defocus_m = _model_defocus(data, pupil, q2, n, u)
    return _defocused(pupil, data.wavelength_m, q2, defocus_m)


def _defocused(pupil: np.ndarray, lam: float, q2: np.ndarray, dz: float) -> np.ndarray:
    """(n, n) complex64 probe at defocus ``dz`` (metres): the centred ``pupil`` times the
    Fresnel phase exp(−iπλΔz|q|²) (``q2`` = |q|², 1/m², wavelength ``lam``), transformed
    back."""
    p = farfield_adj(pupil * np.exp(-1j * np.pi * lam * dz * q2).astype(np.complex64))
    return p.astype(np.complex64)


def _model_defocus(data: PtychoData, pupil: np.ndarray, q2: np.ndarray, n: int,
                   u: int) -> float:
    """:func:`model_probe`'s defocus (metres) without a given one: of 0 and k·step/(2λq_max),
    k = 1, 2, 4, 8, those whose beam fits the window, the one with the lowest data cost after
    two rPIE iterations on the first 200 frames."""
    lam = data.wavelength_m
    dx = data.object_pixel_m
    # the pupil's radius in frequency: where the mean amplitude falls below 10 % of its peak
    a = np.abs(pupil)
    q_max = float(np.sqrt(q2[a > 0.1 * a.max()].max())) if a.max() > 0 else 1 / (4 * dx)
    step = _scan_step(data.translations_m[:, :2], 50, dx)
    candidates = [0.0] + [k * step / (2 * lam * q_max) for k in (1, 2, 4, 8)]
    k = min(len(data.frames), 200)
    sub = PtychoData(np.asarray(data.frames[:k], np.float32), data.translations_m[:k],
                     data.distance_m, data.pixel_size_m, data.energy_kev, None, data.mask)
    best, best_cost = candidates[0], np.inf
    for dz in candidates:
        if n * dx < 1.5 * 2 * lam * q_max * dz:
            continue                       # the beam would not fit in the probe window
        sub.upsampling = u
        sub.illumination = _defocused(pupil, lam, q2, dz)[None]
        r = engines.reconstruct(sub, Options(algorithm="rpie", iterations=2, batch_size=32,
                                             upsampling=u))
        if r.cost and r.cost[-1] < best_cost:
            best, best_cost = dz, r.cost[-1]
    return best


def _with(data: PtychoData, **changes) -> PtychoData:
    """``data`` with ``changes``, keeping its cached frame statistics (same frames)."""
    out = dataclasses.replace(data, **changes)
    cached = getattr(data, "_twin_statistics", None)
    if cached is not None:
        object.__setattr__(out, "_twin_statistics", cached)
    return out


def _starting_probe(data: PtychoData, sub: PtychoData, n: int, u: int, quick: Options, say):
    """(probe (M, n, n), sub): the file's illumination after a defocus search (the subset's
    beams propagated alike), or a model from the mean diffraction amplitude."""
    if data.illumination is None:
        say("starting probe: no illumination in the file; a model from the mean diffraction "
            "amplitude with a defocus search")
        return model_probe(data, n, u)[None], sub
    nd = data.frames.shape[-1]
    p0 = np.asarray(data.illumination, np.complex64)
    if p0.ndim == 2:
        p0 = p0[None]
    if p0.ndim != 3 or p0.shape[-2:] != (n, n):
        raise TwinInputError(ILLUMINATION, p0.shape, f"must be (M, {n}, {n}) for {nd}-pixel "
                             f"frames at upsampling {u}")
    dz, costs = _defocus_search(sub, p0, n, u, quick)
    if dz != 0:
        prop = Propagator((n, n), data.object_pixel_m, dz, data.wavelength_m)
        p0 = np.asarray(prop.fwd(p0), np.complex64)
        if data.beam_illumination is not None:
            sub = dataclasses.replace(sub, beam_illumination=np.asarray(
                prop.fwd(np.asarray(data.beam_illumination, np.complex64)), np.complex64))
    best_cost = min(costs.values())
    gain = 1 - best_cost / costs[0.0] if costs[0.0] > 0 else 0.0
    if dz != 0:
        say(f"starting probe: the file's illumination propagated by {dz * 1e6:+.4g} µm "
            f"(defocus search: cost {best_cost:.6g} against {costs[0.0]:.6g} as given, "
            f"{100 * gain:.2g} % lower)")
    else:
        say(f"starting probe: the file's illumination as given (defocus search: cost "
            f"{costs[0.0]:.6g}; no trial distance lowers it by more than "
            f"{100 * DEFOCUS_MIN_GAIN:g} %, the best by {100 * max(gain, 0.0):.2g} %)")
    return p0, sub


def _choose_modes(test, file_modes: int, say) -> int:
    """The orthogonal modes of the test probe that carry ≥ AUTO_MODE_POWER of its power each
    (several beams: over every beam's modes of that rank), at least the file's."""
    probe = test.probe
    power = np.sum(np.abs(probe if test.beam_probes is None else test.beam_probes) ** 2,
                   axis=(-2, -1)).reshape(-1, probe.shape[0]).sum(axis=0)
    frac = power / max(float(power.sum()), 1e-30)
    modes = max(int(np.sum(frac >= AUTO_MODE_POWER)), file_modes, 1)
    say(f"probe modes: {modes} (test reconstruction's mode powers "
        f"{', '.join(f'{f:.1%}' for f in frac)}; kept those ≥ {AUTO_MODE_POWER:.0%})")
    return modes


def _choose_positions(test, sub: PtychoData, test_pc: str, say) -> PositionCorrection:
    """Gradient position correction where the test run moved the positions by more than
    AUTO_POSITION_RMS_PX rms (a common shift aside), else none."""
    if len(test.positions_m) > 1 and test_pc == PositionCorrection.GRADIENT:
        moved = (test.positions_m - np.asarray(sub.translations_m)[:, :2]) / test.pixel_size_m
        moved -= np.median(moved, axis=0)            # a common shift is not an error
        rms = float(np.sqrt(np.mean(np.sum(moved ** 2, axis=1))))
    else:
        rms = 0.0
    pc = PositionCorrection.GRADIENT if rms > AUTO_POSITION_RMS_PX else PositionCorrection.NONE
    say(f"position correction: {pc} (the test reconstruction moved the positions by "
        f"{rms:.2f} px rms; threshold {AUTO_POSITION_RMS_PX} px)")
    return pc


def _test_run(sub: PtychoData, p0: np.ndarray, base: Options, u: int, pc):
    """The test reconstruction: 12 rPIE iterations on ``sub`` from probe ``p0`` with
    AUTO_TEST_MODES modes (or the probe's, if more; or ``base``'s if set) and position
    correction ``pc`` from iteration 3."""
    modes = max(AUTO_TEST_MODES, p0.shape[0]) if base.modes == 0 else base.modes
    return engines.reconstruct(dataclasses.replace(sub, illumination=p0), dataclasses.replace(
        base, algorithm="rpie", iterations=12, modes=modes, position_correction=pc,
        position_correction_start=2, upsampling=u))


def _say(reasons: list, log, msg: str) -> None:
    """Record one line ``msg`` of the choices' reasons in ``reasons``; pass it to ``log``."""
    reasons.append(msg)
    if log is not None:
        log(msg)


def auto_options(data: PtychoData, base: Options = Options(**AUTO), log=None) -> AutoChoice:
    """Choose what ``base`` leaves open ("auto": the engine, the probe modes, position
    correction) from the data, and refine the starting probe.

    The rules (constants above; measurements in the module's ``AUTO_ENGINE`` note):

    1. **Engine**: rPIE (measured best on realistic data, ahead of LSQML).
    2. **Starting probe**: the file's illumination is a model from the optics, typically
       off in defocus: trial propagations of it (:func:`_defocus_search`) keep the one that
       fits the frames best with the probe held fixed. Without an illumination, the model
       from the mean diffraction amplitude (:func:`model_probe`).
    3. **Test reconstruction** on the ≤ 256 frames nearest the scan's centre (12 rPIE
       iterations, 4 modes, gradient positions from iteration 3): its probe starts the run.
    4. **Modes**: the test probe's orthogonal modes with ≥ 5 % of its power each (at least
       the file's illumination's).
    5. **Position correction**: gradient where the test run moved the positions by more
       than 0.5 pixel rms (fly-scan encoders, drift, jitter), else none.

    Parameters
    ----------
    data : PtychoData
        Frames in memory or streamed (only the test subset is read here).
    base : Options
        Options; fields set to "auto" (``modes=0``) are chosen, the rest are kept.
    log : callable, optional
        Called with one line per choice (also in ``AutoChoice.reasons``).

    Returns
    -------
    AutoChoice
    """
    reasons: list[str] = []
    say = functools.partial(_say, reasons, log)
    algorithm = base.algorithm
    if algorithm == Algorithm.AUTO:
        algorithm = AUTO_ENGINE
        say(f"engine: {algorithm} (measured best on realistic data: twin.recon.auto."
            "AUTO_ENGINE)")
    u = upsampling_of(data, base.upsampling)
    n = data.frames.shape[-1] * u
    quick = dataclasses.replace(base, algorithm="rpie", modes=1, position_correction="none",
                                upsampling=u)
    p0, sub = _starting_probe(data, _centre_subset(data, AUTO_TEST_FRAMES), n, u, quick, say)
    auto_pc = base.position_correction == PositionCorrection.AUTO
    test_pc = PositionCorrection.GRADIENT if auto_pc else base.position_correction
    test = _test_run(sub, p0, base, u, test_pc)
    modes = _choose_modes(test, p0.shape[0], say) if base.modes == 0 else base.modes
    pc = _choose_positions(test, sub, test_pc, say) if auto_pc else base.position_correction
    # the full run starts from the test run's probe, cut or padded to the chosen modes
    opts = dataclasses.replace(base, algorithm=algorithm, modes=modes, position_correction=pc,
                               upsampling=u)
    beams = (None if test.beam_probes is None
             else np.asarray(test.beam_probes[:, :modes], np.complex64))
    return AutoChoice(opts, np.asarray(test.probe[:modes], np.complex64), reasons, beams)


def prepare(data: PtychoData, opts: Options, log=None):
    """(data, options, reasons): what ``opts`` leaves to the data chosen
    (:func:`auto_options`, its starting probes put into the data), and a starting probe
    (:func:`model_probe`) where the data have none; the engines take the result as it is.

    Parameters
    ----------
    data : PtychoData
        Frames in memory or streamed; never changed (a copy carries the new probes).
    opts : Options
        Options, with "auto" fields or not.
    log : callable, optional
        Called with one line per automatic choice.

    Returns
    -------
    tuple of (PtychoData, Options, list of str)
    """
    chosen: list[str] = []
    if opts.automatic:
        t0 = time.perf_counter()
        choice = auto_options(data, opts, log=log)
        opts = choice.options
        if choice.illumination is not None:
            data = _with(data, illumination=choice.illumination)
        if choice.beam_illumination is not None:
            data = _with(data, beam_illumination=choice.beam_illumination)
        chosen = choice.reasons + [f"choices took {time.perf_counter() - t0:.1f} s"]
        if log is not None:
            log(chosen[-1])
    if data.illumination is None:
        u = upsampling_of(data, opts.upsampling)
        data = _with(data, illumination=model_probe(data, data.frames.shape[-1] * u, u)[None])
    return data, opts, chosen
