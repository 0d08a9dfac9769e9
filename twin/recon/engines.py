"""Ptychographic reconstruction: ePIE, rPIE, LSQML and multislice, with probe modes,
position correction and reciprocal-space upsampling — written once against ``xp``.

Every engine works on minibatches of scan positions at once (no per-frame Python loop) and runs
through the adjoint-tested operators of :mod:`twin.operators` (``FarFieldPtychography`` and
``Multislice``): the exit waves of a batch are formed, propagated to the detector, corrected
there, and the object and probe updates of all positions of the batch are the operators'
adjoints of the correction (summed into the object with window additions).

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
* **Position correction**: the gradient method (the cost's derivative with respect to each
  position, from the object's gradient under the probe, as in LSQML-type codes) and annealing
  (Maiden et al. 2012: trial shifts of shrinking size, the best kept).
* **Upsampling** (Batey et al. 2014): with binned frames the probe window holds u× more pixels
  than a frame; the model intensity is binned u×u before it is compared with the data, and the
  amplitude correction of each binned pixel applies to its u² sub-pixels.

Conventions: CONTRACTS §3 frames (DC at the centre) and translations; the object's centre
pixel is the translations' origin (CONTRACTS §4).
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from dataclasses import dataclass, field

import numpy as np

from twin.core import kernels
from twin.operators import ptychography
from twin.core.errors import TwinInputError
from twin.io.datamodel import PtychoData
from twin.operators.multislice import Multislice
from twin.operators.propagation import Propagator, farfield_adj
from twin.core.xp import get_xp, to_numpy

ALGORITHMS = ("epie", "rpie", "lsqml", "multislice")
# how the engines apply sub-pixel positions (twin.operators.ptychography.SHIFTS). The exact
# Fourier shift of the probe costs two FFTs per frame more (four instead of the two a frame
# needs); a cubic (Keys) read of the object at the fractional position costs a fused pass of
# the CPU kernels (twin.core.kernels). Measured on 529 frames of 64², 20 iterations, 2 cores,
# one run: rPIE fourier 1.77 s PCC 0.9505, cubic 1.08 s PCC 0.9485, bilinear 1.01 s PCC 0.9469;
# LSQML 2.34 s 0.9556 / 1.35 s 0.9520 / 1.33 s 0.9484. Cubic keeps the PCC within 0.004 of the
# exact shift at 1.6–1.7× the speed, and saves the same two FFTs per frame on a GPU.
SUBPIXEL_SHIFT = "cubic"


@dataclass(frozen=True)
class Options:
    algorithm: str = "rpie"
    iterations: int = 50
    modes: int = 1
    batch_size: int = 64
    alpha: float = 0.05                 # rPIE regularisation (α = 1: ePIE)
    object_step: float = 1.0
    probe_step: float = 1.0
    probe_update_start: int = 1         # first iteration (0-based) that updates the probe
    upsampling: int | None = None       # default: from the file (illumination/frame size)
    position_correction: str = "none"   # none | gradient | annealing
    position_correction_start: int = 5
    max_position_step_px: float = 0.5
    position_relaxation: float = 0.5    # fraction of each estimated shift applied
    position_smoothing_frames: int = 0  # fly scans: smooth corrections along the trajectory
    noise_model: str = "gaussian"       # LSQML: gaussian | poisson
    lsqml_steps: str = "median"         # LSQML: median of the LS steps | per_position
    lsqml_regularization: float = 1e-2  # LSQML: preconditioner floor, × the largest |P|²
    slices: int = 1
    slice_thickness_m: float = 0.0
    seed: int = 0
    backend: str = "auto"
    divergence_factor: float = 10.0
    subpixel_shift: str = SUBPIXEL_SHIFT  # fourier (exact) | cubic | bilinear (object reads)

    def __post_init__(self):
        checks = [("algorithm", self.algorithm in ALGORITHMS + ("auto",),
                   f"allowed: {ALGORITHMS + ('auto',)}"),
                  ("iterations", self.iterations >= 1, "at least 1"),
                  ("modes", 0 <= self.modes <= 64, "1 to 64 (0: auto)"),
                  ("batch_size", self.batch_size >= 1, "at least 1"),
                  ("alpha", 0 <= self.alpha <= 1, "0 to 1"),
                  ("position_correction", self.position_correction in
                   ("none", "gradient", "annealing", "auto"),
                   "none, gradient, annealing or auto"),
                  ("noise_model", self.noise_model in ("gaussian", "poisson"),
                   "gaussian or poisson"),
                  ("lsqml_steps", self.lsqml_steps in ("median", "per_position"),
                   "median or per_position"),
                  ("slices", self.slices >= 1, "at least 1"),
                  ("subpixel_shift", self.subpixel_shift in ptychography.SHIFTS,
                   f"one of {ptychography.SHIFTS}"),
                  ("upsampling", self.upsampling is None or self.upsampling >= 1, "≥ 1")]
        for name, ok, allowed in checks:
            if not ok:
                raise TwinInputError(f"--{name.replace('_', '-')}", getattr(self, name), allowed)


    @property
    def automatic(self) -> bool:
        """Whether any choice is left to :func:`auto_options`."""
        return (self.algorithm == "auto" or self.modes == 0
                or self.position_correction == "auto")


#: Options with every choice left to :func:`auto_options` (what ``twin reconstruct`` and
#: ``twin run`` use unless told otherwise).
AUTO = dict(algorithm="auto", modes=0, position_correction="auto")


@dataclass
class Result:
    object: np.ndarray             # (H, W) complex64 (multislice: the product of the slices)
    probe: np.ndarray              # (M, n, n) complex64
    positions_px: np.ndarray       # (N, 2) refined top-left (row, col)
    positions_m: np.ndarray        # (N, 2) refined x, y in metres (CONTRACTS §4)
    cost: list[float]
    pixel_size_m: float
    slices: np.ndarray | None = None
    stopped_early: str | None = None
    timings: dict = field(default_factory=dict)
    chosen: list[str] = field(default_factory=list)   # what auto_options chose and why
    beam_probes: np.ndarray | None = None  # several beams: (B, M, n, n); ``probe`` is beam 0's


@dataclass
class Start:
    """Where a reconstruction starts instead of the defaults (``--probe``, ``--object``,
    ``--resume``): each field None keeps the default. Arrays are at the reconstruction's
    object pixel (twin.recon.controls checks and resamples a file's)."""
    object: np.ndarray | None = None        # (H, W) complex, centred on the scan's centre
    probe: np.ndarray | None = None         # (M, n, n) complex; modes cut or added to M
    positions_m: np.ndarray | None = None   # (N, 2) x, y as Result.positions_m
    cost: list[float] = field(default_factory=list)  # earlier iterations' costs (resume)


# ----------------------------------------------------------------------------- helpers


def _bin(a, u: int):
    """Sum u×u blocks of the last two axes."""
    if u == 1:
        return a
    out = a[..., 0::u, 0::u].copy()
    for i in range(u):
        for j in range(u):
            if i or j:
                out += a[..., i::u, j::u]
    return out


def _unbin(a, u: int, xp):
    """Repeat each pixel u×u times (the adjoint of :func:`_bin` up to a factor)."""
    if u == 1:
        return a
    return xp.repeat(xp.repeat(a, u, axis=-2), u, axis=-1)


def orthogonalize_modes(probe, xp):
    """Orthogonal probe modes with the same incoherent sum, strongest first (an SVD)."""
    m = probe.shape[0]
    if m == 1:
        return probe
    a = probe.reshape(m, -1)
    u, s, vh = xp.linalg.svd(a, full_matrices=False)
    return (s[:, None] * vh).reshape(probe.shape).astype(probe.dtype)


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
    :class:`TwinInputError` naming the dataset."""
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


def _statistics(data: PtychoData) -> FrameStatistics:
    """:func:`frame_statistics` of ``data`` (cached), the mean frame and photons less the
    background (the probe's share of the counts)."""
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


_FILE = object()


def initial_probe(data: PtychoData, n: int, u: int, modes: int, xp,
                  illumination=_FILE, photons: float | None = None) -> np.ndarray:
    """The file's illumination (or ``illumination``, one beam's), or a model: the inverse
    transform of the mean diffraction amplitude (upsampled), with weaker further modes made by
    phase ramps, orthogonalised; scaled to ``photons`` (default: the frames' mean)."""
    mean_photons = _statistics(data).mean_photons if photons is None else photons
    ill = data.illumination if illumination is _FILE else illumination
    if ill is not None:
        p = np.asarray(ill, dtype=np.complex64)
        if p.ndim != 3 or p.shape[-2:] != (n, n):
            raise TwinInputError("/entry_1/instrument_1/source_1/illumination", p.shape,
                                 f"must be (M, {n}, {n}) for {data.frames.shape[-1]}-pixel "
                                 f"frames at upsampling {u}")
        if not np.all(np.isfinite(p)):
            raise TwinInputError("/entry_1/instrument_1/source_1/illumination", "NaN/inf",
                                 "the probe must be finite")
    else:
        p = model_probe(data, n, u)[None]
    p = fit_modes(p, modes, xp)
    p = p * np.sqrt(mean_photons / np.sum(np.abs(p) ** 2))
    return xp.asarray(p.astype(np.complex64))


def fit_modes(p, modes: int, xp=np) -> np.ndarray:
    """(M', n, n) probe modes cut to the first ``modes``, or extended with weaker modes made
    from the first by phase ramps (0.3 of its amplitude), orthogonalised."""
    p = np.asarray(p, np.complex64)[:modes]
    n = p.shape[-1]
    if p.shape[0] < modes:
        base = p[0]
        yy, xx = np.mgrid[:n, :n] / n
        extra = [base * np.exp(2j * np.pi * (k * xx + (k % 2) * yy)) * 0.3
                 for k in range(1, modes - p.shape[0] + 1)]
        p = np.concatenate([p, np.stack(extra)]).astype(np.complex64)
        p = to_numpy(orthogonalize_modes(xp.asarray(p), xp))
    return np.asarray(p, np.complex64)


def _mean_pupil(data: PtychoData, n: int, u: int) -> np.ndarray:
    amp = np.sqrt(np.maximum(_statistics(data).mean_frame, 0))
    return (np.repeat(np.repeat(amp, u, axis=0), u, axis=1) / u).astype(np.complex64)


def model_probe(data: PtychoData, n: int, u: int, defocus_m: float | None = None) -> np.ndarray:
    """A probe model from the data alone: the mean diffraction amplitude is the illuminated
    pupil; the probe is its inverse transform after a defocus. Without ``defocus_m`` the
    defocus is chosen among candidates that make the beam 1–8 scan steps wide, by the lowest
    data cost after two rPIE iterations on a subset of the frames."""
    pupil = _mean_pupil(data, n, u)
    lam = data.wavelength_m
    dx = data.object_pixel_m
    q = np.fft.fftshift(np.fft.fftfreq(n, dx))
    qy, qx = np.meshgrid(q, q, indexing="ij")
    q2 = qx ** 2 + qy ** 2

    def at(dz):
        p = farfield_adj(pupil * np.exp(-1j * np.pi * lam * dz * q2).astype(np.complex64))
        return p.astype(np.complex64)

    if defocus_m is not None:
        return at(defocus_m)
    # the pupil's radius in frequency: where the mean amplitude falls below 10 % of its peak
    a = np.abs(pupil)
    q_max = float(np.sqrt(q2[a > 0.1 * a.max()].max())) if a.max() > 0 else 1 / (4 * dx)
    tr = data.translations_m[:, :2]
    step = float(np.median(np.sort(np.linalg.norm(tr[:, None] - tr[None, :50], axis=-1),
                                   axis=0)[1])) if len(tr) > 1 else 4 * dx
    candidates = [0.0] + [k * step / (2 * lam * q_max) for k in (1, 2, 4, 8)]
    sub = PtychoData(np.asarray(data.frames[:min(len(data.frames), 200)], np.float32),
                     data.translations_m[:min(len(data.frames), 200)], data.distance_m,
                     data.pixel_size_m, data.energy_kev, None, data.mask)
    best, best_cost = candidates[0], np.inf
    for dz in candidates:
        if n * dx < 1.5 * 2 * lam * q_max * dz:
            continue                       # the beam would not fit in the probe window
        sub.upsampling = u
        sub.illumination = at(dz)[None]
        r = reconstruct(sub, Options(algorithm="rpie", iterations=2, batch_size=32,
                                     upsampling=u))
        if r.cost and r.cost[-1] < best_cost:
            best, best_cost = dz, r.cost[-1]
    return at(best)


# ----------------------------------------------------------------------------- auto

#: auto_options' rules (issue 11 §1), measured on realistic data (benchmarks/bench_recon.py
#: --defaults: object finer than the pixel, 3 incoherent modes, 3 px encoder noise, a probe
#: model 25 % off in defocus, 2·10⁴ photons/frame; 625 frames, 50 iterations, one run):
#: rPIE 1 mode 0.651, LSQML 1 mode 0.539, rPIE 3 modes + gradient positions 0.854, LSQML 3
#: modes + gradient 0.809 (PCC of the phase). rPIE is the engine.
AUTO_ENGINE = "rpie"
AUTO_TEST_FRAMES = 256          # frames of the test reconstruction (the scan's centre)
AUTO_TEST_MODES = 4             # modes the test reconstruction is given
AUTO_MODE_POWER = 0.05          # a mode is kept if it carries ≥ 5 % of the power
AUTO_POSITION_RMS_PX = 0.5      # correction rms (pixels) above which positions are uncertain


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


#: The relative cost gain a propagated starting probe must bring over the given one (1 %).
DEFOCUS_MIN_GAIN = 0.01


def _defocus_search(sub: PtychoData, probe: np.ndarray, n: int, u: int, base: Options):
    """Refine the defocus of a probe model: propagate it by trial distances and keep the one
    whose object-only reconstruction (probe held fixed, 3 iterations on ``sub``) fits the
    frames best. The trial distances change the beam's diameter by 0, ±½, ±1, ±2 scan steps
    (the beam's divergence from the frames' bright-field radius)."""
    lam = sub.wavelength_m
    nd = sub.frames.shape[-1]
    dx = sub.object_pixel_m
    # divergence: the radius of the bright field (mean frame above 10 % of its peak), in q
    mean = _statistics(sub).mean_frame
    q = np.fft.fftshift(np.fft.fftfreq(nd, dx * u))
    q2 = q[:, None] ** 2 + q[None, :] ** 2
    bright = mean > 0.1 * mean.max() if mean.max() > 0 else np.ones_like(mean, bool)
    q_max = float(np.sqrt(q2[bright].max())) if bright.any() else 1 / (4 * dx)
    tr = np.asarray(sub.translations_m)[:, :2]
    step = (float(np.median(np.sort(np.linalg.norm(tr[:, None] - tr[None, :64], axis=-1),
                                    axis=0)[1])) if len(tr) > 1 else 4 * dx)
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
        r = reconstruct(trial, dataclasses.replace(
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


def auto_options(data: PtychoData, base: Options = Options(**AUTO), log=None) -> AutoChoice:
    """Choose what ``base`` leaves open ("auto": the engine, the probe modes, position
    correction) from the data, and refine the starting probe. Never looks at
    ``data.truth``.

    The rules (constants above; measurements in the module's ``AUTO_ENGINE`` note):

    1. **Engine**: rPIE (measured best on realistic data, ahead of LSQML).
    2. **Starting probe**: the file's illumination is a model from the optics, typically
       off in defocus: trial propagations of it (:func:`_defocus_search`) keep the one that
       fits the frames best with the probe held fixed. Without an illumination, the model
       from the mean diffraction amplitude (:func:`model_probe`).
    3. **Test reconstruction** on the ≤ 256 frames nearest the scan's centre: 12 rPIE
       iterations with 4 modes (or the modes the file's illumination has, if more) and
       gradient position correction from iteration 3. Its refined probe is the full run's
       start.
    4. **Modes**: the number of orthogonal modes of the test probe that carry ≥ 5 % of its
       power each (an incoherent illumination spreads its power over several modes; a
       coherent one keeps it in the first), at least the file's illumination's.
    5. **Position correction**: gradient when the test run moved the positions by more than
       0.5 pixel rms (positions uncertain: fly-scan encoders, drift, jitter), else none.

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

    def say(msg):
        reasons.append(msg)
        if log is not None:
            log(msg)

    algorithm = base.algorithm
    if algorithm == "auto":
        algorithm = AUTO_ENGINE
        say(f"engine: {algorithm} (measured best on realistic data: twin.recon.engines."
            "AUTO_ENGINE)")
    nd = data.frames.shape[-1]
    u = base.upsampling
    if u is None:
        ill = data.illumination
        u = ill.shape[-1] // nd if ill is not None and ill.shape[-1] % nd == 0 else \
            data.upsampling
    n = nd * u
    sub = _centre_subset(data, AUTO_TEST_FRAMES)
    quick = dataclasses.replace(base, algorithm="rpie", modes=1, position_correction="none",
                                upsampling=u, backend=base.backend)
    if data.illumination is not None:
        p0 = np.asarray(data.illumination, np.complex64)
        if p0.ndim == 2:
            p0 = p0[None]
        if p0.ndim != 3 or p0.shape[-2:] != (n, n):
            raise TwinInputError("/entry_1/instrument_1/source_1/illumination", p0.shape,
                                 f"must be (M, {n}, {n}) for {nd}-pixel frames at "
                                 f"upsampling {u}")
        dz, costs = _defocus_search(sub, p0, n, u, quick)
        dx = data.object_pixel_m
        if dz != 0:
            prop = Propagator((n, n), dx, dz, data.wavelength_m)
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
    else:
        p0 = model_probe(data, n, u)[None]
        say("starting probe: no illumination in the file; a model from the mean diffraction "
            "amplitude with a defocus search")
    file_modes = p0.shape[0]
    test_modes = max(AUTO_TEST_MODES, file_modes) if base.modes == 0 else base.modes
    test_pc = "gradient" if base.position_correction == "auto" else base.position_correction
    test = reconstruct(dataclasses.replace(sub, illumination=p0), dataclasses.replace(
        base, algorithm="rpie", iterations=12, modes=test_modes, position_correction=test_pc,
        position_correction_start=2, upsampling=u))
    probe = test.probe
    # each mode's power (several beams: over every beam's modes of that rank)
    power = np.sum(np.abs(probe if test.beam_probes is None else test.beam_probes) ** 2,
                   axis=(-2, -1)).reshape(-1, probe.shape[0]).sum(axis=0)
    frac = power / max(float(power.sum()), 1e-30)
    modes = base.modes
    if modes == 0:
        modes = max(int(np.sum(frac >= AUTO_MODE_POWER)), file_modes, 1)
        say(f"probe modes: {modes} (test reconstruction's mode powers "
            f"{', '.join(f'{f:.1%}' for f in frac)}; kept those ≥ {AUTO_MODE_POWER:.0%})")
    pc = base.position_correction
    if pc == "auto":
        if len(test.positions_m) > 1 and test_pc == "gradient":
            moved = (test.positions_m - np.asarray(sub.translations_m)[:, :2]) \
                / test.pixel_size_m
            moved -= np.median(moved, axis=0)            # a common shift is not an error
            rms = float(np.sqrt(np.mean(np.sum(moved ** 2, axis=1))))
        else:
            rms = 0.0
        pc = "gradient" if rms > AUTO_POSITION_RMS_PX else "none"
        say(f"position correction: {pc} (the test reconstruction moved the positions by "
            f"{rms:.2f} px rms; threshold {AUTO_POSITION_RMS_PX} px)")
    # the full run starts from the test run's probe, cut or padded to the chosen modes
    start_probe = probe[:modes]
    opts = dataclasses.replace(base, algorithm=algorithm, modes=modes, position_correction=pc,
                               upsampling=u)
    beams = (None if test.beam_probes is None
             else np.asarray(test.beam_probes[:, :modes], np.complex64))
    return AutoChoice(opts, np.asarray(start_probe, np.complex64), reasons, beams)


# ----------------------------------------------------------------------------- engine


def _amplitudes(frames: np.ndarray) -> np.ndarray:
    """√I of (B, n, n) frames, moved from DC-at-centre to plain FFT order, float32."""
    return np.fft.ifftshift(np.sqrt(np.maximum(np.asarray(frames, np.float32), 0)),
                            axes=(-2, -1)).astype(np.float32, copy=False)


class _State:
    def __init__(self, data: PtychoData, opts: Options):
        xp = get_xp(opts.backend)
        self.xp = xp
        # frames held in memory (an array) or streamed from the file (a FrameStack): then only
        # the batch being worked on is in memory
        self.streamed = not isinstance(data.frames, np.ndarray)
        frames = data.frames if self.streamed else np.asarray(data.frames, dtype=np.float32)
        if len(frames.shape) != 3 or frames.shape[1] != frames.shape[2]:
            raise TwinInputError("/entry_1/data_1/data", frames.shape,
                                 "must be square frames (N, n, n)")
        if len(frames) != len(data.translations_m):
            raise TwinInputError("/entry_1/data_1/translation", len(data.translations_m),
                                 f"must have one row per frame ({len(frames)} frames)")
        if not np.all(np.isfinite(np.asarray(data.translations_m)[:, :2])):
            raise TwinInputError("/entry_1/data_1/translation", "NaN/inf",
                                 "positions must be finite")
        nd = frames.shape[-1]
        u = opts.upsampling
        if u is None:
            if data.illumination is not None and data.illumination.shape[-1] % nd == 0:
                u = data.illumination.shape[-1] // nd
            else:
                u = data.upsampling
        self.u = u
        self.n = nd * u
        self.dx = data.object_pixel_m
        mask = data.mask if data.mask is not None else np.ones((nd, nd), np.uint8)
        if mask.shape != (nd, nd):
            raise TwinInputError("/entry_1/instrument_1/detector_1/mask", mask.shape,
                                 f"must match the frames ({nd}, {nd})")
        # The operator runs with the plain (unshifted) DFT: the centred DFT differs from it by a
        # circular shift of the output and a phase ramp, neither of which a modulus constraint
        # sees. Frames and mask are moved to that order once here; with upsampling the binned
        # grid is shifted by its own half size, which maps each binned pixel onto the u×u block
        # of the fine grid it covers.
        self.frames = frames if self.streamed else None
        self.amp = (None if self.streamed else
                    xp.asarray(_amplitudes(frames)))
        m = np.fft.ifftshift(mask.astype(np.float32))
        self.mask = xp.asarray(m)
        self.all_valid = bool(np.all(m == 1))
        self.mask_kernel = (np.ones((1, 1), np.float32) if self.all_valid
                            else np.ascontiguousarray(m, np.float32))
        self.norm = _statistics(data).masked_total
        # a background b (counts per detector pixel, scalar or (nd, nd)): the model intensity
        # is Σ_m |Ψ_m|² + b
        bg = getattr(data, "background", None)
        self.bg = None
        if bg is not None:
            b = np.broadcast_to(np.asarray(bg, np.float32), (nd, nd))
            self.bg = xp.asarray(np.fft.ifftshift(b).astype(np.float32))
        tr = data.translations_m
        # several beams share every frame (multibeam): beam b lights the object at the
        # frame's position plus its offset, (row, col) pixels
        self.n_beams = getattr(data, "n_beams", 1)
        self.beam_px = np.zeros((1, 2))
        if self.n_beams > 1:
            offs = np.asarray(data.beam_offsets_m, float)
            self.beam_px = np.stack([offs[:, 1], offs[:, 0]], axis=1) / self.dx
            if opts.algorithm == "multislice" and opts.slices > 1:
                raise TwinInputError("--algorithm", "multislice",
                                     "one beam only (the file has several beams)")
            if opts.position_correction == "annealing":
                raise TwinInputError("--position-correction", "annealing",
                                     "none or gradient with several beams")
        if self.n_beams == 1:                 # a square object around the translations
            reach = np.max(np.abs(tr[:, :2])) / self.dx if len(tr) else 0
            side = 2 * int(math.ceil(reach)) + self.n + 8
            self.shape = (side, side)
        else:
            # several beams, side by side (along y): per axis, or the beams' spread along one
            # axis would pad the other too (9 beams' patch: 14× the area)
            t_rc = np.abs(np.asarray(tr)[:, 1::-1]).max(axis=0) / self.dx if len(tr) else 0
            reach = t_rc + np.abs(self.beam_px).max(axis=0)
            self.shape = tuple(int(2 * math.ceil(r) + self.n + 8) for r in reach)
        self.pos = _clip_positions(self, ptychography.positions_from_translations(
            tr, self.dx, self.shape, (self.n, self.n)))
        self.pos0 = self.pos.copy()
        # the one forward model (twin.operators.ptychography), batched by index arrays; the
        # sub-pixel positions as Options.subpixel_shift says (SUBPIXEL_SHIFT above). Several
        # beams: one operator per beam, at the frames' positions plus the beam's offset, each
        # beam with its own probe modes, sharing the frame's photons
        if self.n_beams == 1:
            probes = [initial_probe(data, self.n, u, opts.modes, xp)]
        else:
            share = _statistics(data).mean_photons / self.n_beams
            if data.beam_illumination is None:
                warnings.warn(
                    f"the data give {self.n_beams} beam offsets but no per-beam illumination "
                    "(/entry_1/instrument_1/source_1/beam_illumination): every beam starts from "
                    "the same probe, which the reconstruction separates poorly; give each "
                    "beam's model (its coded aperture)", stacklevel=3)
                one = initial_probe(data, self.n, u, opts.modes, xp, photons=share)
                probes = [one.copy() for _ in range(self.n_beams)]
            else:
                probes = [initial_probe(data, self.n, u, opts.modes, xp, illumination=ill,
                                        photons=share) for ill in data.beam_illumination]
        self.beam_ops = [ptychography.FarFieldPtychography(
            pb, self.pos + d if self.n_beams > 1 else self.pos, self.shape,
            shift=opts.subpixel_shift, centred=False) for pb, d in zip(probes, self.beam_px)]
        self.op = self.beam_ops[0]
        L = opts.slices if opts.algorithm == "multislice" else 1
        self.slices = xp.ones((L,) + self.shape, dtype=xp.complex64)
        self.prop = (Propagator((self.n, self.n), self.dx, opts.slice_thickness_m,
                                data.wavelength_m, xp=xp) if L > 1 else None)
        self.rng = np.random.default_rng(opts.seed)

    def amplitudes(self, idx):
        """(B, n, n) measured amplitudes √I of the frames ``idx``, in the operator's FFT
        order (read from the file when streaming)."""
        if self.amp is not None:
            return self.amp[idx]
        return self.xp.asarray(_amplitudes(self.frames[np.asarray(idx)]))

    def batches(self, opts: Options):
        """The minibatches of one iteration. In memory: a random permutation cut into
        ``batch_size`` pieces. Streamed: blocks of ``batch_size`` consecutive frames (one
        contiguous read each, aligned to the file's chunks for the default size) in random
        order — consecutive frames of a raster or fly scan also cover a compact region, so each
        batch updates a small part of the object."""
        n_pos, b = len(self.pos), opts.batch_size
        if not self.streamed:
            order = self.rng.permutation(n_pos)
            return [order[a:a + b] for a in range(0, n_pos, b)]
        starts = self.rng.permutation(np.arange(0, n_pos, b))
        return [np.arange(a, min(a + b, n_pos)) for a in starts]

    def local(self, idx):
        """(operator, view, sel) for a batch: an operator over the sub-rectangle of the object
        that the batch's windows cover (4-pixel margin), that rectangle as a view of the
        object, and the batch's indices into the local operator. Every per-batch object-sized
        pass (adjoints, preconditioners, updates) then costs the batch's area, not the whole
        object's. Falls back to the whole object when the batch covers most of it."""
        H, W = self.shape
        p = self.pos[idx]
        r0, r1, c0, c1 = self._rect(p)
        if (r1 - r0) * (c1 - c0) > 0.5 * H * W:
            return self.op, (slice(None), slice(None)), idx
        op = ptychography.FarFieldPtychography(self.op.probe, p - (r0, c0), (r1 - r0, c1 - c0),
                                               shift=self.op.shift, centred=False)
        return op, (slice(r0, r1), slice(c0, c1)), np.arange(len(idx))

    def _rect(self, p):
        """(r0, r1, c0, c1): the object rows and columns that windows at ``p`` cover, with a
        4-pixel margin, inside the object."""
        r0, c0 = np.maximum(np.floor(p.min(axis=0)).astype(int) - 4, 0)
        r1, c1 = np.minimum(np.floor(p.max(axis=0)).astype(int) + self.n + 5, self.shape)
        return r0, r1, c0, c1

    def beam_groups(self, idx):
        """Several beams: [(view, [(beam, operator), …], sel)] for a batch. Where the beams'
        sub-rectangles (as :meth:`local`'s, one per beam) are disjoint and small, one group per
        beam on its own rectangle: no two groups write the same object pixel, so the groups'
        updates are the whole-object update (test). Else one group of every beam on the whole
        object."""
        H, W = self.shape
        rects = [self._rect(self.pos[idx] + d) for d in self.beam_px]
        area = sum((r1 - r0) * (c1 - c0) for r0, r1, c0, c1 in rects)
        disjoint = all(a[1] <= b[0] or b[1] <= a[0] or a[3] <= b[2] or b[3] <= a[2]
                       for i, a in enumerate(rects) for b in rects[i + 1:])
        if not disjoint or area > 0.5 * H * W:
            return [((slice(None), slice(None)), list(enumerate(self.beam_ops)), idx)]
        sel = np.arange(len(idx))
        return [((slice(r0, r1), slice(c0, c1)),
                 [(b, ptychography.FarFieldPtychography(
                     self.beam_ops[b].probe, self.pos[idx] + self.beam_px[b] - (r0, c0),
                     (r1 - r0, c1 - c0), shift=self.op.shift, centred=False))], sel)
                for b, (r0, r1, c0, c1) in enumerate(rects)]

    @property
    def probe(self):
        """Beam 0's probe modes (M, n, n): the only beam's, with one beam."""
        return self.op.probe

    @probe.setter
    def probe(self, value):
        self.op.probe = value

    @property
    def probes(self):
        """Every beam's probe modes (B, M, n, n)."""
        return self.xp.stack([o.probe for o in self.beam_ops])

    @probes.setter
    def probes(self, value):
        for o, v in zip(self.beam_ops, value):
            o.probe = v

    def set_positions(self, pos, idx=None):
        if idx is None:
            self.pos = pos
        else:
            self.pos[idx] = pos
        if self.n_beams == 1:
            self.op.set_positions(self.pos)
        else:
            for o, d in zip(self.beam_ops, self.beam_px):
                o.set_positions(self.pos + d)

    @property
    def object(self):
        o = self.slices[0]
        for s in self.slices[1:]:
            o = o * s
        return o


def _far_correction(st: _State, far, amp_meas, opts: Options):
    """Turn far-field waves ``far`` (B, M, n, n) into the far-field correction ΔΨ in place
    (Ψ' − Ψ for the modulus constraint; the Poisson gradient for LSQML) and return the batch's
    cost Σ mask·(√Î − √I)²."""
    xp = st.xp
    poisson = opts.algorithm == "lsqml" and opts.noise_model == "poisson"
    if st.bg is not None:
        return _far_correction_bg(st, far, amp_meas, poisson)
    if (xp is np and kernels.AVAILABLE and far.dtype == np.complex64
            and far.flags.c_contiguous):
        cost = np.empty(len(far))                                       # fused CPU pass
        kernels.modulus_update(far.view(np.float32), np.asarray(amp_meas, np.float32),
                               st.mask_kernel, poisson, st.u, cost)
        return float(cost.sum())
    sq = xp.square(far.view(xp.float32))
    model = (sq[..., 0::2] + sq[..., 1::2]).sum(axis=1)               # (B, n, n) Σ_m |Ψ|²
    model = _bin(model, st.u)
    model_amp = xp.sqrt(model)
    diff = model_amp - amp_meas
    if not st.all_valid:
        diff *= st.mask
    cost = float(xp.vdot(diff.ravel(), diff.ravel()))
    if poisson:
        ratio = (amp_meas * amp_meas + 1e-3) / (model + 1e-3)          # I/Î: Poisson ML gradient
    else:
        model_amp += 1e-6
        ratio = xp.divide(amp_meas, model_amp, out=model_amp)          # √I/√Î: Gaussian / PIE
    ratio -= 1                                                          # ΔΨ = Ψ·(ratio − 1)
    if not st.all_valid:
        ratio *= st.mask                                                # unmeasured: no change
    far *= _unbin(ratio, st.u, xp)[:, None]
    return cost


def _far_correction_bg(st: _State, far, amp_meas, poisson: bool):
    """:func:`_far_correction` with a background b: the model intensity Î = Σ_m |Ψ_m|² + b.
    Cost Σ mask·(√Î − √I)²; the Gaussian/PIE update projects onto Σ|Ψ'|² = max(I − b, 0)
    (Ψ' = Ψ·√(max(I − b, 0) / Σ|Ψ|²)); Poisson: ΔΨ = Ψ·(I/Î − 1)."""
    xp = st.xp
    sq = xp.square(far.view(xp.float32))
    model = _bin((sq[..., 0::2] + sq[..., 1::2]).sum(axis=1), st.u)   # (B, n, n) Σ_m |Ψ|²
    total = model + st.bg
    meas = amp_meas * amp_meas
    diff = (xp.sqrt(total) - amp_meas) * st.mask
    cost = float(xp.vdot(diff.ravel(), diff.ravel()))
    if poisson:
        ratio = (meas + 1e-3) / (total + 1e-3)
    else:
        ratio = xp.sqrt(xp.maximum(meas - st.bg, 0) / (model + 1e-6))
    ratio -= 1
    ratio *= st.mask                                                    # unmeasured: no change
    far *= _unbin(ratio.astype(xp.float32), st.u, xp)[:, None]
    return cost


def _apply_start(st: _State, start: Start, opts: Options) -> None:
    """Put ``start``'s object (centred), probe (its modes cut or extended to the options')
    and positions into the state."""
    xp = st.xp
    if start.object is not None:
        o = np.ones(st.shape, np.complex64)
        src = np.asarray(start.object, np.complex64)
        rows = [(max(0, a // 2 - b // 2), max(0, b // 2 - a // 2), min(a, b))
                for a, b in zip(st.shape, src.shape)]    # (dst0, src0, length) per axis
        (d0, s0, h), (d1, s1, w) = rows
        o[d0:d0 + h, d1:d1 + w] = src[s0:s0 + h, s1:s1 + w]
        st.slices[0] = xp.asarray(o)
    if start.probe is not None:
        if st.n_beams > 1:
            raise TwinInputError("--probe/--resume", f"{st.n_beams} beams",
                                 "one beam (a starting probe per beam is not read yet)")
        m = opts.modes if opts.modes >= 1 else len(start.probe)
        st.probe = xp.asarray(fit_modes(start.probe, m, xp))
    if start.positions_m is not None:
        pos = np.asarray(start.positions_m, float)
        if pos.shape != (len(st.pos), 2):
            raise TwinInputError("--resume: /positions_m", pos.shape,
                                 f"one x, y row per frame ({len(st.pos)}, 2)")
        st.set_positions(_clip_positions(st, ptychography.positions_from_translations(
            pos, st.dx, st.shape, (st.n, st.n))))


def _result(st: _State, costs, elapsed: float, stopped, chosen, first: int = 0) -> Result:
    """The state as a :class:`Result` (``first``: iterations before this run's)."""
    tr = ptychography.translations_from_positions(st.pos, st.dx, st.shape, (st.n, st.n))
    slices = to_numpy(st.slices) if st.slices.shape[0] > 1 else None
    return Result(to_numpy(st.object).astype(np.complex64), to_numpy(st.probe),
                  st.pos.copy(), tr[:, :2], list(costs), st.dx, slices, stopped,
                  {"seconds": elapsed, "frame_iterations_per_s":
                   len(st.pos) * max(len(costs) - first, 1) / max(elapsed, 1e-9)}, chosen,
                  to_numpy(st.probes) if st.n_beams > 1 else None)


def _batch_2d(st: _State, idx: np.ndarray, opts: Options, it: int):
    xp = st.xp
    gidx = idx
    amp = st.amplitudes(gidx)
    op, view, idx = st.local(gidx)                                    # idx: into op now
    obj = st.slices[0][view]                                          # a view: updated in place
    psi, patch, probes = op.exit_waves(obj, idx)                      # (B, M, n, n)
    chi = op.far(psi, overwrite=True)
    cost = _far_correction(st, chi, amp, opts)
    chi = op.far_adj(chi, overwrite=True)                             # exit-wave correction Δψ
    pos_step = None
    if opts.position_correction == "gradient" and it >= opts.position_correction_start:
        pos_step = _position_step(op, idx, obj, probes, chi, opts)    # before O changes

    num_o, den_o = op.object_update_terms(chi, probes, idx)
    upd_probe = it >= opts.probe_update_start
    ow = xp.empty(patch.shape[1:], xp.float32)                         # (n, n) Σ_b |O_b|²
    num_p = op.exit_adj_probe(chi, patch, idx, weight=ow) if upd_probe else None
    if not upd_probe:
        ow = (patch.real ** 2 + patch.imag ** 2).sum(axis=0)
    if opts.algorithm == "lsqml":
        reg = opts.lsqml_regularization
        pre_o = 1 / (den_o + reg * float(den_o.max()))
        pre_p = 1 / (ow + reg * float(ow.max()))
        d_obj = num_o * pre_o
        d_probe = num_p * pre_p if upd_probe else None
        if op.fused and probes.shape[0] == 1:
            so, sp = _ls_steps_fused(probes[0], op.patches(d_obj, idx), d_probe, patch, chi)
        else:
            a_exit = probes * op.patches(d_obj, idx)[:, None]           # P·ΔO
            b_exit = op.frame_probes(idx, d_probe) * patch[:, None] if upd_probe else None
            so, sp = _ls_steps(a_exit, b_exit, chi, xp)
        if opts.lsqml_steps == "median":
            obj += (opts.object_step * float(np.median(so))) * d_obj
            if upd_probe:
                st.probe = st.probe + (opts.probe_step * float(np.median(sp))) * d_probe
        else:
            # each position's update with its own step (Odstrčil et al. 2018)
            w = xp.asarray(so, dtype=xp.float32)[:, None, None, None]
            obj += opts.object_step * op.exit_adj_object(w * chi, probes, idx) * pre_o
            if upd_probe:
                wp = xp.asarray(sp, dtype=xp.float32)[:, None, None, None]
                st.probe = st.probe + opts.probe_step * op.exit_adj_probe(wp * chi, patch,
                                                                          idx) * pre_p
    else:
        a = opts.alpha if opts.algorithm == "rpie" else 1.0
        mx = float(den_o.max())
        den_o *= (1 - a)
        den_o += a * mx + 1e-12
        num_o /= den_o
        num_o *= opts.object_step
        obj += num_o
        if upd_probe:
            mp = float(ow.max())
            st.probe = st.probe + opts.probe_step * num_p / ((1 - a) * ow + a * mp + 1e-12)
    if pos_step is not None:
        st.set_positions(_clip_positions(st, st.pos[gidx] + pos_step), gidx)
    return cost


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
        return xp.real(xp.sum(xp.conj(x) * y, axis=(1, 2, 3)))

    aa, ac = dot(a_exit, a_exit), dot(a_exit, chi)
    if b_exit is None:
        return _steps_from_dots(aa, ac, None, None, None, with_probe=False)
    bb, ab, bc = dot(b_exit, b_exit), dot(a_exit, b_exit), dot(b_exit, chi)
    return _steps_from_dots(aa, ac, bb, ab, bc, with_probe=True)


def _position_dots(op, idx, obj, probes, chi):
    """(num, den), each (B, 2): Re⟨∂ψ/∂r, Δψ⟩ and ‖∂ψ/∂r‖² per position and axis, with ∂ψ/∂r
    from the operator's exact patch derivative."""
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


def _position_step(op, idx, obj, probes, chi, opts: Options, dots=None):
    """(B, 2) shift of each position that best explains the exit-wave correction:
    Δr = Re⟨∂ψ/∂r, Δψ⟩/‖∂ψ/∂r‖². ``dots``: (num, den) given (several beams: their sums)."""
    num, den = dots if dots is not None else _position_dots(op, idx, obj, probes, chi)
    step = opts.position_relaxation * (num / (den + 1e-12))
    return np.clip(step, -opts.max_position_step_px, opts.max_position_step_px)


def _smooth_corrections(st: _State, width: int) -> None:
    """Replace the corrections (refined − initial positions) by their moving average over
    ``width`` consecutive frames: a fly-scan's position errors vary smoothly in time, the
    per-frame estimates do not."""
    corr = st.pos - st.pos0
    k = np.ones(width) / width
    pad = width // 2
    sm = np.stack([np.convolve(np.pad(corr[:, i], pad, mode="edge"), k, mode="valid")[:len(corr)]
                   for i in range(2)], axis=1)
    st.set_positions(_clip_positions(st, st.pos0 + sm))


def _clip_positions(st: _State, pos):
    # two pixels kept free on every side for the interpolated reads of the object (by every
    # beam's window)
    lim = np.array(st.shape) - st.n - 3
    if st.n_beams == 1:
        return np.clip(pos, 2, lim)
    return np.clip(pos, 2 - st.beam_px.min(axis=0), lim - st.beam_px.max(axis=0))


def _annealing(st: _State, it: int, opts: Options):
    """Maiden et al. 2012: trial shifts of shrinking radius; keep whichever lowers the error."""
    xp = st.xp
    radius = 1.0 * (1 - it / max(opts.iterations, 1)) + 0.05
    n_trials = 4
    obj = st.object
    for idx in np.array_split(np.arange(len(st.pos)), max(1, len(st.pos) // 256)):
        base = st.pos[idx]
        trials = [base] + [base + st.rng.uniform(-radius, radius, base.shape)
                           for _ in range(n_trials)]
        trials = [_clip_positions(st, t) for t in trials]
        errs = []
        amp = st.amplitudes(idx)
        for t in trials:
            far = st.op.with_positions(t).fwd(obj)
            model = xp.sqrt(_bin((far.real ** 2 + far.imag ** 2).sum(axis=1), st.u))
            errs.append(to_numpy(xp.sum((model - amp) ** 2 * st.mask, axis=(1, 2))))
        best = np.argmin(np.stack(errs), axis=0)
        st.set_positions(np.stack(trials)[best, np.arange(len(idx))], idx)


def _batch_beams(st: _State, idx: np.ndarray, opts: Options, it: int):
    """One minibatch with several beams sharing every frame (multibeam ptychography,
    Lyubomirskiy et al. 2022): the frame is the incoherent sum over beams b and their modes m
    of |F(P_bm · O(r + d_b))|², so the beams enter the modulus constraint as further modes,
    each reading the object at its own offset d_b. The object update sums every beam's terms
    (numerator and preconditioner); each beam's probe is updated from its own windows; a
    position correction moves all beams of a frame together (one stage), from the sum of
    their gradients. ePIE/rPIE and LSQML as in :func:`_batch_2d`. Each beam works on the
    sub-rectangle its windows cover where the beams' rectangles are disjoint
    (:meth:`_State.beam_groups`)."""
    xp = st.xp
    amp = st.amplitudes(idx)
    groups = st.beam_groups(idx)
    objs = [st.slices[0][view] for view, _, _ in groups]              # views: updated in place
    beams = [(g, b, op, sel) for g, (_, members, sel) in enumerate(groups)
             for b, op in members]                                     # in beam order
    beams.sort(key=lambda x: x[1])
    m = st.probe.shape[0]
    waves = [op.exit_waves(objs[g], sel) for g, _, op, sel in beams]  # (psi, patch, probes)
    psi = xp.concatenate([w[0] for w in waves], axis=1)                # (F, B·M, n, n)
    op0 = beams[0][2]
    chi = op0.far(psi, overwrite=True)
    cost = _far_correction(st, chi, amp, opts)
    chi = op0.far_adj(chi, overwrite=True)                             # Δψ of every beam
    chis = [xp.ascontiguousarray(chi[:, b * m:(b + 1) * m]) for b in range(len(beams))]
    pos_step = None
    if opts.position_correction == "gradient" and it >= opts.position_correction_start:
        num = den = 0
        for (g, _, op, sel), (_, _, pr), c in zip(beams, waves, chis):
            a, b = _position_dots(op, sel, objs[g], pr, c)              # before O changes
            num, den = num + a, den + b
        pos_step = _position_step(None, idx, None, None, None, opts, dots=(num, den))
    num_o = [None] * len(groups)
    den_o = [None] * len(groups)
    for (g, _, op, sel), (_, _, pr), c in zip(beams, waves, chis):
        a, b = op.object_update_terms(c, pr, sel)
        num_o[g], den_o[g] = (a, b) if num_o[g] is None else (num_o[g] + a, den_o[g] + b)
    mx = max(float(d.max()) for d in den_o)                            # over the whole object
    upd_probe = it >= opts.probe_update_start
    ows, num_ps = [], []
    for (_, _, op, sel), (_, patch, _), c in zip(beams, waves, chis):
        ow = xp.empty(patch.shape[1:], xp.float32)                     # Σ_frames |O_b|²
        num_ps.append(op.exit_adj_probe(c, patch, sel, weight=ow) if upd_probe else None)
        if not upd_probe:
            ow = (patch.real ** 2 + patch.imag ** 2).sum(axis=0)
        ows.append(ow)
    new_probes = None
    if opts.algorithm == "lsqml":
        reg = opts.lsqml_regularization
        pre_o = [1 / (d + reg * mx) for d in den_o]
        pre_ps = [1 / (ow + reg * float(ow.max())) for ow in ows]
        d_obj = [n * p for n, p in zip(num_o, pre_o)]
        d_probes = [np_ * pp if upd_probe else None for np_, pp in zip(num_ps, pre_ps)]
        a_exit = xp.concatenate([w[2] * op.patches(d_obj[g], sel)[:, None]
                                 for (g, _, op, sel), w in zip(beams, waves)], axis=1)
        b_exit = (xp.concatenate([op.frame_probes(sel, dp) * w[1][:, None]
                                  for (_, _, op, sel), w, dp in zip(beams, waves, d_probes)],
                                 axis=1) if upd_probe else None)
        so, sp = _ls_steps(a_exit, b_exit, chi, xp)
        if opts.lsqml_steps == "median":
            for o, d in zip(objs, d_obj):
                o += (opts.object_step * float(np.median(so))) * d
            if upd_probe:
                s = opts.probe_step * float(np.median(sp))
                new_probes = [op.probe + s * dp for (_, _, op, _), dp in zip(beams, d_probes)]
        else:
            w = xp.asarray(so, dtype=xp.float32)[:, None, None, None]
            upd = [0] * len(groups)
            for (g, _, op, sel), wv, c in zip(beams, waves, chis):
                upd[g] = upd[g] + op.exit_adj_object(w * c, wv[2], sel)
            for o, u, p in zip(objs, upd, pre_o):
                o += opts.object_step * u * p
            if upd_probe:
                wp = xp.asarray(sp, dtype=xp.float32)[:, None, None, None]
                new_probes = [op.probe + opts.probe_step * op.exit_adj_probe(wp * c, wv[1], sel)
                              * pp for (_, _, op, sel), wv, c, pp in zip(beams, waves, chis,
                                                                          pre_ps)]
    else:
        a = opts.alpha if opts.algorithm == "rpie" else 1.0
        for o, n, d in zip(objs, num_o, den_o):
            o += opts.object_step * n / ((1 - a) * d + a * mx + 1e-12)
        if upd_probe:
            new_probes = [op.probe + opts.probe_step * np_ / ((1 - a) * ow + a * float(ow.max())
                                                              + 1e-12)
                          for (_, _, op, _), np_, ow in zip(beams, num_ps, ows)]
    if new_probes is not None:
        st.probes = new_probes
    if pos_step is not None:
        st.set_positions(_clip_positions(st, st.pos[idx] + pos_step), idx)
    return cost


def _batch_multislice(st: _State, idx: np.ndarray, opts: Options, it: int):
    xp = st.xp
    op = st.op
    L = st.slices.shape[0]
    patches = xp.stack([op.patches(st.slices[l], idx) for l in range(L)], axis=1)  # (B, L, n, n)
    ms = Multislice(patches[:, None], st.prop)                          # slices (B, 1, L, n, n)
    incident, wave = ms.forward_waves(op.frame_probes(idx))           # L × (B, M, n, n)
    chi = op.far(wave, overwrite=True)
    cost = _far_correction(st, chi, st.amplitudes(idx), opts)
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


def reconstruct(data: PtychoData, opts: Options = Options(), progress: bool = False,
                callback=None, log=None, start: Start | None = None, state_every: int = 0,
                on_state=None) -> Result:
    """Reconstruct object, probe (modes) and positions from ``data``.

    Parameters
    ----------
    data : PtychoData
        Frames in memory, or streamed from the file (``read_cxi(..., lazy=True)``: only one
        batch of frames is in memory at a time).
    opts : Options
        Engine settings; :func:`auto_options` chooses them from the data.
    progress : bool
        A progress bar over frames × iterations, with the rate, the ETA and the cost.
    callback : callable, optional
        ``callback(iteration, cost)`` after every iteration.
    log : callable, optional
        Called with a line for every automatic choice (:func:`auto_options`).
    start : Start, optional
        A starting object, probe, positions and earlier costs (a resumed run: its iterations
        are counted on top of ``len(start.cost)``, the batch order continues, and the result's
        cost starts with ``start.cost``).
    state_every, on_state : int, callable, optional
        ``on_state(result)`` with the state as a :class:`Result` after every ``state_every``-th
        iteration (counted with the resumed ones), except the last, whose state is the
        returned result (checkpoints, previews).

    Divergence (a non-finite cost or probe, or a cost above ``divergence_factor`` × the best)
    stops the iterations; the result is the state of the last good iteration and
    ``Result.stopped_early`` says so.
    """
    import time

    chosen: list[str] = []
    if opts.automatic:
        t_auto = time.perf_counter()
        choice = auto_options(data, opts, log=log)
        opts = choice.options
        if choice.illumination is not None:
            data = dataclasses.replace(data, illumination=choice.illumination)
        if choice.beam_illumination is not None:
            data = dataclasses.replace(data, beam_illumination=choice.beam_illumination)
        chosen = choice.reasons + [f"choices took {time.perf_counter() - t_auto:.1f} s"]
        if log is not None:
            log(chosen[-1])
    st = _State(data, opts)
    xp = st.xp
    start = Start() if start is None else start
    _apply_start(st, start, opts)
    first = len(start.cost)
    for _ in range(first):                    # a resumed run continues the batch order
        st.batches(opts)
    n_pos = len(st.pos)
    costs: list[float] = list(start.cost)
    best = min(costs) if costs else math.inf
    last_good = None
    stopped = None
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=opts.iterations * n_pos, desc=f"{opts.algorithm}", unit="frame",
                   unit_scale=True, smoothing=0.05,
                   bar_format="{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} "
                              "frame-it [{elapsed}<{remaining} ETA, {rate_fmt}{postfix}]")
    t0 = time.perf_counter()
    for it in range(first, first + opts.iterations):
        total = 0.0
        for idx in st.batches(opts):
            if st.n_beams > 1:
                total += _batch_beams(st, idx, opts, it)
            elif opts.algorithm == "multislice" and st.slices.shape[0] > 1:
                total += _batch_multislice(st, idx, opts, it)
            else:
                total += _batch_2d(st, idx, opts, it)
            if bar is not None:
                bar.update(len(idx))
        if opts.position_correction == "annealing" and it >= opts.position_correction_start:
            _annealing(st, it, opts)
        if (opts.position_correction != "none" and opts.position_smoothing_frames > 1
                and it >= opts.position_correction_start):
            _smooth_corrections(st, opts.position_smoothing_frames)
        if st.n_beams == 1:
            st.probe = orthogonalize_modes(st.probe, xp)
        else:
            st.probes = [orthogonalize_modes(o.probe, xp) for o in st.beam_ops]
        cost = total / max(st.norm, 1e-12)
        finite = math.isfinite(cost) and all(bool(xp.all(xp.isfinite(o.probe)))
                                             for o in st.beam_ops)
        if not finite or cost > opts.divergence_factor * best:
            stopped = (f"diverged at iteration {it + 1} (cost {cost:.4g}, best {best:.4g}); "
                       f"kept the state of iteration {len(costs)}")
            warnings.warn(stopped, stacklevel=2)
            if last_good is not None:
                st.slices, st.probes = last_good[0], last_good[1]
                st.set_positions(last_good[2])
            break
        costs.append(cost)
        if cost < best:
            best = cost
        last_good = (st.slices.copy(), [o.probe.copy() for o in st.beam_ops], st.pos.copy())
        if bar is not None:
            bar.set_postfix_str(f"it {it + 1}/{first + opts.iterations}, cost {cost:.4g}")
        if callback is not None:
            callback(it, cost)
        if (on_state is not None and state_every > 0 and (it + 1) % state_every == 0
                and it + 1 < first + opts.iterations):
            on_state(_result(st, costs, time.perf_counter() - t0, None, chosen, first))
    if bar is not None:
        bar.close()
    return _result(st, costs, time.perf_counter() - t0, stopped, chosen, first)
