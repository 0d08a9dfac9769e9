"""Ptychographic reconstruction: ePIE, rPIE, LSQML and multislice, with probe modes,
position correction and reciprocal-space upsampling — written once against ``xp``.

Every engine works on minibatches of scan positions at once (no per-frame Python loop): the
exit waves of a batch are formed, propagated to the detector, corrected there, and the object
and probe updates of all positions of the batch are summed with a scatter-add.

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

import math
import warnings
from dataclasses import dataclass, field

import numpy as np

from twin.operators import ptychography
from twin.core.errors import TwinInputError
from twin.io.files import PtychoData
from twin.operators.propagation import Propagator, farfield_adj
from twin.core.scatter import scatter_add
from twin.core.xp import fft2, get_xp, ifft2, to_numpy

ALGORITHMS = ("epie", "rpie", "lsqml", "multislice")


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

    def __post_init__(self):
        checks = [("algorithm", self.algorithm in ALGORITHMS, f"allowed: {ALGORITHMS}"),
                  ("iterations", self.iterations >= 1, "at least 1"),
                  ("modes", 1 <= self.modes <= 64, "1 to 64"),
                  ("batch_size", self.batch_size >= 1, "at least 1"),
                  ("alpha", 0 <= self.alpha <= 1, "0 to 1"),
                  ("position_correction", self.position_correction in
                   ("none", "gradient", "annealing"), "none, gradient or annealing"),
                  ("noise_model", self.noise_model in ("gaussian", "poisson"),
                   "gaussian or poisson"),
                  ("lsqml_steps", self.lsqml_steps in ("median", "per_position"),
                   "median or per_position"),
                  ("slices", self.slices >= 1, "at least 1"),
                  ("upsampling", self.upsampling is None or self.upsampling >= 1, "≥ 1")]
        for name, ok, allowed in checks:
            if not ok:
                raise TwinInputError(f"--{name.replace('_', '-')}", getattr(self, name), allowed)


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


def initial_probe(data: PtychoData, n: int, u: int, modes: int, xp) -> np.ndarray:
    """The file's illumination, or a model: the inverse transform of the mean diffraction
    amplitude (upsampled), with weaker further modes made by phase ramps, orthogonalised."""
    mean_photons = float(np.mean(data.frames.sum(axis=(1, 2))))
    if data.illumination is not None:
        p = np.asarray(data.illumination, dtype=np.complex64)
        if p.shape[-1] != n:
            raise TwinInputError("/entry_1/instrument_1/source_1/illumination", p.shape,
                                 f"must be (M, {n}, {n}) for {data.frames.shape[-1]}-pixel "
                                 f"frames at upsampling {u}")
    else:
        p = model_probe(data, n, u)[None]
    p = p[:modes]
    if p.shape[0] < modes:
        base = p[0]
        yy, xx = np.mgrid[:n, :n] / n
        extra = [base * np.exp(2j * np.pi * (k * xx + (k % 2) * yy)) * 0.3
                 for k in range(1, modes - p.shape[0] + 1)]
        p = np.concatenate([p, np.stack(extra)]).astype(np.complex64)
        p = to_numpy(orthogonalize_modes(xp.asarray(p), xp))
    p = p * np.sqrt(mean_photons / np.sum(np.abs(p) ** 2))
    return xp.asarray(p.astype(np.complex64))


def _mean_pupil(data: PtychoData, n: int, u: int) -> np.ndarray:
    amp = np.sqrt(np.maximum(np.mean(data.frames, axis=0), 0))
    return (np.repeat(np.repeat(amp, u, axis=0), u, axis=1) / u).astype(np.complex64)


def model_probe(data: PtychoData, n: int, u: int, defocus_m: float | None = None) -> np.ndarray:
    """A probe model from the data alone: the mean diffraction amplitude is the illuminated
    pupil; the probe is its inverse transform after a defocus. Without ``defocus_m`` the
    defocus is chosen among candidates that make the beam 1–8 scan steps wide, by the lowest
    data cost after two rPIE iterations on a subset of the frames."""
    pupil = _mean_pupil(data, n, u)
    lam = data.wavelength_m
    dx = lam * data.distance_m / (data.frames.shape[-1] * data.pixel_size_m)
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
    sub = PtychoData(data.frames[:min(len(data.frames), 200)],
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


# ----------------------------------------------------------------------------- engine


class _State:
    def __init__(self, data: PtychoData, opts: Options):
        xp = get_xp(opts.backend)
        self.xp = xp
        frames = np.asarray(data.frames, dtype=np.float32)
        if frames.ndim != 3 or frames.shape[1] != frames.shape[2]:
            raise TwinInputError("/entry_1/data_1/data", frames.shape,
                                 "must be square frames (N, n, n)")
        nd = frames.shape[-1]
        u = opts.upsampling
        if u is None:
            if data.illumination is not None and data.illumination.shape[-1] % nd == 0:
                u = data.illumination.shape[-1] // nd
            else:
                u = data.upsampling
        self.u = u
        self.n = nd * u
        self.dx = data.wavelength_m * data.distance_m / (nd * data.pixel_size_m)
        mask = data.mask if data.mask is not None else np.ones((nd, nd), np.uint8)
        if mask.shape != (nd, nd):
            raise TwinInputError("/entry_1/instrument_1/detector_1/mask", mask.shape,
                                 f"must match the frames ({nd}, {nd})")
        # Internally the far field is the plain (unshifted) DFT of the exit wave: the centred
        # DFT differs from it by a circular shift of the output and a phase ramp, neither of
        # which a modulus constraint sees. Frames and mask are moved to that order once here;
        # with upsampling the binned grid is shifted by its own half size, which maps each
        # binned pixel onto the u×u block of the fine grid it covers.
        self.amp = xp.asarray(np.fft.ifftshift(np.sqrt(np.maximum(frames, 0)), axes=(-2, -1)))
        self.mask = xp.asarray(np.fft.ifftshift(mask.astype(np.float32)))
        self.mask_up = _unbin(self.mask, u, xp)
        self.norm = float(np.sum(frames * mask))
        tr = data.translations_m
        reach = np.max(np.abs(tr[:, :2])) / self.dx if len(tr) else 0
        side = 2 * int(math.ceil(reach)) + self.n + 8
        self.shape = (side, side)
        self.pos = ptychography.positions_from_translations(tr, self.dx, self.shape,
                                                            (self.n, self.n))
        self.pos0 = self.pos.copy()
        self.probe = initial_probe(data, self.n, u, opts.modes, xp)
        L = opts.slices if opts.algorithm == "multislice" else 1
        self.slices = xp.ones((L,) + self.shape, dtype=xp.complex64)
        self.prop = (Propagator((self.n, self.n), self.dx, opts.slice_thickness_m,
                                data.wavelength_m, xp=xp) if L > 1 else None)
        self.rng = np.random.default_rng(opts.seed)

    @property
    def object(self):
        o = self.slices[0]
        for s in self.slices[1:]:
            o = o * s
        return o


def _shifted(probe, frac, xp):
    """(B, M, n, n) probe shifted by each position's sub-pixel part: one FFT of the probe, one
    inverse FFT per position."""
    if not np.any(frac):
        return xp.broadcast_to(probe[None], (len(frac),) + probe.shape)
    ramp = ptychography.shift_ramp(probe.shape[-2:], xp.asarray(frac)[:, None], xp)
    return ifft2(fft2(probe)[None] * ramp)


def _unshift_sum(g, frac, xp):
    """Σ_b shift(g_b, −frac_b) over the batch: the adjoint of :func:`_shifted`, summed, with one
    inverse FFT."""
    if not np.any(frac):
        return g.sum(axis=0)
    ramp = ptychography.shift_ramp(g.shape[-2:], -xp.asarray(frac)[:, None], xp)
    return ifft2((fft2(g) * ramp).sum(axis=0))


def _flat_index(origin, n, width, xp):
    rows = origin[:, 0, None, None] + np.arange(n)[None, :, None]
    cols = origin[:, 1, None, None] + np.arange(n)[None, None, :]
    return xp.asarray(rows * width + cols)


def _far_correction(st: _State, psi_far, amp_meas, opts: Options):
    """Far-field correction factor (B, n, n) and the batch's cost from model waves."""
    xp = st.xp
    inten = (psi_far.real ** 2 + psi_far.imag ** 2).sum(axis=1)      # (B, n, n)
    model = _bin(inten, st.u)
    model_amp = xp.sqrt(model)
    cost = float(xp.sum(((model_amp - amp_meas) ** 2) * st.mask))
    if opts.algorithm == "lsqml" and opts.noise_model == "poisson":
        ratio = (amp_meas ** 2 + 1e-3) / (model + 1e-3)           # I/Î: Poisson ML gradient
    else:
        ratio = amp_meas / (model_amp + 1e-6)                      # √I/√Î: Gaussian / PIE
    ratio = ratio * st.mask + (1 - st.mask)
    return _unbin(ratio, st.u, xp), cost


def _batch_geometry(st: _State, idx: np.ndarray):
    """Sub-pixel parts (B, 2) and flat object indices (B, n, n) of the batch's windows."""
    pos = st.pos[idx]
    origin = np.floor(pos).astype(int)
    return pos - origin, _flat_index(origin, st.n, st.shape[1], st.xp)


def _batch_2d(st: _State, idx: np.ndarray, opts: Options, it: int):
    xp = st.xp
    frac, fidx = _batch_geometry(st, idx)
    obj = st.slices[0]
    patch = obj.ravel()[fidx]                                       # (B, n, n)
    probes = _shifted(st.probe, frac, xp)                           # (B, M, n, n)
    psi = probes * patch[:, None]
    far = fft2(psi)
    ratio, cost = _far_correction(st, far, st.amp[idx], opts)
    if opts.algorithm == "lsqml" and opts.noise_model == "poisson":
        dpsi = ifft2(far * (ratio[:, None] - 1))
    else:
        dpsi = ifft2(far * ratio[:, None]) - psi                    # ψ' − ψ

    size = st.shape[0] * st.shape[1]
    pw = (probes.real ** 2 + probes.imag ** 2).sum(axis=1)          # (B, n, n)
    num_o = scatter_add(size, fidx, (xp.conj(probes) * dpsi).sum(axis=1)).reshape(st.shape)
    den_o = scatter_add(size, fidx, pw).reshape(st.shape)
    upd_probe = it >= opts.probe_update_start
    ow = patch.real ** 2 + patch.imag ** 2                          # (B, n, n)
    if opts.algorithm == "lsqml":
        reg = opts.lsqml_regularization
        d_obj = num_o / (den_o + reg * float(den_o.max()))
        d_probe = (_unshift_sum(xp.conj(patch)[:, None] * dpsi, frac, xp)
                   / (ow.sum(axis=0) + reg * float(ow.sum(axis=0).max())))
        a_exit = probes * d_obj.ravel()[fidx][:, None]              # P·ΔO
        b_exit = (_shifted(d_probe, frac, xp) * patch[:, None]) if upd_probe else None
        so, sp = _ls_steps(a_exit, b_exit, dpsi, xp)
        if opts.lsqml_steps == "median":
            st.slices[0] = obj + opts.object_step * float(np.median(so)) * d_obj
            if upd_probe:
                st.probe = st.probe + opts.probe_step * float(np.median(sp)) * d_probe
        else:
            # each position's update with its own step (Odstrčil et al. 2018)
            w = xp.asarray(so, dtype=xp.float32)[:, None, None]
            num_w = scatter_add(size, fidx, w * (xp.conj(probes) * dpsi).sum(axis=1))
            st.slices[0] = obj + opts.object_step * num_w.reshape(st.shape) / (
                den_o + reg * float(den_o.max()))
            if upd_probe:
                wp = xp.asarray(sp, dtype=xp.float32)[:, None, None, None]
                num_p = _unshift_sum(wp * xp.conj(patch)[:, None] * dpsi, frac, xp)
                st.probe = st.probe + opts.probe_step * num_p / (
                    ow.sum(axis=0) + reg * float(ow.sum(axis=0).max()))
    else:
        a = opts.alpha if opts.algorithm == "rpie" else 1.0
        mx = float(den_o.max())
        st.slices[0] = obj + opts.object_step * num_o / ((1 - a) * den_o + a * mx + 1e-12)
        if upd_probe:
            num_p = _unshift_sum(xp.conj(patch)[:, None] * dpsi, frac, xp)
            den_p = ow.sum(axis=0)
            mp = float(den_p.max())
            st.probe = st.probe + opts.probe_step * num_p / ((1 - a) * den_p + a * mp + 1e-12)
    if opts.position_correction == "gradient" and it >= opts.position_correction_start:
        _gradient_positions(st, idx, patch, probes, dpsi, opts)
    return cost


def _ls_steps(a_exit, b_exit, chi, xp):
    """Least-squares step lengths of every position (B,), for object and probe directions:
    the minimiser of ‖χ − a·(P·ΔO) − b·(ΔP·O)‖² per position, clipped to [0, 2]."""
    def dot(x, y):
        return xp.real(xp.sum(xp.conj(x) * y, axis=(1, 2, 3)))

    aa, ac = dot(a_exit, a_exit), dot(a_exit, chi)
    if b_exit is None:
        return np.clip(to_numpy(ac / (aa + 1e-12)), 0, 2), None
    bb, ab, bc = dot(b_exit, b_exit), dot(a_exit, b_exit), dot(b_exit, chi)
    det = aa * bb - ab * ab + 1e-12
    so = to_numpy((bb * ac - ab * bc) / det)
    sp = to_numpy((aa * bc - ab * ac) / det)
    return np.clip(so, 0, 2), np.clip(sp, 0, 2)


def _gradient_positions(st: _State, idx, patch, probes, dpsi, opts: Options):
    """Shift of each position that best explains the exit-wave correction: Δr = Re⟨∂ψ, Δψ⟩/‖∂ψ‖²."""
    xp = st.xp
    gy = (xp.roll(patch, -1, axis=1) - xp.roll(patch, 1, axis=1)) / 2
    gx = (xp.roll(patch, -1, axis=2) - xp.roll(patch, 1, axis=2)) / 2
    out = []
    for g in (gy, gx):
        d = probes * g[:, None]
        d[..., :1, :] = 0
        d[..., -1:, :] = 0
        d[..., :, :1] = 0
        d[..., :, -1:] = 0
        num = xp.real(xp.sum(xp.conj(d) * dpsi, axis=(1, 2, 3)))
        den = xp.sum(d.real ** 2 + d.imag ** 2, axis=(1, 2, 3)) + 1e-12
        out.append(to_numpy(num / den))
    step = opts.position_relaxation * np.stack(out, axis=1)
    step = np.clip(step, -opts.max_position_step_px, opts.max_position_step_px)
    st.pos[idx] = _clip_positions(st, st.pos[idx] + step)


def _smooth_corrections(st: _State, width: int) -> None:
    """Replace the corrections (refined − initial positions) by their moving average over
    ``width`` consecutive frames: a fly-scan's position errors vary smoothly in time, the
    per-frame estimates do not."""
    corr = st.pos - st.pos0
    k = np.ones(width) / width
    pad = width // 2
    sm = np.stack([np.convolve(np.pad(corr[:, i], pad, mode="edge"), k, mode="valid")[:len(corr)]
                   for i in range(2)], axis=1)
    st.pos = _clip_positions(st, st.pos0 + sm)


def _clip_positions(st: _State, pos):
    lim = np.array(st.shape) - st.n - 1
    return np.clip(pos, 0, lim)


def _annealing(st: _State, it: int, opts: Options):
    """Maiden et al. 2012: trial shifts of shrinking radius; keep whichever lowers the error."""
    xp = st.xp
    radius = 1.0 * (1 - it / max(opts.iterations, 1)) + 0.05
    n_trials = 4
    for idx in np.array_split(np.arange(len(st.pos)), max(1, len(st.pos) // 256)):
        base = st.pos[idx]
        trials = [base] + [base + st.rng.uniform(-radius, radius, base.shape)
                           for _ in range(n_trials)]
        errs = []
        for t in trials:
            t = _clip_positions(st, t)
            origin = np.floor(t).astype(int)
            fidx = _flat_index(origin, st.n, st.shape[1], xp)
            psi = _shifted(st.probe, t - origin, xp) * st.object.ravel()[fidx][:, None]
            model = xp.sqrt(_bin((xp.abs(fft2(psi)) ** 2).sum(axis=1), st.u))
            errs.append(to_numpy(xp.sum((model - st.amp[idx]) ** 2 * st.mask, axis=(1, 2))))
        best = np.argmin(np.stack(errs), axis=0)
        stacked = np.stack([_clip_positions(st, t) for t in trials])
        st.pos[idx] = stacked[best, np.arange(len(idx))]


def _batch_multislice(st: _State, idx: np.ndarray, opts: Options, it: int):
    xp = st.xp
    frac, fidx = _batch_geometry(st, idx)
    L = st.slices.shape[0]
    patches = [st.slices[l].ravel()[fidx] for l in range(L)]       # L × (B, n, n)
    wave = _shifted(st.probe, frac, xp)                             # (B, M, n, n)
    incident = []
    for l in range(L):
        incident.append(wave)
        wave = wave * patches[l][:, None]
        if l < L - 1:
            wave = st.prop.fwd(wave)
    far = fft2(wave)
    ratio, cost = _far_correction(st, far, st.amp[idx], opts)
    chi = ifft2(far * ratio[:, None]) - wave
    size = st.shape[0] * st.shape[1]
    a = opts.alpha
    for l in reversed(range(L)):
        if l < L - 1:
            chi = st.prop.adj(chi)
        w = incident[l]
        num = scatter_add(size, fidx, (xp.conj(w) * chi).sum(axis=1)).reshape(st.shape)
        den = scatter_add(size, fidx, (w.real ** 2 + w.imag ** 2).sum(axis=1)).reshape(st.shape)
        # the L slices share one exit-wave error: each takes 1/L of the correction, else the
        # summed corrections overshoot and the iteration diverges
        norm = (1 - a) * den + a * float(den.max()) + 1e-12
        upd = st.slices[l] + (opts.object_step / L) * num / norm
        # a slice transmits at most what enters it: |O_l| ≤ 1 keeps the product of slices
        # (and the back-propagated corrections) bounded
        st.slices[l] = upd / xp.maximum(1.0, xp.abs(upd))
        chi = chi * xp.conj(patches[l])[:, None]
    if it >= opts.probe_update_start:
        pw = patches[0].real ** 2 + patches[0].imag ** 2
        num_p = _unshift_sum(chi, frac, xp)
        den_p = pw.sum(axis=0)
        # chi here is already multiplied by conj(O_0): the probe gradient
        st.probe = st.probe + opts.probe_step * num_p / ((1 - a) * den_p
                                                         + a * float(den_p.max()) + 1e-12)
    return cost


def reconstruct(data: PtychoData, opts: Options = Options(), progress: bool = False,
                callback=None) -> Result:
    """Reconstruct object, probe (modes) and positions from ``data``."""
    import time

    st = _State(data, opts)
    xp = st.xp
    n_pos = len(st.pos)
    costs: list[float] = []
    best = math.inf
    last_good = None
    stopped = None
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=opts.iterations, desc=f"{opts.algorithm}", unit="it")
    t0 = time.perf_counter()
    for it in range(opts.iterations):
        order = st.rng.permutation(n_pos)
        total = 0.0
        for start in range(0, n_pos, opts.batch_size):
            idx = order[start:start + opts.batch_size]
            if opts.algorithm == "multislice" and st.slices.shape[0] > 1:
                total += _batch_multislice(st, idx, opts, it)
            else:
                total += _batch_2d(st, idx, opts, it)
        if opts.position_correction == "annealing" and it >= opts.position_correction_start:
            _annealing(st, it, opts)
        if (opts.position_correction != "none" and opts.position_smoothing_frames > 1
                and it >= opts.position_correction_start):
            _smooth_corrections(st, opts.position_smoothing_frames)
        st.probe = orthogonalize_modes(st.probe, xp)
        cost = total / max(st.norm, 1e-12)
        finite = math.isfinite(cost) and bool(xp.all(xp.isfinite(st.probe)))
        if not finite or cost > opts.divergence_factor * best:
            stopped = (f"diverged at iteration {it + 1} (cost {cost:.4g}, best {best:.4g}); "
                       f"kept the state of iteration {len(costs)}")
            warnings.warn(stopped, stacklevel=2)
            if last_good is not None:
                st.slices, st.probe, st.pos = last_good
            break
        costs.append(cost)
        if cost < best:
            best = cost
        last_good = (st.slices.copy(), st.probe.copy(), st.pos.copy())
        if bar is not None:
            bar.set_postfix(cost=f"{cost:.4g}")
            bar.update(1)
        if callback is not None:
            callback(it, cost)
    if bar is not None:
        bar.close()
    elapsed = time.perf_counter() - t0
    tr = ptychography.translations_from_positions(st.pos, st.dx, st.shape, (st.n, st.n))
    slices = to_numpy(st.slices) if st.slices.shape[0] > 1 else None
    return Result(to_numpy(st.object).astype(np.complex64), to_numpy(st.probe),
                  st.pos.copy(), tr[:, :2], costs, st.dx, slices, stopped,
                  {"seconds": elapsed, "frame_iterations_per_s":
                   n_pos * max(len(costs), 1) / max(elapsed, 1e-9)})
