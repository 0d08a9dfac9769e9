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

from twin.core.errors import TwinInputError
from twin.scenario import Scenario

#: Scan points of a simulated patch (about 16 × 16): enough overlap and area for an FRC, small
#: enough that the quickstart's 9-point grid runs in minutes on a laptop.
PATCH_POINTS = 256
#: Version of the measurement: bump when the simulation or the measurement changes meaning, so
#: that stale cached points are not reused. 3: cubic object reads by default (was the Fourier
#: shift of the probe), reconstruction options in the key.
VERSION = 3
#: Version of the points of several beams alone (in their keys only, so the single-beam points
#: stay valid): 1: reconstructed with every beam at its offset (the reconstruction had taken
#: the frames as one beam's).
MULTIBEAM_VERSION = 1


def cache_dir() -> Path:
    """Folder of cached simulated measurements (``TWIN_CACHE_DIR`` or ``~/.cache/twin``)."""
    root = os.environ.get("TWIN_CACHE_DIR") or Path.home() / ".cache" / "twin"
    return Path(root) / "simulated"


#: Measurements shipped with twin for the seed scenarios (``tools/ship_calibrations.py``): the
#: same entries a first run would write into :func:`cache_dir`, computed by this code on a
#: 2-core machine, so that ``twin forecast`` of a seed scenario is instant on a fresh install.
#: Their keys hash the measurement's :data:`VERSION` and every input, so a change to either
#: misses them and the point is simulated again; ``tests/workflows/test_simres.py`` recomputes
#: one of them.
SHIPPED = Path(__file__).resolve().parents[1] / "data" / "simulated"


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


def patch_scenario(s: Scenario, points: int = PATCH_POINTS, g=None) -> Scenario:
    """The 2D patch of scenario ``s`` that is simulated for one measurement.

    Same beam, optics, detector, steps, rates and errors; one projection (angle 0), so its
    fluence per projection is the scenario's. Its field follows ``resolution.patch``:
    ``"points"``, a square of about ``points`` scan points at the scan's centre (never larger
    than the scan); ``"scan"``, :func:`scan_patch_field_um` (``g``: the scenario's geometry,
    built if not given).
    """
    sc = s.scan
    if s.resolution.patch == "scan":
        fov_x, fov_y = scan_patch_field_um(s, g)
    else:
        side = max(4, math.ceil(math.sqrt(points)))
        fov_x = min(sc.fov_x_um, side * sc.fast_step_um)
        fov_y = min(sc.fov_y_um, side * sc.slow_step_um * sc.overlap_relaxation * sc.n_beams)
    return s.with_values({"scan.fov_x_um": fov_x, "scan.fov_y_um": fov_y,
                          "tomography.n_projections": 0, "run.frames": None})


#: ``resolution.patch = "scan"``: the patch spans this many beam diameters D in each direction
#: (each beam's band, with several beams). The FRC searches periods up to D (its lowest
#: searched ring, :func:`_resolution`), and never its three lowest rings: over a side L that
#: ring is ring L/D, so the region dosed as the scan is must span 3·D for it to be searched;
#: a scan point's beam reaches D/2 beyond it, so the dose falls off over the outer D/2 on each
#: side: 3·D + D.
PATCH_DIAMETERS = 4
#: The smallest field (per beam band) whose patch can be representative: three diameters.
MIN_DIAMETERS = 3


def _points_like(n_full: int, n_want: int) -> int:
    """Scan points along one direction of the patch: at least ``n_want``, of the same parity as
    the scan's ``n_full`` (so the patch's centre sits where the scan's does, on a point or
    between two), never more than ``n_full``."""
    n = max(1, n_want)
    n += (n - n_full) % 2
    return min(n, n_full)


def scan_patch_field_um(s: Scenario, g=None) -> tuple[float, float]:
    """Field (x, y), µm, of the ``resolution.patch = "scan"`` patch of scenario ``s``.

    :data:`PATCH_DIAMETERS` beam diameters in each direction (each beam's band in y), as whole
    scan points at the scan's own steps and overlap, of the scan's parity; the scan's own field
    where it is smaller.

    Raises
    ------
    TwinInputError
        A field (a beam's band in y) smaller than :data:`MIN_DIAMETERS` beam diameters: no
        patch of it is representative of a scan.
    """
    from twin.geometry import Geometry

    g = g or Geometry.from_scenario(s)
    sc = s.scan
    d_um = g.beam_diameter_m * 1e6
    minimum = MIN_DIAMETERS * d_um
    for field, value, per in (("scan.fov_x_um", sc.fov_x_um, 1),
                              ("scan.fov_y_um", sc.fov_y_um, sc.n_beams)):
        if value / per < minimum * (1 - 1e-9):
            beams = f" ({per} beams: each beam's band)" if per > 1 else ""
            raise TwinInputError(field, value, (
                f"resolution.patch = \"scan\" needs a field of at least {MIN_DIAMETERS} beam "
                f"diameters, {minimum * per:.4g} µm{beams} (beam diameter {d_um:.4g} µm): a "
                "smaller field cannot give a representative patch"))
    want = PATCH_DIAMETERS * d_um
    nx = _points_like(g.frames_per_line, math.ceil(want / sc.fast_step_um * (1 - 1e-9)))
    slow_um = sc.slow_step_um * sc.overlap_relaxation
    ny = _points_like(g.lines_per_beam, math.ceil(want / slow_um * (1 - 1e-9)))
    # (n − ½) steps: ⌈fov/step⌉ = n, away from the rounding of a whole number of steps
    fov_x = sc.fov_x_um if nx >= g.frames_per_line else (nx - 0.5) * sc.fast_step_um
    fov_y = (sc.fov_y_um if ny >= g.lines_per_beam
             else (ny * sc.n_beams - 0.5) * slow_um)
    return float(fov_x), float(fov_y)


def _disc_count(n_x: int, n_y: int, step_x_m: float, step_y_m: float,
                radius_m: float) -> int:
    """Points of an n_x × n_y raster (centred on the origin) within ``radius_m`` of it."""
    rows = min(n_y, 2 * math.ceil(radius_m / step_y_m) + 3)
    rows += (n_y - rows) % 2                              # keep the raster's own parity
    y = (np.arange(rows) - (n_y - 1) / 2 + (n_y - rows) / 2) * step_y_m
    half = np.sqrt(np.clip(radius_m ** 2 - y ** 2, 0.0, None))
    x0 = (n_x - 1) / 2
    # columns i with |(i − x0)·Δx| ≤ half, i in [0, n_x)
    lo = np.clip(np.ceil(x0 - half / step_x_m - 1e-9), 0, n_x)
    hi = np.clip(np.floor(x0 + half / step_x_m + 1e-9), -1, n_x - 1)
    return int(np.clip(hi - lo + 1, 0, None)[np.abs(y) <= radius_m].sum())


@dataclass(frozen=True)
class PatchSummary:
    """What the calibration of a scenario simulates, against the scan it stands for.

    Attributes
    ----------
    size_m : (float, float)
        The patch's field, x and y, metres.
    frames : int
        Scan points of the patch (frames; all beams share a frame).
    fluence_ratio : float
        Photons per unit area at the patch's centre over those at the centre of the scenario's
        own scan: the scan points whose beam (a disc of the beam's diameter) covers the centre,
        counted on both rasters (1: the patch is dosed as the scan is).
    """

    size_m: tuple
    frames: int
    fluence_ratio: float


def patch_summary(s: Scenario, g=None, points: int = PATCH_POINTS) -> PatchSummary:
    """The patch :func:`patch_scenario` simulates for scenario ``s`` (with geometry ``g``)."""
    from twin.geometry import Geometry

    g = g or Geometry.from_scenario(s)
    gp = Geometry.from_scenario(patch_scenario(s, points, g))
    r = g.beam_diameter_m / 2

    def at_centre(geo) -> int:
        # the lines of all beams together (each beam scans its own band of lines_per_beam)
        return _disc_count(geo.frames_per_line, geo.lines_per_beam * geo.n_beams,
                           geo.fast_step_m, geo.slow_step_m, r)

    full = at_centre(g)
    ratio = at_centre(gp) / full if full else math.nan
    return PatchSummary((gp.fov_x_m, gp.fov_y_m), int(gp.frames_per_projection), float(ratio))


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
    :meth:`twin.analysis.metrics.FourierCorrelation.crossing`).

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
    patch; the sample's real width enters the forecast through Crowther's limit.
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
    """Columns of a sweep row from the measurements of its seeds (mean; std over seeds)."""
    # a seed whose reconstruction did not converge reports a bound: where another seed
    # converged, the bound is not averaged into the resolution
    conv = [m for m in ms if not m.unresolved] or ms

    def stat(name):
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
    """:func:`summarise`\\ d measurements of each scenario over ``seeds`` seeds, on Dask.

    One Dask task per scenario and seed; cached points are not recomputed (each task looks its
    result up first). ``volume``: also :func:`measure_3d` (projection-count sweeps), adding
    ``resolution_3d_simulated_m``, ``resolution_3d_simulated_std_m`` and ``pcc_3d_simulated``.
    """
    from twin.workflows.cluster import map_ordered

    if seeds < 1:
        raise TwinInputError("--seeds", seeds, "at least 1")
    jobs = [(i, sc, sc.seed + k) for i, sc in enumerate(scenarios) for k in range(seeds)]
    # points found in the cache are read here; only the others go to Dask (no cluster at all
    # when every point is cached)
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


@dataclass(frozen=True)
class Calibration:
    """d(F) fitted to simulated points (``resolution.model = "simulated"``).

    On the dose-limited side d(F) = d₀·(F/F₀)^(−k). Where more photons per frame make the
    twin's own points worse (count-rate losses, counter overflow: a detector limit), the curve
    turns over at ``f_turn_photons_per_m2``, the last dose-limited point, and above it follows
    d_t·(F/F_t)^(−k_high) with k_high < 0 through the worse points: the power law of the
    dose-limited side is never extrapolated into the detector-limited side.

    Attributes
    ----------
    d0_m, d0_std_m : float
        Dose-limited law at the scenario's fluence F₀ and its standard error, metres.
    k, k_std : float
        Dose-limited exponent and its standard error (Howells et al. 2009 predict k = 1/4 in
        the dose-limited regime; k → 0 where the pixel or the probe limit it).
    f0_photons_per_m2 : float
        The scenario's fluence per projection.
    points : list of (fluence, resolution)
        The simulated points.
    f_turn_photons_per_m2 : float
        Turnover fluence (inf: no turnover within the simulated points).
    k_high : float
        Exponent above the turnover (NaN without one).
    resolved : list of bool
        Per point: the reconstruction converged for at least one seed (False: a bound).
    seeds : int
        Seeds simulated per fluence.
    all_resolved : list of bool
        Per point: every seed's reconstruction converged. The law is fitted over these only.
    """

    d0_m: float
    d0_std_m: float
    k: float
    k_std: float
    f0_photons_per_m2: float
    points: list
    f_turn_photons_per_m2: float = math.inf
    k_high: float = math.nan
    resolved: list = ()
    compression_ratio: float = math.nan
    seeds: int = 1
    all_resolved: list = ()
    source: str = ""            # another scenario's calibration, read at this one's fluence

    def resolved_fluences(self) -> list:
        """Fluences of the points whose reconstruction converged (all, if not recorded)."""
        flags = list(self.resolved) or [True] * len(self.points)
        return [f for (f, _), ok in zip(self.points, flags) if ok]

    def fully_resolved_fluences(self) -> list:
        """Fluences at which every seed's reconstruction converged."""
        flags = list(self.all_resolved) or list(self.resolved) or [True] * len(self.points)
        return [f for (f, _), ok in zip(self.points, flags) if ok]

    def cliff_fluence(self) -> float:
        """The lowest simulated fluence at which every seed resolves, above the highest one
        at which some seed failed (NaN where no point below a resolved one failed): below it,
        the curve is a cliff, not a plateau, and the law is not used."""
        return cliff_fluence([f for f, _ in self.points],
                             list(self.all_resolved) or list(self.resolved)
                             or [True] * len(self.points))

    def resolution_m(self, fluence_photons_per_m2):
        """The calibrated d at fluence F (vectorised), both sides of a turnover."""
        return simulated_law(np.asarray(fluence_photons_per_m2, float), self.d0_m,
                             self.f0_photons_per_m2, self.k, self.f_turn_photons_per_m2,
                             self.k_high)


def cliff_fluence(fluences, all_resolved) -> float:
    """The cliff of a calibration: the lowest fluence at which every seed resolves, above the
    highest fluence at which some seed failed while a higher fluence resolved in every seed.

    Parameters
    ----------
    fluences : sequence of float
        Simulated fluences, photons/m².
    all_resolved : sequence of bool
        Per fluence: every seed's reconstruction converged.

    Returns
    -------
    float
        The cliff fluence, or NaN where no failure lies below a fully resolved point (a failure
        at the highest fluences is the detector's turnover, not a cliff).
    """
    order = np.argsort(np.asarray(fluences, float))
    fl = np.asarray(fluences, float)[order]
    ok = np.asarray(all_resolved, bool)[order]
    good = np.flatnonzero(ok)
    if len(good) == 0:
        return math.nan
    failed_below = np.flatnonzero(~ok[:good[-1]])
    if len(failed_below) == 0:
        return math.nan
    return float(fl[good[good > failed_below[-1]][0]])


def simulated_law(f, d0, f0, k, f_turn=math.inf, k_high=math.nan):
    """d(F) of a :class:`Calibration` from its parameters, elementwise over arrays of any of
    them (the forecast evaluates a sweep's points at once): d₀·(F/F₀)^(−k) up to ``f_turn``,
    d_t·(F/F_t)^(−k_high) above it."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        low = d0 * (f / f0) ** -k
        d_turn = d0 * (f_turn / f0) ** -k
        return np.where(f > f_turn, d_turn * (f / f_turn) ** -k_high, low)


#: Relative margin by which a simulated point must be worse than the best point at a lower
#: fluence to mark the turnover into a detector-limited regime: twice the largest seed-to-seed
#: scatter measured at a seed scenario's own fluence (three seeds each: Siemens star 4.5 %,
#: 3 kHz brain 15 %), so seed noise alone rarely triggers it with one seed per fluence.
TURNOVER_MARGIN = 0.3


def dose_limited_points(d: np.ndarray, bound: np.ndarray) -> int:
    """How many of the points (sorted by fluence) lie on the dose-limited side.

    Points are ``d`` (resolutions) with ``bound`` (the reconstruction did not converge: a lower
    bound). Unconverged points below the first resolved one are starved of photons and stay on
    the dose side (they are left out of the fit); the side ends before the first point — a
    resolved one worse than the best before it by :data:`TURNOVER_MARGIN`, or an unconverged
    one — above a resolved point. Returns the number of points on the dose side (len(d): no
    turnover).
    """
    best = math.inf
    for i, (di, bi) in enumerate(zip(d, bound)):
        if bi:
            if math.isfinite(best):
                return i
            continue
        if di > best * (1 + TURNOVER_MARGIN):
            return i
        best = min(best, float(di))
    return len(d)


def fit_power_law(fluence: np.ndarray, d: np.ndarray, f0: float) -> tuple[float, float,
                                                                         float, float]:
    """Least-squares fit of log d = log d₀ − k·log(F/F₀): (d₀, σ(d₀), k, σ(k))."""
    x = np.log(np.asarray(fluence, float) / f0)
    y = np.log(np.asarray(d, float))
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if len(x) < 2 or np.ptp(x) == 0:
        raise ValueError("need simulated points at two or more fluences")
    a = np.stack([np.ones_like(x), -x], axis=1)
    coef, *_ = np.linalg.lstsq(a, y, rcond=None)
    resid = y - a @ coef
    dof = max(len(x) - 2, 1)
    # two points fit exactly: their spread says nothing about the error (NaN, not 0)
    s2 = float(resid @ resid) / dof if len(x) > 2 else math.nan
    cov = s2 * np.linalg.inv(a.T @ a)
    d0 = float(np.exp(coef[0]))
    return d0, d0 * float(np.sqrt(cov[0, 0])), float(coef[1]), float(np.sqrt(cov[1, 1]))


#: Fluence factors around the scenario's at which :func:`calibrate` simulates.
CALIBRATION_FACTORS = (0.25, 0.5, 1.0, 2.0, 4.0)


def missing_keys(s: Scenario, seeds: int = 1, factors=CALIBRATION_FACTORS,
                 points: int = PATCH_POINTS) -> set[str]:
    """Keys of :func:`calibrate`'s simulated points that are neither cached nor shipped."""
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
    """How many of :func:`calibrate`'s simulated points are neither cached nor shipped."""
    return len(missing_keys(s, seeds, factors, points))


def calibrate(s: Scenario, seeds: int = 1, factors=CALIBRATION_FACTORS,
              scheduler: str | None = None, progress: bool = False,
              n_workers: int | None = None, points: int = PATCH_POINTS) -> Calibration:
    """Fit d(F) from points simulated at fluences ``factors`` × the scenario's (flux scaled)."""
    flux = s.beam.flux_photons_per_s
    pts = [s.with_values({"beam.flux_photons_per_s": flux * f}) for f in factors]
    rows = measure_many(pts, seeds=seeds, scheduler=scheduler, progress=progress,
                        n_workers=n_workers, points=points)
    from twin.workflows.forecast import fluence_per_m2

    f0 = fluence_per_m2(s)
    order = np.argsort(factors)
    fl = np.array([f0 * factors[i] for i in order], float)
    d = np.array([rows[i]["resolution_simulated_m"] for i in order], float)
    # a point whose FRC never rises above the threshold where the search starts (the
    # reconstruction did not converge) is a bound, not a measurement
    bound = np.array([rows[i]["unresolved"] for i in order], bool)
    bound |= ~np.isfinite(d)                      # no number: not a measurement either
    # a point where some seed failed is a result, kept and shown (the cliff), never fitted
    every = np.array([rows[i].get("seeds_resolved", seeds) >= rows[i].get(
        "seeds_simulated", seeds) for i in order], bool) & ~bound
    if len(np.unique(fl[~bound])) < 2:
        raise TwinInputError("resolution.model", "simulated", (
            f"the reconstruction did not converge at {int(bound.sum())} of {len(bound)} "
            "calibration fluences (too few photons per frame?): no resolution to fit"))
    n_dose = dose_limited_points(d, bound)
    low = np.arange(len(d)) < n_dose
    use = low & every
    if not use.any():           # no dose-side point resolved in every seed: the partial ones
        use = low & ~bound
    if len(np.unique(fl[use])) >= 2:
        d0, d0_sd, k, k_sd = fit_power_law(fl[use], d[use], f0)
        # with several seeds, the spread of the point at F0 over them bounds the error from
        # below: a fit through few points can pass closer to their means than they are known
        at = np.flatnonzero(use & np.isclose(fl, f0, rtol=1e-9))
        if seeds > 1 and len(at):
            sd = float(rows[order[at[0]]]["resolution_simulated_std_m"])
            d0_sd = float(np.fmax(d0_sd, sd / math.sqrt(seeds)))      # NaN: the other
    else:           # one dose-limited fluence: no slope to fit, the curve is flat up to it
        d0, d0_sd, k, k_sd = float(np.exp(np.mean(np.log(d[use])))), math.nan, 0.0, math.nan
    f_turn, k_high = math.inf, math.nan
    if n_dose < len(d):
        f_turn = float(fl[use][-1])
        d_turn = d0 * (f_turn / f0) ** (-k)
        hi = ~low & np.isfinite(d) & (fl > f_turn)
        # through (F_t, d_t), least squares in log–log over the worse points (an unconverged
        # point enters with its bound: the curve is at least that steep)
        x = np.log(fl[hi] / f_turn)
        y = np.log(d[hi] / d_turn)
        k_high = min(-float(x @ y / (x @ x)), 0.0) if len(x) else 0.0
    # the detector's frames at the scan's own fluence, as the twin simulated them: their
    # bitshuffle-LZ4 ratio sizes the compressed data (no further simulation)
    at_f0 = [i for i, f in enumerate(factors) if math.isclose(f, 1.0)]
    ratio = (float(rows[at_f0[0]].get("compression_ratio_simulated", math.nan)) if at_f0
             else math.nan)
    return Calibration(d0, d0_sd, k, k_sd, float(f0),
                       [(float(a), float(b)) for a, b in zip(fl, d)], f_turn, k_high,
                       [bool(b) for b in ~bound], ratio, seeds, [bool(b) for b in every])
