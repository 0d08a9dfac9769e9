"""A whole ptycho-tomography experiment from the command line, one Dask task per projection.

``twin simulate SCENARIO_3D.toml -o OUT.h5`` (:func:`simulate_experiment`) writes every
projection of a 3D scenario as a CXI file (CONTRACTS §3) and a master file that links them;
``twin reconstruct OUT.h5 -o STACK.h5``
(:func:`twin.workflows.experiment_recon.reconstruct_experiment`) reconstructs each linked
projection and writes the Data Exchange stack (CONTRACTS §5) that ``twin tomo`` reads.

Layout on disk (all paths inside the master are relative, so the pair moves as a whole)::

    OUT.h5                                  the master file
    OUT_projections/projection_00000.cxi    projection 0 of the scenario's angles
    OUT_projections/projection_00001.cxi    ...

The CXI of projection *i* is named after *i*, its index among the scenario's
``tomography.n_projections`` angles (at least five digits), whatever ``--projections`` selects,
so runs over different ranges share one directory, and the master file links every finished
projection there (a run over ``--projections 2:4`` after one over ``0:2`` links all four).
The master file holds:

``/entry_1/projection_K``
    an HDF5 external link to ``/entry_1`` of the K-th selected projection's CXI
    (K = 0 … n−1, in the order of ``theta``): ``/entry_1/projection_0/data_1/data`` are its frames;
``/entry_1/theta``
    (n,) float64, the projections' angles in degrees;
``/entry_1/projection_index``
    (n,) int64, each projection's index *i* among the scenario's angles;
``/entry_1/twin/scenario``, ``/entry_1/twin/n_projections``
    the scenario (JSON) and its number of angles.

The angles are ``linspace(0, range, n)``, the end point excluded for a range of 180° or more
(it would repeat the first projection), as the preview chain (:mod:`.ptychotomo`) takes them.

Resuming. Every CXI is written under a temporary name and renamed when complete, so a file under
its final name is a finished projection: a rerun keeps it (after checking that it opens and was
made from the same scenario, seed and frame count) and computes only the others. Every
projection uses the scenario's seed for the phantom (the same sample at every angle) and its own
noise (photon counting, position errors: :func:`twin.workflows.simulate.noise_key`, keyed on the
seed and the projection index, then the frame block), so the projections' noise is independent
and a rerun or a task repeated after a killed worker writes the same bytes.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from twin.core.errors import TwinInputError
from twin.geometry import Geometry
from twin.scenario import Scenario

MASTER_SUFFIXES = (".h5", ".hdf5")
#: The Python process, its libraries and numba's kernels, besides a task's arrays.
BASE_BYTES = 600 * 2 ** 20


# ----------------------------------------------------------------------------- angles, names


def projection_angles_deg(s: Scenario, g: Geometry | None = None) -> np.ndarray:
    """The scenario's projection angles in degrees (see the module doc).

    Parameters
    ----------
    s : Scenario
        A 3D scenario: ``tomography.n_projections`` ≥ 1 or ``"crowther"`` (π/2 × the field's
        width in tomographic voxels, ``tomography.voxel_size_m`` else the object pixel).
    g : Geometry, optional
        The scenario's geometry where the caller has it (only ``"crowther"`` needs it; computed
        when None).

    Returns
    -------
    numpy.ndarray
        (n,) float64, ``linspace(0, tomography.angular_range_deg, n)`` degrees, the end point
        excluded for a range of 180° or more.

    Raises
    ------
    TwinInputError
        ``tomography.n_projections`` below 1 (a 2D scenario).
    """
    n = s.tomography.n_projections
    if n == "crowther":
        # the forecast's n_projections_crowther: π/2 × the field's width in tomographic voxels
        g = g or Geometry.from_scenario(s)
        voxel = s.tomography.voxel_size_m or g.object_pixel_m
        n = math.ceil(math.pi / 2 * math.ceil(g.fov_x_m / voxel - 1e-9))
    if n < 1:
        raise TwinInputError("tomography.n_projections", n, (
            "a 3D scenario (n_projections ≥ 1, or \"crowther\") is needed for a master file; "
            "write a 2D scan to OUT.cxi"))
    rng = s.tomography.angular_range_deg
    return np.linspace(0.0, rng, int(n), endpoint=rng < 180)


def select_projections(text: str | None, n: int) -> range:
    """The projections ``--projections A:B[:STEP]`` selects among ``n`` (a Python slice).

    A and B may be left out (``:4``, ``2:``) and may be negative (counted from the end, as in
    Python). Unlike a Python slice, an index beyond ±n or an empty selection is bad input.

    Parameters
    ----------
    text : str or None
        The option's value ``A:B`` or ``A:B:STEP``; None selects all ``n``.
    n : int
        The scenario's number of projections.

    Returns
    -------
    range
        The selected indices, in the slice's order.

    Raises
    ------
    TwinInputError
        ``--projections``: not ``A:B[:STEP]`` of integers, A or B outside −n … n, STEP 0, or an
        empty selection.
    """
    if text is None:
        return range(n)
    allowed = (f"A:B or A:B:STEP selecting among the scenario's {n} projections "
               f"(0 … {n - 1}; Python slice semantics, bounds within −{n} … {n})")
    parts = str(text).split(":")
    if len(parts) not in (2, 3):
        raise TwinInputError("--projections", text, allowed)
    try:
        vals = [int(p) if p.strip() else None for p in parts]
    except ValueError:
        raise TwinInputError("--projections", text, allowed) from None
    for v in vals[:2]:
        if v is not None and not -n <= v <= n:
            raise TwinInputError("--projections", text, allowed + f"; {v} is out of range")
    if len(vals) == 3 and vals[2] == 0:
        raise TwinInputError("--projections", text, allowed + "; STEP must not be 0")
    sel = range(n)[slice(*vals)]
    if len(sel) == 0:
        raise TwinInputError("--projections", text, allowed + "; it selects none")
    return sel


def projection_dir(master: str | Path) -> Path:
    """The folder of a master file's projections: ``OUT_projections`` beside ``OUT.h5``.

    Parameters
    ----------
    master : str or Path
        The master file.

    Returns
    -------
    Path
    """
    master = Path(master)
    return master.parent / f"{master.stem}_projections"


def projection_path(master: str | Path, index: int) -> Path:
    """The CXI of projection ``index`` (among the scenario's angles) of a master file.

    Parameters
    ----------
    master : str or Path
        The master file.
    index : int
        The projection's index among the scenario's angles (written with at least 5 digits).

    Returns
    -------
    Path
        ``OUT_projections/projection_IIIII.cxi``.
    """
    return projection_dir(master) / f"projection_{index:05d}.cxi"


# ----------------------------------------------------------------------------- memory


def projection_memory_bytes(s: Scenario, angles_deg, n_frames: int | None = None,
                            g: Geometry | None = None) -> int:
    """Estimated peak memory of one projection's simulation, bytes.

    The fine object window (scan field plus a probe window, s² fine pixels per object pixel)
    held as complex slices, their projected δ + iβ and the total; the shifted-probe cache;
    one block of frames at every motion-blur sample and the far fields' chunks; and
    :data:`BASE_BYTES`.

    Parameters
    ----------
    s : Scenario
        The 3D scenario.
    angles_deg : array_like
        The projections' angles, degrees; the most multislice slices among them count.
    n_frames : int, optional
        Only the first frames of each projection (``--frames``): fewer scan lines; None: all.
    g : Geometry, optional
        The scenario's geometry where the caller has it (computed when None).

    Returns
    -------
    int
        Bytes.
    """
    from twin.workflows import simulate as sim

    g = g or Geometry.from_scenario(s)
    ovs, n_nat, dx = g.oversampling, g.n_native, g.object_pixel_m
    margin = ovs * n_nat + 6
    cols = g.fov_x_m / dx + margin
    lines = (g.lines_per_beam if n_frames is None
             else min(g.lines_per_beam, math.ceil(n_frames / g.frames_per_line)))
    rows = lines * g.n_beams * g.slow_step_m / dx + margin
    fine_px = rows * cols * ovs * ovs
    slices = max(g.multislice_slices(s, float(a)) for a in np.unique(np.mod(angles_deg, 180)))
    blur = (s.scan.blur_samples or 16) if s.scan.mode == "fly" else 1
    # one block's intensities at every motion-blur sample, and the far fields in chunks
    # (simulate's working-set constants, where it still has them)
    block = getattr(sim, "BLOCK", 256)
    chunk, cache = getattr(sim, "CHUNK_BYTES", 2 ** 22), getattr(sim, "CACHE_BYTES", 2 ** 28)
    frames_block = block * blur * g.n_beams * n_nat ** 2 * 4 + 4 * chunk
    return int(fine_px * 8 * (2 * slices + 2) + cache + frames_block + BASE_BYTES)


def _local_workers(n_tasks: int, need_bytes: int, n_workers: int | None) -> tuple[int, int]:
    """(workers, memory limit per worker) of a local cluster: ``n_workers``, or one per core
    (at most 8) but no more than the tasks nor than the available memory holds at
    ``need_bytes`` each; the available memory is shared equally."""
    import psutil

    avail = psutil.virtual_memory().available
    if not n_workers:
        n_workers = max(1, min(os.cpu_count() or 1, 8, n_tasks, avail // max(need_bytes, 1)))
    return int(n_workers), int(avail // n_workers)


def _gib(n: float) -> str:
    return f"{n / 2 ** 30:.2f} GiB"


def _state_memory(client, need_bytes: int, local: bool, log) -> None:
    from twin.workflows.cluster import worker_memory_limits

    limits = worker_memory_limits(client)
    if not limits:
        log("dask: no workers yet")
        return
    low = min(limits)
    where = "local cluster" if local else "scheduler"
    log(f"dask ({where}): {len(limits)} workers, memory limit "
        f"{_gib(low) if low else 'none'} per worker (lowest); one projection needs about "
        f"{_gib(need_bytes)}")
    if low and low < need_bytes:
        log(f"twin: warning: a worker's limit ({_gib(low)}) is below a projection's estimated "
            f"need ({_gib(need_bytes)}); Dask may restart it")


# ----------------------------------------------------------------------------- tasks


def _as_value(exc: TwinInputError) -> dict:
    """A TwinInputError as plain values: it crosses a process boundary (its constructor's
    arguments are not its ``args``, so it does not unpickle)."""
    return {"error": (exc.field, str(exc.value), exc.allowed, str(exc))}


def _raise_errors(results: list[dict]) -> None:
    for r in results:
        if "error" in r:
            field_, value, allowed, message = r["error"]
            raise TwinInputError(field_, value, allowed, message)


def simulate_projection(s: Scenario, path: str, angle_deg: float, n_frames: int | None,
                        compression: str = "gzip", index: int | None = None,
                        g: Geometry | None = None) -> dict:
    """One projection's CXI at ``path`` (a Dask task; written atomically by the CXI writer).

    Parameters
    ----------
    s : Scenario
        The 3D scenario.
    path : str
        The CXI file to write.
    angle_deg : float
        The projection's rotation angle, degrees.
    n_frames : int or None
        Only the first frames (``--frames``); None: all.
    compression : {"gzip", "bitshuffle", "none"}
        The frames' filters (:func:`twin.workflows.simulate.simulate`).
    index : int, optional
        The projection's index among the scenario's angles (keys its noise).
    g : Geometry, optional
        The scenario's geometry, resolved once for all the tasks.

    Returns
    -------
    dict
        ``path``, ``n_frames``, ``peak_counts``, ``saturated_frames`` and ``warnings`` (the
        sorted distinct warning messages); or, where the simulation raised TwinInputError,
        only ``error``: (field, value, allowed, message), re-raised by the caller (an
        exception object does not cross the process boundary).
    """
    import warnings

    from twin.workflows import simulate as sim

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            summary = sim.simulate(s, path, n_frames=n_frames, compression=compression,
                                   angle_deg=angle_deg, projection=index, g=g)
        except TwinInputError as exc:
            return _as_value(exc)
    return {"path": path, "n_frames": summary.n_frames, "peak_counts": summary.peak_counts,
            "saturated_frames": summary.saturated_frames,
            "warnings": sorted({str(w.message) for w in caught})}


# ----------------------------------------------------------------------------- simulate


@dataclass(frozen=True)
class SimulatedExperiment:
    """What :func:`simulate_experiment` wrote: the master file, and per selected projection
    its index, angle and CXI; ``computed`` and ``kept`` split the indices."""

    master: Path
    indices: list[int]
    theta_deg: np.ndarray
    paths: list[Path]
    computed: list[int]
    kept: list[int]
    memory_per_projection_bytes: int
    warnings: list[str] = field(default_factory=list)


def _expected_frames(g: Geometry, n_frames: int | None) -> int:
    """Frames each projection's file holds (``g``: the scenario's geometry); refused before
    any cluster starts where every task would refuse it (simulate.plan's limit)."""
    from twin.workflows import simulate as sim

    fpp = g.frames_per_projection
    if n_frames is None and fpp > sim.MAX_FRAMES:
        raise TwinInputError("scan", f"{fpp:,} frames per projection", (
            f"at most {sim.MAX_FRAMES:,} frames in one projection's simulation; simulate a "
            "part of each with --frames N, or a smaller field"))
    return fpp if n_frames is None else min(int(n_frames), fpp)


def finished(path: Path, s: Scenario, n_frames: int) -> bool:
    """Whether ``path`` is a finished projection of ``s`` with ``n_frames`` frames.

    Absent or unreadable (not a finished file): False. Readable but made from another scenario,
    seed or frame count: bad input, rather than a silent mix of two experiments.

    Parameters
    ----------
    path : Path
        A projection's CXI file.
    s : Scenario
        The scenario it must have been made from (compared as JSON, seed included).
    n_frames : int
        The frames it must hold.

    Returns
    -------
    bool

    Raises
    ------
    TwinInputError
        Naming ``path``: it was made from another scenario or holds another frame count.
    """
    if not path.exists():
        return False
    try:
        with h5py.File(path, "r") as f:
            shape = f["entry_1/data_1/data"].shape
            made_from = f["entry_1/twin/scenario"][()]
    except (OSError, KeyError, ValueError):
        return False
    made_from = made_from.decode() if isinstance(made_from, bytes) else str(made_from)
    if made_from != s.model_dump_json() or shape[0] != n_frames:
        raise TwinInputError(str(path), f"{shape[0]} frames of another scenario or seed"
                             if made_from != s.model_dump_json() else f"{shape[0]} frames", (
            f"a finished projection of this scenario and seed with {n_frames} frames, to be "
            f"kept on a rerun; remove {path.parent} (or choose another -o) to start afresh"))
    return True


def write_master(master: Path, paths: list[Path], theta_deg, indices, s: Scenario,
                 n_total: int) -> None:
    """The master file (module doc): external links with paths relative to its folder.

    Written atomically (:func:`twin.io.atomic.atomic_path`).

    Parameters
    ----------
    master : Path
        The master file to write.
    paths : list of Path
        The linked projections' CXI files, in the order of ``theta_deg``.
    theta_deg : array_like
        (n,) their angles, degrees.
    indices : array_like
        (n,) their indices among the scenario's angles.
    s : Scenario
        The scenario, stored as JSON.
    n_total : int
        The scenario's number of angles.
    """
    from twin.io.atomic import atomic_path

    master = Path(master)
    with atomic_path(master) as tmp, h5py.File(tmp, "w") as f:
        e = f.create_group("entry_1")
        e.attrs["NX_class"] = "NXentry"
        for k, p in enumerate(paths):
            rel = Path(os.path.relpath(Path(p).resolve(), master.resolve().parent)).as_posix()
            e[f"projection_{k}"] = h5py.ExternalLink(rel, "/entry_1")
        th = e.create_dataset("theta", data=np.asarray(theta_deg, dtype=np.float64))
        th.attrs["units"] = "degrees"
        e.create_dataset("projection_index", data=np.asarray(indices, dtype=np.int64))
        tw = e.create_group("twin")
        tw["scenario"] = s.model_dump_json()
        tw["n_projections"] = int(n_total)


def simulate_experiment(s: Scenario, master: str | Path, projections: str | None = None,
                        n_frames: int | None = None, scheduler: str | None = None,
                        n_workers: int | None = None, compression: str = "gzip",
                        progress: bool = False, log=print) -> SimulatedExperiment:
    """Simulate the selected projections of a 3D scenario, one Dask task each, and link them.

    Parameters
    ----------
    s : Scenario
        A 3D scenario (``tomography.n_projections`` ≠ 0); its seed is every projection's.
    master : str or Path
        The master file ``OUT.h5``; the CXIs go to ``OUT_projections/`` (module doc).
    projections : str or None
        ``A:B[:STEP]`` (:func:`select_projections`); all by default.
    n_frames : int or None
        Only the first scan points of each projection (``--frames``).
    scheduler : str or None
        An existing Dask scheduler's address; ``None``: a local cluster of ``n_workers``.
    n_workers : int or None
        Local workers; None: one per core (at most 8), as the tasks and the memory allow.
    compression : {"gzip", "bitshuffle", "none"}
        The frames' filters.
    progress : bool
        A progress bar (stderr).
    log : callable
        Receives the plan and the cluster's memory (a warning where it looks too small).

    Raises
    ------
    TwinInputError
        ``--output`` not ``.h5``/``.hdf5``, ``--frames`` below 1, a 2D scenario, a bad
        ``--projections``, too many frames per projection without ``--frames``, another
        scenario's projection in the folder (:func:`finished`), or a projection's simulation
        refusing its input.
    """
    master = Path(master)
    if master.suffix.lower() not in MASTER_SUFFIXES:
        raise TwinInputError("--output", str(master), "a master file OUT.h5 (or .hdf5)")
    if n_frames is not None and n_frames < 1:
        raise TwinInputError("--frames", n_frames, "must be a positive number of frames")
    g = Geometry.from_scenario(s)              # resolved once: every task gets it
    angles = projection_angles_deg(s, g)
    sel = select_projections(projections, len(angles))
    paths = [projection_path(master, i) for i in sel]
    expect = _expected_frames(g, n_frames)
    todo = [i for i, p in zip(sel, paths) if not finished(p, s, expect)]
    kept = [i for i in sel if i not in set(todo)]
    need = projection_memory_bytes(s, angles[list(sel)], n_frames, g)
    log(f"{len(sel)} of {len(angles)} projections, {expect} frames each, into "
        f"{projection_dir(master)}/: {len(kept)} finished, {len(todo)} to simulate")
    results = []
    if todo:
        results = _simulate_todo(s, master, todo, angles, n_frames, compression, g, scheduler,
                                 n_workers, need, progress, log)
    _link_finished(master, sel, angles, s, expect)
    notes = sorted({w for r in results for w in r.get("warnings", [])})
    return SimulatedExperiment(master, list(sel), angles[list(sel)], paths, todo, kept, need,
                               notes)


def _simulate_todo(s: Scenario, master: Path, todo: list[int], angles, n_frames, compression,
                   g: Geometry, scheduler, n_workers, need: int, progress: bool, log) -> list:
    """:func:`simulate_projection` of the projections ``todo`` into the master's folder (made
    here), one Dask task each (:func:`_run_tasks`)."""
    projection_dir(master).mkdir(parents=True, exist_ok=True)
    return _run_tasks(simulate_projection, [[s] * len(todo),
                                            [str(projection_path(master, i)) for i in todo],
                                            [float(angles[i]) for i in todo],
                                            [n_frames] * len(todo),
                                            [compression] * len(todo),
                                            list(todo), [g] * len(todo)],
                      scheduler, n_workers, need, desc="simulate", progress=progress,
                      log=log)


def _link_finished(master: Path, sel, angles, s: Scenario, expect: int) -> None:
    """Write the master file linking the selection ``sel`` and every other finished projection
    in the folder: runs over different ranges add up, and a rerun of a part never drops the
    projections another run finished."""
    linked = sorted(set(sel) | {i for i in range(len(angles)) if i not in set(sel)
                                and finished(projection_path(master, i), s, expect)})
    write_master(master, [projection_path(master, i) for i in linked], angles[linked], linked,
                 s, len(angles))


def _run_tasks(fn, args: list[list], scheduler: str | None, n_workers: int | None,
               need_bytes: int, desc: str, progress: bool, log) -> list[dict]:
    """``fn`` over ``args`` on Dask (one task each), the memory stated; input errors raised."""
    from twin.workflows.cluster import client_for, run_ordered

    limit = None
    if not scheduler:
        n_workers, limit = _local_workers(len(args[0]), need_bytes, n_workers)
    with client_for(scheduler, n_workers, limit) as client:
        _state_memory(client, need_bytes, not scheduler, log)
        results = run_ordered(client, fn, *args, progress=progress, desc=desc, unit="proj")
    _raise_errors(results)
    return results
