"""Score anyone's reconstruction against the twin's ground truth (``twin score``).

Phase retrieval cannot fix, and different codes choose differently: a global phase, a linear
phase ramp, a translation of the whole image (integer and sub-pixel), and the twin-image
ambiguity O(r) ↔ conj(O(−r)) (with a conjugation alone for codes whose Fourier sign
convention is the other one). :func:`score` removes all of them before any metric:

1. the reconstruction is resampled to the truth's pixel size where the two differ;
2. the truth is cut to the scanned region (:func:`twin.analysis.truth.scanned_region`);
3. for each of the four candidates {O, conj O, O(−r), conj O(−r)} the region is found in the
   reconstruction by normalised cross-correlation of the phase-gradient phasors
   O(r + 1)·conj O(r) (blind to a global phase, a ramp and any number of 2π wraps; around the
   file's origin where it gives one, else anywhere), then aligned to sub-pixel precision with
   its phase offset and ramp removed (:func:`twin.analysis.alignment.align`, which unwraps
   nothing);
4. the candidate whose phase agrees best with the truth's (the coherence |⟨exp(i(φ − φ_t))⟩|)
   is kept;
5. each phase is unwrapped, then deplaned by its *own* least-squares plane
   (:func:`twin.analysis.alignment.deplane`), so neither borrows the other's trend (the
   registration's plane, fitted on φ − φ_t, gave a blank the truth's plane: PCC 0.9 against a
   truth with a trend). φ is unwrapped on the truth's branch, φ_t + U(wrap(φ − φ_t)), only
   where the truth explains its residues (the difference has fewer than half as many as φ,
   :func:`twin.analysis.alignment.residue_density`), so a sample of many 2π (the brain phantom in
   air) is compared on its truth's branch; noise or an unrelated image is unwrapped by itself,
   since U of a difference full of residues is a smoothed −φ_t and would leave part of the
   truth in. PCC, SSIM and the FRC (half-bit and 1/7,
   :func:`twin.analysis.resolution.fourier_correlation`) are computed on these phases.

A reconstruction that is empty, a truth without phase contrast over the scanned region (a field
that misses the sample), or an FRC that never reaches the half-bit threshold in its searched
rings (also for the unit phasors exp(iφ), which no unwrapping can flatter), is **unresolved**:
every resolution is None, and ``message`` says why. The crossing is searched from the first ring
where the curve reaches the threshold (:data:`FROM_RISE`): a star has no structure at periods
longer than its widest spoke in the field, and there the curve only sees the reconstruction's
slow errors (book/star_frc.md).

Conventions: ``*_resolution_*_m`` are half periods 1/(2f); ``*_fire_*_m`` full periods 1/f (the
FIRE number of Nieuwenhuizen et al. 2013); ``_7`` marks the 1/7 threshold, the others half-bit.
With ``split="even-odd"`` the registered reconstruction's own phase (unwrapped and deplaned by
itself) is split into O[0::2, 0::2] and O[1::2, 1::2] (pixel 2p) and their FRC gives
``split_fire_m`` and ``split_fire_7_m``, as seed 000 did; ``method="biop"`` computes that FRC
as the BIOP ImageJ plugin's source does (:mod:`twin.analysis.biop`).

Steps 1–4 (resampling, the scanned region, the candidates' registration) live in
:mod:`twin.analysis.registration`.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from twin.analysis import biop, metrics
from twin.analysis.registration import _candidate, _region, _wrap
from twin.analysis.truth import lit_positions
from twin.core.errors import TwinInputError
from twin.io.atomic import atomic_path
from twin.io.cxi import read_cxi
from twin.io.products import Product, read_product

CANDIDATES = (("identity", False, False), ("conjugate", True, False),
              ("flip", False, True), ("conjugate+flip", True, True))
METHODS = ("standard", "biop")
SPLITS = (None, "even-odd")
CONVENTION = ("*_resolution_*_m: half period 1/(2f) at the FRC's crossing; *_fire_*_m: full "
              "period 1/f (FIRE, Nieuwenhuizen et al. 2013); '_7' = 1/7 threshold, else "
              "half-bit; *_bound: never crossed up to Nyquist, the value is the pixel limit "
              "(the true figure is better)")
SKIP_RINGS = 3
#: The FRC against the truth is searched from the first ring where it reaches the threshold
#: (and chance could not have put it there, :meth:`metrics.FourierCorrelation._start`):
#: rings below it before that hold no common structure (a Siemens star has none at periods
#: longer than its widest spoke in the field), and no resolution is lost where none was found.
FROM_RISE = True


@dataclass(frozen=True)
class Split:
    """The FRC of a reconstruction's even and odd sub-images (seed 000's procedure).

    Attributes
    ----------
    method : str
        "standard" (this module's FRC, half-bit and 1/7) or "biop" (the plugin's, as coded).
    fire_m, fire_7_m : float or None
        Full period 1/f at the half-bit and 1/7 crossings (None: no crossing / unresolved).
    fire_bound, fire_7_bound : bool
        Never crossed up to Nyquist (the value is the pixel limit 2 × 2p).
    resolved : bool
    pixel_size_m : float
        The half images' pixel, 2p.
    curve : FourierCorrelation or BiopCurve
    """

    method: str
    fire_m: float | None
    fire_7_m: float | None
    fire_bound: bool
    fire_7_bound: bool
    resolved: bool
    pixel_size_m: float
    curve: object = field(repr=False)

    def as_dict(self) -> dict:
        """The split's numbers as ``split_*`` keys (full periods, metres) with a description of the
        procedure.

        Returns
        -------
        dict
            ``split_fire_m``, ``split_fire_7_m``, ``split_fire_bound``, ``split_fire_7_bound``,
            ``split_resolved``, ``split_pixel_size_m``, ``split_procedure``.
        """
        desc = ("even-odd split: FRC of O[0::2, 0::2] and O[1::2, 1::2] of the registered "
                "reconstruction's phase, pixel 2p; ")
        desc += ("BIOP ImageJ plugin as coded (ring value sqrt(sum|F1F2*|^2)/sqrt(sum|F1|^2 "
                 "sum|F2|^2), LOESS-smoothed, its half-bit with N = samples per half ring and "
                 "its fixed 0.1428; not a correlation)" if self.method == "biop"
                 else "standard FRC (real part of F1F2*), half-bit and 1/7")
        return {"split_fire_m": self.fire_m, "split_fire_7_m": self.fire_7_m,
                "split_fire_bound": self.fire_bound, "split_fire_7_bound": self.fire_7_bound,
                "split_resolved": self.resolved, "split_pixel_size_m": self.pixel_size_m,
                "split_procedure": desc}


@dataclass(frozen=True)
class Score:
    """Metrics of a reconstruction against the ground truth (phases, after registration).

    Attributes
    ----------
    pcc_phase, ssim_phase : float or None
        Pearson correlation and SSIM of the phases (None where either has no contrast).
    frc_resolution_m, frc_resolution_7_m : float or None
        Half period 1/(2f) where the FRC against the truth crosses the half-bit and 1/7
        thresholds; the pixel size with ``*_bound`` True where it never does; None unresolved.
    frc_fire_m, frc_fire_7_m : float or None
        The same crossings as full periods 1/f.
    frc_resolution_bound, frc_resolution_7_bound : bool
    resolved : bool
        False where the curve never leaves the noise (then every resolution is None).
    message : str
        Why a score is unresolved or undefined ("" otherwise).
    phase_rms_error_rad : float or None
        RMS of angle(recon · conj(truth)) over the region.
    transform : str
        Which of :data:`CANDIDATES` matched.
    shift_px : (dy, dx)
        Translation of the reconstruction's region relative to where its origin put it.
    phase_offset_rad : float
    phase_ramp_rad_per_px : (y, x)
    region_px : (rows, cols)
    pixel_size_m : float
        Pixel size the comparison is made at (the truth's).
    source : str
        Layout the reconstruction was read from.
    frc : FourierCorrelation
    method : str
        "standard" or "biop" (the split's procedure).
    split : Split or None
    aligned_phase, truth_phase : arrays
        The compared phases (not in :meth:`as_dict`).
    """

    pcc_phase: float | None
    ssim_phase: float | None
    frc_resolution_m: float | None
    frc_resolution_7_m: float | None
    frc_fire_m: float | None
    frc_fire_7_m: float | None
    frc_resolution_bound: bool
    frc_resolution_7_bound: bool
    resolved: bool
    message: str
    phase_rms_error_rad: float | None
    transform: str
    shift_px: tuple[float, float]
    phase_offset_rad: float
    phase_ramp_rad_per_px: tuple[float, float]
    region_px: tuple[int, int]
    pixel_size_m: float
    source: str
    frc: metrics.FourierCorrelation = field(repr=False)
    method: str = "standard"
    split: Split | None = None
    aligned_phase: np.ndarray | None = field(default=None, repr=False)
    truth_phase: np.ndarray | None = field(default=None, repr=False)

    def as_dict(self) -> dict:
        """The score as a JSON-ready dict (``twin score --json`` adds the FRC files), the
        split's keys added when there is one.

        Returns
        -------
        dict
            Scalar fields (``*_resolution_m`` half periods, ``*_fire_m`` full periods, metres),
            ``shift_px``, ``region_px`` and ``phase_ramp_rad_per_px`` as lists, ``frc_procedure``
            and ``convention``.
        """
        d = {k: getattr(self, k) for k in (
            "pcc_phase", "ssim_phase", "frc_resolution_m", "frc_resolution_7_m", "frc_fire_m",
            "frc_fire_7_m", "frc_resolution_bound", "frc_resolution_7_bound", "resolved",
            "message", "method", "phase_rms_error_rad", "transform", "phase_offset_rad",
            "pixel_size_m", "source")}
        d |= {"shift_px": list(self.shift_px), "region_px": list(self.region_px),
              "phase_ramp_rad_per_px": list(self.phase_ramp_rad_per_px),
              "frc_procedure": "standard FRC of the phases against the truth (real part of "
                               "F1F2*, Hann window), first 3 rings not searched, then "
                               "from the first ring significantly at the threshold",
              "convention": CONVENTION}
        if self.split is not None:
            d |= self.split.as_dict()
        return d


def _signal(pa_raw: np.ndarray, a: np.ndarray, pb: np.ndarray) -> str:
    """Why the comparison is undefined ("" where it is not)."""
    if not np.any(np.abs(a) > 0):
        return "the reconstruction is empty (zero) over the scanned region"
    if np.std(pb) < 1e-3:
        return ("the truth has no phase contrast over the scanned region (the field misses "
                "the sample): nothing to resolve")
    if np.std(pa_raw) < 1e-6:
        return "the reconstruction's phase is constant over the scanned region"
    return ""


def _split(phase: np.ndarray, pixel_size_m: float, method: str) -> Split:
    """FRC of the even and odd sub-images of ``phase`` (pixel 2p), as ``method`` computes it."""
    even, odd = phase[0::2, 0::2], phase[1::2, 1::2]
    h, w = min(even.shape[0], odd.shape[0]), min(even.shape[1], odd.shape[1])
    even, odd = even[:h, :w], odd[:h, :w]
    p2 = 2 * pixel_size_m
    if method == "biop":
        cv = biop.curve(even, odd)
        f = [biop.fire_px(cv, th) for th in ("half_bit", "1/7")]
        # a crossing before the first ring (the plugin's radius-0 point is 1, its half-bit
        # threshold there 1 − 2⁻⁵² when the curve is too short to smooth) is no resolution
        f = [float(v * p2) if np.isfinite(v) and v <= cv.image_side_px else None for v in f]
        return Split("biop", f[0], f[1], False, False, any(v is not None for v in f), p2, cv)
    frc = metrics.fourier_correlation(even, odd, p2)
    c1, c7 = frc.crossing("half_bit", SKIP_RINGS), frc.crossing("1/7", SKIP_RINGS)
    ok = c1.resolved
    return Split("standard", c1.full_period_m if ok else None,
                 c7.full_period_m if ok else None, c1.bound, c7.bound, ok, p2, frc)


def score(recon: Product | np.ndarray, truth_object: np.ndarray, pixel_size_m: float,
          positions_m: np.ndarray, probe_px: int, split: str | None = None,
          method: str = "standard") -> Score:
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
    split : {None, "even-odd"}
        Also score the reconstruction against itself, split as seed 000 did.
    method : {"standard", "biop"}
        How the split's FRC is computed ("biop" implies ``split="even-odd"``).

    Returns
    -------
    Score
    """
    if method not in METHODS:
        raise TwinInputError("--method", method, "allowed: standard, biop")
    if split not in SPLITS:
        raise TwinInputError("--split", split, "allowed: even-odd")
    split = "even-odd" if method == "biop" else split
    if not isinstance(recon, Product):
        recon = Product(np.asarray(recon, dtype=np.complex128), None, None, None, None, "array")
    obj, t, expect = _region(recon, np.asarray(truth_object, dtype=np.complex128),
                             pixel_size_m, positions_m, probe_px)
    h, w = t.shape
    hann = np.outer(np.hanning(h + 2)[1:-1], np.hanning(w + 2)[1:-1])
    best = None
    for name, conj, flip in CANDIDATES:
        r = _candidate(obj, t, expect, conj, flip, hann)
        if best is None or r[0] > best[0][0]:
            best = (r, name)
    (_, al, shift), name = best
    return _metrics(al, t, name, shift, pixel_size_m, recon.source, split, method)


def _phases(a: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool]:
    """The phases step 5 of the module's docstring compares.

    Parameters
    ----------
    a, t : complex (H, W)
        The registered reconstruction and the truth's region.

    Returns
    -------
    pa, own, pb : float (H, W)
        φ (on the truth's branch where ``guided``, else ``own``), φ unwrapped by itself, φ_t;
        each less its own plane. ``guided``: φ − φ_t has under half the residues of φ.
    """
    phi, phi_t = np.angle(a), np.angle(t)
    d = _wrap(phi - phi_t)
    pb_raw = metrics.unwrap_phase(phi_t)
    pb = metrics.deplane(pb_raw)
    own = metrics.deplane(metrics.unwrap_phase(phi))
    guided = metrics.residue_density(d) < 0.5 * metrics.residue_density(phi)
    pa = metrics.deplane(pb_raw + metrics.unwrap_phase(d)) if guided else own
    return pa, own, pb, guided


def _metrics(al, t, name, shift, pixel_size_m, source, split, method) -> Score:
    """The scores of an aligned region against the truth (see the module's docstring)."""
    a = np.asarray(al.aligned, dtype=np.complex128)
    pa, own, pb, _ = _phases(a, t)
    msg = _signal(own, a, pb)
    frc = metrics.fourier_correlation(pa, pb, pixel_size_m)
    # searched from where the curve first reaches the threshold (FROM_RISE, book/star_frc.md)
    c1 = frc.crossing("half_bit", SKIP_RINGS, FROM_RISE)
    c7 = frc.crossing("1/7", SKIP_RINGS, FROM_RISE)
    # unit phasors, each less its own plane: no unwrapping and no borrowed trend can flatter them
    ua = np.exp(1j * (np.angle(a) - (metrics.unwrap_phase(np.angle(a)) - own)))
    ub = np.exp(1j * (np.angle(t) - (metrics.unwrap_phase(np.angle(t)) - pb)))
    phasors = metrics.fourier_correlation(ua, ub, pixel_size_m)
    if not msg and not (c1.resolved and
                        phasors.crossing("half_bit", SKIP_RINGS, FROM_RISE).resolved):
        msg = ("the FRC against the truth never reaches the half-bit threshold in its searched "
               "rings: the reconstruction is unrelated to the truth (unresolved)")
    ok = not msg
    defined = ok or "FRC" in msg
    if not ok:
        # an unrelated reconstruction borrows no branch from the truth: its own unwrapping
        pa = own
        frc = metrics.fourier_correlation(pa, pb, pixel_size_m)
    rng = float(pb.max() - pb.min()) or 1.0
    sp = _split(own, pixel_size_m, method) if split and ok else None
    if split and not ok:
        sp = Split(method, None, None, False, False, False, 2 * pixel_size_m, None)
    err = np.angle(a * np.conj(t))
    return Score(
        metrics.pcc(pa, pb) if defined else None,
        metrics.ssim(pa, pb, rng) if defined else None,
        c1.half_period_m if ok else None, c7.half_period_m if ok else None,
        c1.full_period_m if ok else None, c7.full_period_m if ok else None,
        bool(ok and c1.bound), bool(ok and c7.bound), ok, msg,
        float(np.sqrt(np.mean(err ** 2))) if defined else None, name,
        (float(shift[0]), float(shift[1])), al.phase_offset, al.phase_ramp, t.shape,
        float(pixel_size_m), source, frc, method, sp, pa, pb)


def truth_geometry(data) -> tuple[np.ndarray, float, np.ndarray, int]:
    """(truth object, its pixel, the lit positions, probe window px) of a twin CXI's data.

    The one definition of the scanned region that ``twin reconstruct``, ``twin run`` and
    ``twin score`` share: the true positions where the file has them (else the nominal ones),
    every beam's offset added, and the probe window of the file's illumination.

    Parameters
    ----------
    data : PtychoData
        Read from a twin CXI file.

    Returns
    -------
    truth : numpy.ndarray
        Ground-truth object transmission (complex).
    pixel_m : float
        Its pixel size, metres (the data's object pixel where the file gives none).
    positions_m : numpy.ndarray
        (B·N, ≥2) lit positions x, y, metres (:func:`twin.analysis.truth.lit_positions`).
    probe_px : int
        Probe window side, pixels (illumination side, else frame side × upsampling).

    Raises
    ------
    TwinInputError
        ``--truth`` when the data carry no ground truth.
    """
    if data.ground_truth is None:
        raise TwinInputError("--truth", "a CXI file without /entry_1/sample_1/ground_truth",
                             "a file written by `twin simulate` (only those carry one)")
    dx = data.truth.pixel_size_m
    if dx is None or not np.isfinite(dx):
        dx = data.object_pixel_m
    tr = data.truth.translations_m
    tr = data.translations_m if tr is None else tr
    probe_px = (data.illumination.shape[-1] if data.illumination is not None
                else data.frames.shape[-1] * data.upsampling)
    return data.ground_truth, float(dx), lit_positions(tr, data.beam_offsets_m), int(probe_px)


def score_data(recon: Product | np.ndarray, data, pixel_size_m: float | None = None,
               split: str | None = None, method: str = "standard") -> Score:
    """:func:`score` of a reconstruction against the ground truth a twin CXI's data carries.

    Parameters
    ----------
    recon : Product or complex array
    data : PtychoData
        Read by :func:`twin.io.cxi.read_cxi` (lazily is fine: frames are not touched).
    pixel_size_m : float, optional
        The reconstruction's pixel where ``recon`` does not say (default: the truth's).
    split, method
        As :func:`score`.
    """
    truth, dx, lit, probe_px = truth_geometry(data)
    if not isinstance(recon, Product):
        recon = Product(np.asarray(recon, dtype=np.complex128), pixel_size_m, None, None, None,
                        "array")
    return score(recon, truth, dx, lit, probe_px, split, method)


def score_files(recon_path: str | Path, truth_path: str | Path,
                pixel_size_m: float | None = None, split: str | None = None,
                method: str = "standard") -> Score:
    """:func:`score_data` of a reconstruction file against a twin CXI file's ground truth.

    Parameters
    ----------
    recon_path : str or Path
        Any layout :func:`twin.io.products.read_product` reads.
    truth_path : str or Path
        A CXI file written by ``twin simulate`` (it must carry ``/entry_1/sample_1/ground_truth``).
    pixel_size_m : float, optional
        The reconstruction's pixel size where its file does not say (default: the truth's).
    split, method
        As :func:`score`.
    """
    if method not in METHODS:
        raise TwinInputError("--method", method, "allowed: standard, biop")
    if split not in SPLITS:
        raise TwinInputError("--split", split, "allowed: even-odd")
    data = read_cxi(truth_path, lazy=True)
    if data.ground_truth is None:
        raise TwinInputError("--truth", str(truth_path),
                             "has no /entry_1/sample_1/ground_truth (only files written by "
                             "`twin simulate` carry one)")
    recon = read_product(recon_path, pixel_size_m)
    return score_data(recon, data, pixel_size_m, split, method)


def write_frc(s: Score, prefix: str | Path) -> tuple[Path, Path]:
    """The FRC curve as ``PREFIX.frc.csv`` and ``PREFIX.frc.png`` (atomically).

    The CSV has one row per ring: ``frequency_per_m``, ``half_period_m`` (1/(2f)), ``frc``,
    ``half_bit``, ``n_points``.

    Parameters
    ----------
    s : Score
        Its ``frc`` curve and half-bit resolution (marked on the plot).
    prefix : str or Path
        Output prefix; the suffixes are appended to its name.

    Returns
    -------
    (Path, Path)
        The CSV and PNG paths.

    Raises
    ------
    TwinInputError
        When either path cannot be an output file.
    """
    prefix = Path(prefix)
    csv_path = prefix.with_name(prefix.name + ".frc.csv")
    png_path = prefix.with_name(prefix.name + ".frc.png")
    f = s.frc
    with atomic_path(csv_path) as tmp, open(tmp, "w", newline="") as fh:
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
    if res is not None:
        word = "better than " if s.frc_resolution_bound else ""
        ax.axvline(0.5 / res * 1e-6, color="k", lw=0.8,
                   label=f"half-bit: {word}{res * 1e9:.3g} nm half period")
    else:
        ax.set_title("unresolved: the curve never leaves the noise", fontsize=8)
    ax.set_xlabel("spatial frequency (1/µm)")
    ax.set_ylabel("correlation")
    ax.set_ylim(-0.1, 1.05)
    ax.legend(fontsize=7)
    fig.tight_layout()
    with atomic_path(png_path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return csv_path, png_path


def _nm(v: float | None, bound: bool, period: str) -> str:
    if v is None:
        return "none (no crossing)"
    word = "better than " if bound else ""
    tail = " (never crosses up to Nyquist: the pixel limit)" if bound else ""
    return f"{word}{v * 1e9:.4g} nm {period}{tail}"


def describe(s: Score) -> list[str]:
    """Human-readable lines of a :class:`Score`, each naming its convention, threshold and
    method.

    Parameters
    ----------
    s : Score
        The score.

    Returns
    -------
    list of str
        Two lines (metrics; registration), a third for an even-odd split.
    """
    pcc = "n/a" if s.pcc_phase is None else f"{s.pcc_phase:.4f}"
    ssim = "n/a" if s.ssim_phase is None else f"{s.ssim_phase:.3f}"
    if s.resolved:
        frc = (f"FRC against the truth: half-bit "
               f"{_nm(s.frc_resolution_m, s.frc_resolution_bound, 'half period 1/(2f)')}, "
               f"FIRE {_nm(s.frc_fire_m, s.frc_resolution_bound, 'full period 1/f')}; 1/7 "
               f"{_nm(s.frc_resolution_7_m, s.frc_resolution_7_bound, 'half period')}")
    else:
        frc = f"UNRESOLVED, no resolution: {s.message}"
    lines = [f"PCC(phase) {pcc}, SSIM {ssim}; {frc}"]
    err = "n/a" if s.phase_rms_error_rad is None else f"{s.phase_rms_error_rad:.3g} rad rms"
    lines.append(f"phase error {err}; registered: {s.transform}, shift {s.shift_px[0]:.2f}, "
                 f"{s.shift_px[1]:.2f} px, phase {s.phase_offset_rad:.3g} rad, ramp "
                 f"{s.phase_ramp_rad_per_px[0]:.3g}, {s.phase_ramp_rad_per_px[1]:.3g} rad/px "
                 f"over {s.region_px[0]}×{s.region_px[1]} px of {s.pixel_size_m * 1e9:.4g} nm")
    sp = s.split
    if sp is not None:
        how = ("the BIOP ImageJ plugin's procedure as coded (not a correlation: see "
               "twin.analysis.biop)" if sp.method == "biop" else "standard FRC")
        head = (f"even-odd split (seed 000's procedure; {how}), half images' pixel "
                f"{sp.pixel_size_m * 1e9:.4g} nm: ")
        if not sp.resolved:
            lines.append(head + "unresolved, no FIRE number")
        else:
            lines.append(head + f"FIRE half-bit {_nm(sp.fire_m, sp.fire_bound, 'full period 1/f')}"
                         f", 1/7 {_nm(sp.fire_7_m, sp.fire_7_bound, 'full period 1/f')}")
    return lines
