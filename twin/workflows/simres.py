"""Resolution measured by the twin on its own simulated data.

A digital twin forecasts from its own simulation. For one scenario (a sweep point) and one seed,
:func:`measure` simulates a representative patch of the scan — the scenario's fluence, detector
mode, scan, motion blur and position errors, with the realistic defaults of
:mod:`twin.workflows.simulate` — reconstructs it with the scenario's algorithm from what a user
would have (the recorded positions and the probe model, not the truth), and measures the
resolution twice:

* ``resolution_simulated_m``: Fourier ring correlation against the ground truth, half-bit
  threshold (van Heel & Schatz 2005);
* ``frc_halves_m``: FRC between the reconstructions of two independent halves of the data
  (a chequerboard split of the scan points: each half keeps its neighbours at √2 steps), the
  measure a beamline has without a ground truth.

:func:`calibrate` fits d(F) = d₀·(F/F₀)^(−k) to points simulated at fluences around the
scenario's F₀ (``resolution.model = "simulated"``): a forecast with no paper anchor.

Results are cached on disk by a hash of everything they depend on (``TWIN_CACHE_DIR``, default
``~/.cache/twin``), so a re-run of a sweep reuses the points it has finished and a later
forecast of the same scenario is instant.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from twin.analysis.laws import Calibration, fit_calibration
from twin.core.errors import TwinInputError
from twin.scenario import Scenario
from twin.workflows.patch import PATCH_POINTS, patch_scenario

#: Version of the measurement: bump when the simulation or the measurement changes meaning, so
#: that stale cached points are not reused. 3: cubic object reads by default (was the Fourier
#: shift of the probe), reconstruction options in the key.
VERSION = 3
#: Version of the points of several beams alone (in their keys only, so the single-beam points
#: stay valid): 1: reconstructed with every beam at its offset (the reconstruction had taken
#: the frames as one beam's).
MULTIBEAM_VERSION = 1


def cache_dir() -> Path:
    """Folder of cached simulated measurements: ``simulated`` under ``TWIN_CACHE_DIR`` (or
    ``~/.cache/twin``)."""
    root = os.environ.get("TWIN_CACHE_DIR") or Path.home() / ".cache" / "twin"
    return Path(root) / "simulated"


#: Measurements shipped with twin for the seed scenarios (``tools/ship_calibrations.py``): the
#: same entries a first run would write into :func:`cache_dir`, computed by this code on a
#: 2-core machine, so that ``twin forecast`` of a seed scenario is instant on a fresh install.
#: Their keys hash the measurement's :data:`VERSION` and every input, so a change to either
#: misses them and the point is simulated again; ``tests/workflows/test_simres.py`` recomputes
#: one of them.
SHIPPED = Path(__file__).resolve().parents[1] / "data" / "simulated"

#: The scenarios that ship with twin (their calibrations are in ``twin/data/simulated``).
SCENARIOS = Path(__file__).resolve().parents[1] / "data" / "scenarios"

#: Fields a calibration's d(F) does not depend on beyond the fluence it is read at (the flux),
#: or that only label it (the seed's noise; a 3D scan's projections, which the 2D patch ignores).
FAMILY_EXCLUDE = {"name": True, "description": True, "sweep": True, "beamtime": True,
                  "run": True, "seed": True, "tomography": True,
                  "beam": {"flux_photons_per_s"}}


def _lookup(key: str) -> dict | None:
    """A cached measurement: the user's cache first, then the shipped entries."""
    for root in (cache_dir(), SHIPPED):
        path = root / f"{key}.json"
        if path.exists():
            try:
                return json.loads(path.read_text())
            except (OSError, json.JSONDecodeError):
                continue
    return None


def _cached(key: str, cls):
    """The cached (or shipped) entry ``key`` as a ``cls``, or None."""
    hit = _lookup(key)
    if hit is None:
        return None
    try:
        return cls(**hit)
    except TypeError:           # an entry of another layout: measure again
        return None


def _key_2d(s: Scenario, seed: int, iterations: int | None, points: int) -> str:
    """Cache key of :func:`measure` of scenario ``s`` (its patch) with ``seed``."""
    ps = patch_scenario(s, points).model_copy(update={"seed": int(seed)})
    return _key(ps, seed, iterations)


def _key_3d(s: Scenario, seed: int) -> str:
    """Cache key of :func:`measure_3d` of scenario ``s`` with ``seed``."""
    return "3d-" + _key(s.model_copy(update={"seed": int(seed)}), seed, s.run.chain_iterations)


def _store(path: Path, value: dict) -> None:
    """Write a cache entry atomically (a reader never sees half of it). A cache that cannot be
    written (read-only home, full disk) costs only the reuse: the result stands, with a
    warning."""
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(value))
        os.replace(tmp, path)
    except OSError as exc:
        import warnings

        warnings.warn(f"twin could not cache a simulated measurement in {path.parent} ({exc}); "
                      "set TWIN_CACHE_DIR to a writable folder to reuse it", stacklevel=2)
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass


#: Fields of a 3D scan's motion and tomography that a 2D patch (one projection, its sample in
#: place) does not depend on: left out of the 2D keys, which were made before they existed.
VOLUME_ONLY = {"tomography": {"method", "wobble_um", "misalignment_um"}}


def _key(s: Scenario, seed: int, iterations: int | None, volume: bool = False) -> str:
    """Hash of everything a measurement depends on: the scenario (less its labels, sweep and
    forecast model, and for a 2D patch the fields of :data:`VOLUME_ONLY`), the seed, and the
    reconstruction options it runs with (``[run]`` can set the iterations and modes)."""
    from twin.geometry import reconstruction_options

    labels = {k: True for k in ("name", "description", "sweep", "run", "resolution",
                                "beamtime")}
    d = s.model_dump(exclude=labels if volume else {**labels, **VOLUME_ONLY})
    opts = asdict(reconstruction_options(s, iterations=iterations))
    parts = [VERSION, d, seed, iterations, opts]
    if s.scan.n_beams > 1:
        parts.append(["multibeam", MULTIBEAM_VERSION])
    blob = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


@dataclass(frozen=True)
class Measurement:
    """One simulated and reconstructed patch.

    Attributes
    ----------
    resolution_simulated_m : float
        FRC half-bit resolution of the reconstruction against the ground truth, metres.
    frc_halves_m : float
        FRC half-bit resolution between the reconstructions of two halves of the data, metres.
    pcc_simulated : float
        Pearson correlation of the aligned reconstructed phase with the true phase.
    fluence_photons_per_m2 : float
        Incident photons per unit area of the projection.
    pixel_size_m : float
        Reconstruction pixel.
    frames : int
        Frames simulated.
    compression_ratio : float
        Raw over bitshuffle-LZ4-compressed size of the simulated frames (detector's dtype).
    unresolved : bool
        The FRC against the truth never reaches the threshold in its searched rings: the
        reconstruction did not converge, and ``resolution_simulated_m`` is only a bound.
    seconds : float
        Wall time of the measurement.
    """

    resolution_simulated_m: float
    frc_halves_m: float
    pcc_simulated: float
    fluence_photons_per_m2: float
    pixel_size_m: float
    frames: int
    compression_ratio: float
    seconds: float
    unresolved: bool = False


def _compression_ratio(counts: np.ndarray) -> float:
    """Raw/compressed size of frames under bitshuffle-LZ4 (the detector's native format)."""
    import h5py
    import hdf5plugin

    import io as _io

    buf = _io.BytesIO()
    with h5py.File(buf, "w") as f:
        ds = f.create_dataset("d", data=counts, chunks=(1, *counts.shape[1:]),
                              **hdf5plugin.Bitshuffle(cname="lz4"))
        raw = counts.nbytes
        stored = ds.id.get_storage_size()
    return float(raw / max(stored, 1))


def _halves(trajectory) -> np.ndarray:
    """Chequerboard split of a raster's points: (N,) bool, True for the first half."""
    line = np.asarray(trajectory.line)
    idx = np.zeros(len(line), int)
    for ln in np.unique(line):
        sel = np.flatnonzero(line == ln)
        idx[sel] = np.arange(len(sel))
    return (line + idx) % 2 == 0


def _subset(data, keep: np.ndarray):
    from dataclasses import replace

    return replace(data, frames=data.frames[keep], translations_m=data.translations_m[keep])


def measure(s: Scenario, seed: int = 0, iterations: int | None = None,
            points: int = PATCH_POINTS, use_cache: bool = True) -> Measurement:
    """Simulate a patch of scenario ``s`` with ``seed``, reconstruct it, measure resolution.

    Parameters
    ----------
    s : Scenario
        The scenario (one sweep point); its patch is :func:`patch_scenario`.
    seed : int
        Seed of the simulation (noise, position errors, phantom).
    iterations : int, optional
        Reconstruction iterations (default: the scenario's).
    points : int
        Scan points of the patch.
    use_cache : bool
        Reuse (and store) the result in :func:`cache_dir`.
    """
    import time

    from twin.analysis import truth
    from twin.geometry import Geometry, reconstruction_options
    import twin.recon as engines
    from twin.workflows import simulate

    ps = patch_scenario(s, points).model_copy(update={"seed": int(seed)})
    key = _key_2d(s, seed, iterations, points)
    path = cache_dir() / f"{key}.json"
    hit = _cached(key, Measurement) if use_cache else None
    if hit is not None:
        return hit
    t0 = time.perf_counter()
    p = simulate.plan(ps)
    counts = np.concatenate([c for _, c in simulate.frames(p)])
    p._device.clear()               # a GPU's copies of the slabs and probes: not needed now
    g = Geometry.from_scenario(ps)
    data = p.to_data(counts)
    true_tr = data.truth.translations_m
    opts = reconstruction_options(ps, iterations=iterations)
    full = engines.reconstruct(data, opts)
    probe_px = full.probe.shape[-1]
    # the region compared: where every beam's windows went
    lit = truth.lit_positions(true_tr, p.beam_offsets_m)
    c = truth.compare(full.object, p.object, full.pixel_size_m, lit, probe_px)
    first = _halves(p.trajectory)
    ra = engines.reconstruct(_subset(data, first), opts)
    rb = engines.reconstruct(_subset(data, ~first), opts)
    ch = truth.compare(ra.object, rb.object, full.pixel_size_m, lit, probe_px)
    fluence = g.photons_per_frame * p.n_frames * g.n_beams / (g.fov_x_m * g.fov_y_m)
    m = Measurement(_resolution(c.frc, g.beam_diameter_m, against_truth=True),
                    _resolution(ch.frc, g.beam_diameter_m),
                    float(c.pcc_phase),
                    float(fluence), float(full.pixel_size_m), int(p.n_frames),
                    _compression_ratio(counts.astype(_stored_dtype(g))),
                    time.perf_counter() - t0,
                    _resolution(c.frc, g.beam_diameter_m, against_truth=True, bound=True))
    if use_cache:
        _store(path, asdict(m))
    return m


def _resolution(frc, beam_diameter_m: float, against_truth: bool = False,
                bound: bool = False):
    """Half-bit resolution, searched only at periods shorter than the beam, from the first ring
    where the curve reaches the threshold significantly (``from_rise`` of
    :meth:`twin.analysis.resolution.FourierCorrelation.crossing`).

    Against a noise-free truth the correlation of the whole reconstruction is
    C_ref = √(2·C/(1 + C)) for the correlation C between two half-data reconstructions
    (Rosenthal & Henderson 2003), so the half-bit threshold T of the halves becomes
    √(2T/(1 + T)) against the truth; the two measurements then estimate the same resolution.

    Over a patch a few beams wide, ptychography pins the object's phase down at periods below the
    probe's size (the overlap constraint); longer periods carry the slow phase drifts of a small
    field, whose dips below the threshold are not the resolution. Nor are the rings before the
    curve first reaches the threshold: a Siemens star's ring f lives at radius N/(2πf), so a
    field of inscribed radius R holds no star at f < N/(2πR) and the curve there sees only the
    slow errors (book/star_frc.md). ``bound``: the curve never reaches the threshold.
    """
    from dataclasses import replace

    if against_truth:
        t = frc.half_bit
        frc = replace(frc, half_bit=np.sqrt(2 * t / (1 + t)))
    n_bins = len(frc.correlation)
    skip = max(3, min(math.ceil(2 * n_bins * frc.pixel_size_m / beam_diameter_m - 0.5),
                      n_bins - 2))
    if bound:       # never at the threshold in the searched rings
        return not frc.crossing("half_bit", skip, from_rise=True).resolved
    return float(frc.resolution_m("half_bit", skip_rings=skip, from_rise=True))


@dataclass(frozen=True)
class Measurement3D:
    """A small ptycho-tomography patch at N angles (:func:`measure_3d`).

    Attributes
    ----------
    fsc_resolution_m : float
        Fourier shell correlation half-bit resolution between the volumes of the even and the
        odd angles (what a beamline measures), metres.
    pcc_volume : float
        Correlation of the reconstructed δ with the phantom's, same algorithm.
    n_angles : int
    seconds : float
    """

    fsc_resolution_m: float
    pcc_volume: float
    n_angles: int
    seconds: float


def measure_3d(s: Scenario, seed: int = 0, use_cache: bool = True) -> Measurement3D:
    """Simulate a small volume patch of 3D scenario ``s`` at its N angles and measure the FSC.

    The patch is :func:`twin.workflows.ptychotomo.preview_scenario` (the scenario's pixel,
    detector, steps and fluence per projection on the ``[run] chain_fov_um`` field, the sample
    scaled to fit), each projection simulated and reconstructed in this process. It measures
    how the dose per projection and the number of projections set the 3D resolution of such a
    patch; the sample's real width enters the forecast through Crowther's limit. The
    projections are reconstructed with :func:`~twin.workflows.ptychotomo.run_chain`'s default
    algorithm (rPIE), ``[run] chain_iterations`` iterations each.

    Parameters
    ----------
    s : Scenario
        A 3D scenario with a given count N ≥ 2 of ``tomography.n_projections``.
    seed : int
        Seed of the simulation (noise, position errors, phantom).
    use_cache : bool
        Reuse (and store) the result in :func:`cache_dir`.

    Raises
    ------
    TwinInputError
        ``tomography.n_projections`` is not a count ≥ 2 (0, 1 or ``"crowther"``).
    """
    import time

    from twin.workflows import ptychotomo

    n = s.tomography.n_projections
    if not isinstance(n, int) or n < 2:
        raise TwinInputError("tomography.n_projections", n,
                             "a 3D simulated point needs a number of projections ≥ 2")
    ps = s.model_copy(update={"seed": int(seed)})
    key = _key_3d(s, seed)
    path = cache_dir() / f"{key}.json"
    hit = _cached(key, Measurement3D) if use_cache else None
    if hit is not None:
        return hit
    t0 = time.perf_counter()
    cr = ptychotomo.run_chain(ps, n_angles=n, fov_um=s.run.chain_fov_um,
                              iterations=s.run.chain_iterations, n_workers=0)
    m = Measurement3D(float(cr.fsc_resolution_m), float(cr.pcc_volume), n,
                      time.perf_counter() - t0)
    if use_cache:
        _store(path, asdict(m))
    return m


def _stored_dtype(g) -> type:
    det = g.detector
    return np.float32 if det.float8 else np.uint16 if det.max_counts <= 65535 else np.uint32


def summarise(ms: list[Measurement]) -> dict:
    """Columns of a sweep row from the measurements of its seeds (mean; std over seeds).

    Non-finite values are left out; the resolution is averaged over the seeds that converged
    (over all where none did); a standard deviation of fewer than two values is NaN.

    Parameters
    ----------
    ms : list of Measurement
        One per seed, at least one.

    Returns
    -------
    dict
        ``resolution_simulated_m`` (and ``_std_m``), ``frc_halves_m``, metres;
        ``pcc_simulated``; ``compression_ratio_simulated``; ``unresolved`` (no seed
        converged); ``seeds_resolved``; ``seeds_simulated``.
    """
    # a seed whose reconstruction did not converge reports a bound: where another seed
    # converged, the bound is not averaged into the resolution
    conv = [m for m in ms if not m.unresolved] or ms

    def stat(name):
        """(mean, sample std) of :class:`Measurement` field ``name``, NaN where undefined.

        Parameters
        ----------
        name : str
        """
        v = np.array([getattr(m, name) for m in (conv if name == "resolution_simulated_m"
                                                  else ms)], float)
        v = v[np.isfinite(v)]
        if len(v) == 0:
            return math.nan, math.nan
        return float(v.mean()), (float(v.std(ddof=1)) if len(v) > 1 else math.nan)

    d, d_sd = stat("resolution_simulated_m")
    return {"resolution_simulated_m": d, "resolution_simulated_std_m": d_sd,
            "frc_halves_m": stat("frc_halves_m")[0], "pcc_simulated": stat("pcc_simulated")[0],
            "compression_ratio_simulated": stat("compression_ratio")[0],
            "unresolved": all(m.unresolved for m in ms),
            "seeds_resolved": sum(not m.unresolved for m in ms),
            "seeds_simulated": len(ms)}


def measure_many(scenarios: list[Scenario], seeds: int = 1, scheduler: str | None = None,
                 n_workers: int | None = None, progress: bool = False,
                 iterations: int | None = None, points: int = PATCH_POINTS,
                 volume: bool = False) -> list[dict]:
    """One :func:`summarise` row per scenario (in order) of its measurements over ``seeds``
    seeds, on Dask.

    One Dask task per scenario and seed that is not cached (cached points are read here, and
    no cluster starts when all are); results are stored in the cache.

    Parameters
    ----------
    scenarios : list of Scenario
        The points measured.
    seeds : int
        Seeds per point: the scenario's seed + 0, 1, … ``seeds − 1`` (TwinInputError,
        field ``--seeds``, below 1).
    scheduler : str or None
        A Dask scheduler's address (None: a local cluster).
    n_workers : int or None
        Local workers (None: min(2, CPU cores)).
    progress : bool
        Show a progress bar.
    iterations, points
        As :func:`measure`'s.
    volume : bool
        Also :func:`measure_3d` (projection-count sweeps), adding
        ``resolution_3d_simulated_m``, ``resolution_3d_simulated_std_m`` (metres) and
        ``pcc_3d_simulated``.
    """
    from twin.workflows.cluster import map_ordered

    if seeds < 1:
        raise TwinInputError("--seeds", seeds, "at least 1")
    jobs = [(i, sc, sc.seed + k) for i, sc in enumerate(scenarios) for k in range(seeds)]
    results: list = [_cached_job(sc, seed, iterations, points, volume) for _, sc, seed in jobs]
    todo = [j for j, r in enumerate(results) if r is None]
    if todo:
        n = len(todo)
        done = map_ordered(_measure_job, [jobs[j][1] for j in todo], [jobs[j][2] for j in todo],
                           [iterations] * n, [points] * n, [volume] * n, scheduler=scheduler,
                           n_workers=n_workers or min(2, os.cpu_count() or 1),
                           progress=progress, desc="simulate+reconstruct", unit="pt")
        for j, r in zip(todo, done):
            results[j] = r
    per: list[list] = [[] for _ in scenarios]
    for (i, _, _), m in zip(jobs, results):
        per[i].append(m)
    rows = []
    for ms in per:
        row = summarise([m[0] for m in ms])
        if volume:
            v = np.array([m[1].fsc_resolution_m for m in ms], float)
            row["resolution_3d_simulated_m"] = float(v.mean())
            row["resolution_3d_simulated_std_m"] = (float(v.std(ddof=1)) if len(v) > 1
                                                    else math.nan)
            row["pcc_3d_simulated"] = float(np.mean([m[1].pcc_volume for m in ms]))
        rows.append(row)
    return rows


def _cached_job(s: Scenario, seed: int, iterations, points: int, volume: bool):
    """:func:`_measure_job`'s result from the cache, or None if any part of it is missing."""
    m2 = _cached(_key_2d(s, seed, iterations, points), Measurement)
    if m2 is None or not volume:
        return None if m2 is None else (m2, None)
    m3 = _cached(_key_3d(s, seed), Measurement3D)
    return None if m3 is None else (m2, m3)


def _measure_job(s: Scenario, seed: int, iterations, points: int, volume: bool):
    """One Dask task: the 2D patch, and with ``volume`` the 3D patch at the scenario's N."""
    m2 = measure(s, seed, iterations, points)
    return (m2, measure_3d(s, seed) if volume else None)


#: Fluence factors around the scenario's at which :func:`calibrate` simulates.
CALIBRATION_FACTORS = (0.25, 0.5, 1.0, 2.0, 4.0)


def missing_keys(s: Scenario, seeds: int = 1, factors=CALIBRATION_FACTORS,
                 points: int = PATCH_POINTS) -> set[str]:
    """Keys of :func:`calibrate`'s simulated points that are neither cached nor shipped.

    Parameters
    ----------
    s : Scenario
        The scenario calibrated.
    seeds : int
        Seeds per fluence (the scenario's seed + 0 … ``seeds − 1``).
    factors : sequence of float
        Flux factors of the points.
    points : int
        Scan points of each patch.
    """
    flux = s.beam.flux_photons_per_s
    out = set()
    for f in factors:
        sc = s.with_values({"beam.flux_photons_per_s": flux * f})
        for k in range(seeds):
            key = _key_2d(sc, sc.seed + k, None, points)
            if _lookup(key) is None:
                out.add(key)
    return out


def missing_points(s: Scenario, seeds: int = 1, factors=CALIBRATION_FACTORS,
                   points: int = PATCH_POINTS) -> int:
    """How many of :func:`calibrate`'s simulated points are neither cached nor shipped.

    Parameters
    ----------
    s, seeds, factors, points
        As :func:`missing_keys`'s.
    """
    return len(missing_keys(s, seeds, factors, points))


def calibrate(s: Scenario, seeds: int = 1, factors=CALIBRATION_FACTORS,
              scheduler: str | None = None, progress: bool = False,
              n_workers: int | None = None, points: int = PATCH_POINTS) -> Calibration:
    """Fit d(F) (:func:`twin.analysis.laws.fit_calibration`) to points simulated at fluences
    ``factors`` × the scenario's (flux scaled).

    Points that did not converge (or gave no number) are bounds, and points where some seed
    failed are kept but not fitted; the compression ratio is the factor-1 point's.

    Parameters
    ----------
    s : Scenario
        The scenario; its fluence F₀ (``Geometry.fluence_per_m2``, photons/m²) anchors the fit.
    seeds, factors, points
        As :func:`missing_keys`'s.
    scheduler, n_workers, progress
        As :func:`measure_many`'s.
    """
    from twin.geometry import Geometry

    flux = s.beam.flux_photons_per_s
    pts = [s.with_values({"beam.flux_photons_per_s": flux * f}) for f in factors]
    rows = measure_many(pts, seeds=seeds, scheduler=scheduler, progress=progress,
                        n_workers=n_workers, points=points)
    f0 = Geometry.from_scenario(s).fluence_per_m2
    order = np.argsort(factors)
    rows = [rows[i] for i in order]
    fl = np.array([f0 * factors[i] for i in order], float)
    d = np.array([r["resolution_simulated_m"] for r in rows], float)
    # a point whose FRC never rises above the threshold where the search starts (the
    # reconstruction did not converge) is a bound, not a measurement
    bound = np.array([r["unresolved"] for r in rows], bool)
    bound |= ~np.isfinite(d)                      # no number: not a measurement either
    # a point where some seed failed is a result, kept and shown (the cliff), never fitted
    every = np.array([r.get("seeds_resolved", seeds) >= r.get("seeds_simulated", seeds)
                      for r in rows], bool) & ~bound
    d_std = np.array([r.get("resolution_simulated_std_m", math.nan) for r in rows], float)
    # the detector's frames at the scan's own fluence, as the twin simulated them: their
    # bitshuffle-LZ4 ratio sizes the compressed data (no further simulation)
    at_f0 = [r for i, r in zip(order, rows) if math.isclose(factors[i], 1.0)]
    ratio = (float(at_f0[0].get("compression_ratio_simulated", math.nan)) if at_f0
             else math.nan)
    return fit_calibration(fl, d, bound, every, float(f0), seeds, d_std, ratio)
