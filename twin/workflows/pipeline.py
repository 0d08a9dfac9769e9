"""``twin run``: the whole chain for one scenario as declared, cached stages.

A stage names what it depends on (parts of the scenario, and earlier stages) and what it does
with a :class:`~twin.workflows.rundir.RunDir`. The stages of the acquisition chain, in the order
of the experiment: forecast → sweep (if the scenario has one) → simulate (the 2D scan,
``[run] frames`` of it) → reconstruct and compare with the ground truth → for 3D scenarios the
preview ptycho-tomography chain. The report layer (:mod:`twin.report`) adds the figures and the
report as two more stages over the same run directory.

Each stage writes ``stage.json`` with a hash of everything it depends on; a re-run redoes a stage
only when that hash changed or a stage it depends on was redone.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from twin.core.errors import TwinInputError
from twin.scenario import Scenario
from twin.workflows import forecast as _forecast
from twin.workflows.rundir import RunDir

Log = Callable[[str], None]


@dataclass(frozen=True)
class Stage:
    """One step of ``twin run``.

    Parameters
    ----------
    name : str
        Folder of the run directory the stage writes, and its key in the summary.
    deps : callable
        ``deps(s)`` → JSON-able value of everything in the scenario the stage depends on.
    action : callable
        ``action(s, rd, log, progress)`` → dict of results, stored in ``stage.json``.
    after : tuple of str
        Earlier stages whose re-run forces this one to re-run.
    applies : callable
        ``applies(s)`` → whether the scenario has this stage at all.
    cached : bool
        False for stages that are cheap and always redone (their results are in the summary,
        but they are not listed in its ``stages``, and they write no ``stage.json``).
    """

    name: str
    deps: Callable[[Scenario], object]
    action: Callable[[Scenario, RunDir, Log, bool], dict]
    after: tuple[str, ...] = ()
    applies: Callable[[Scenario], bool] = field(default=lambda s: True)
    cached: bool = True


def _hash(*parts) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(json.dumps(p, sort_keys=True, default=str).encode())
    return h.hexdigest()[:16]


def _parts(s: Scenario, *sections: str) -> dict:
    d = s.model_dump()
    return {k: d[k] for k in sections}


# --- the acquisition chain's stages -------------------------------------------------------------

def _sweep(s: Scenario, rd: RunDir, log: Log, progress: bool) -> dict:
    from twin.workflows import sweep as sw

    t0 = time.perf_counter()
    table = sw.run_sweep(s, progress=progress)
    rd.sweep_csv.parent.mkdir(parents=True, exist_ok=True)
    sw.write_table(table, rd.sweep_csv)
    rd.figures.mkdir(parents=True, exist_ok=True)
    for p in sw.plot_sweep(table, s, rd.figures / "sweep"):
        log(f"  wrote {p}")
    return {"points": len(table), "seconds": time.perf_counter() - t0}


def simulated_field(s: Scenario) -> Scenario:
    """The scenario that ``twin run`` simulates: the run's sub-field of view, if it names one.

    Parameters
    ----------
    s : Scenario
        The scenario; ``run.fov_um`` (µm), where set, caps both ``scan.fov_x_um`` and
        ``scan.fov_y_um``.

    Returns
    -------
    Scenario
        ``s`` itself where ``run.fov_um`` is None.
    """
    if s.run.fov_um is None:
        return s
    return s.with_values({"scan.fov_x_um": min(s.run.fov_um, s.scan.fov_x_um),
                          "scan.fov_y_um": min(s.run.fov_um, s.scan.fov_y_um)})


def _simulate(s: Scenario, rd: RunDir, log: Log, progress: bool) -> dict:
    from twin.workflows import simulate

    t0 = time.perf_counter()
    log(f"simulating {s.name} ...")
    rd.data_cxi.parent.mkdir(parents=True, exist_ok=True)
    summ = simulate.simulate(simulated_field(s), rd.data_cxi, n_frames=s.run.frames,
                             progress=progress)
    return {"frames": summ.n_frames, "peak_counts": summ.peak_counts,
            "mean_counts_per_frame": summ.mean_counts_per_frame,
            "saturated_frames": summ.saturated_frames,
            "position_error_rms_m": summ.position_error_rms_m,
            "seconds": time.perf_counter() - t0}


def _reconstruct(s: Scenario, rd: RunDir, log: Log, progress: bool) -> dict:
    from twin.analysis import truth
    from twin.geometry import reconstruction_options
    from twin.io.cxi import read_cxi
    from twin.io.products import write_reconstruction
    from twin import recon

    t0 = time.perf_counter()
    data = read_cxi(rd.data_cxi)
    opts = reconstruction_options(s)
    log(f"reconstructing ({opts.algorithm}, {opts.iterations} iterations) ...")
    res = recon.reconstruct(data, opts, progress=progress)
    rd.reconstruction_h5.parent.mkdir(parents=True, exist_ok=True)
    extra = {} if res.beam_probes is None else {"beam_probes": res.beam_probes}
    write_reconstruction(rd.reconstruction_h5, res.object, res.probe, res.positions_m,
                         res.cost, res.pixel_size_m, **extra)
    c = truth.compare(res.object, data.ground_truth, res.pixel_size_m,
                      truth.lit_positions(data.truth.translations_m, data.beam_offsets_m),
                      res.probe.shape[-1])
    np.savez_compressed(rd.comparison_npz, aligned=c.aligned_phase, truth=c.truth_phase,
                        frc=c.frc.correlation, half_bit=c.frc.half_bit,
                        freq=c.frc.frequency_per_m)
    return {**c.as_dict(), "final_cost": res.cost[-1], "iterations": len(res.cost),
            "frame_iterations_per_s": res.timings["frame_iterations_per_s"],
            "stopped_early": res.stopped_early, "seconds": time.perf_counter() - t0}


def _tomography(s: Scenario, rd: RunDir, log: Log, progress: bool) -> dict:
    from twin.workflows import ptychotomo

    t0 = time.perf_counter()
    log(f"preview ptycho-tomography: {s.run.chain_projections} angles, "
        f"{s.run.chain_fov_um} µm field ...")
    cr = ptychotomo.run_chain(s, n_angles=s.run.chain_projections, fov_um=s.run.chain_fov_um,
                              iterations=s.run.chain_iterations, progress=progress)
    rd.chain_npz.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(rd.chain_npz, volume=cr.volume, truth=cr.truth_volume,
                        angles=cr.angles_deg, fsc=cr.fsc.correlation, half_bit=cr.fsc.half_bit,
                        freq=cr.fsc.frequency_per_m, projections=cr.projections[:4])
    return {"pcc_volume": cr.pcc_volume, "fsc_resolution_m": cr.fsc_resolution_m,
            "voxel_m": cr.voxel_m, "angles": len(cr.angles_deg),
            "projection_pcc_mean": float(cr.projection_pcc.mean()),
            "seconds": time.perf_counter() - t0}


_ACQUISITION = ("sample", "beam", "optics", "scan", "detector", "seed")

STAGES: tuple[Stage, ...] = (
    Stage("sweep", lambda s: s.model_dump(exclude={"run", "reconstruction"}), _sweep,
          applies=lambda s: bool(s.sweep)),
    Stage("simulate", lambda s: (_parts(s, *_ACQUISITION), s.run.frames, s.run.fov_um),
          _simulate),
    Stage("reconstruct", lambda s: (s.model_dump()["reconstruction"], s.run.iterations,
                                    s.run.modes), _reconstruct, after=("simulate",)),
    Stage("tomography", lambda s: (_parts(s, *_ACQUISITION, "run", "tomography",
                                          "reconstruction")), _tomography,
          applies=lambda s: s.is_3d and s.sample.phantom != "siemens_star"),
)


# --- one writer per run directory ---------------------------------------------------------------

LOCK_NAME = ".twin.lock"


def _holder(text: str) -> str:
    try:
        h = json.loads(text)
        return (f"pid {h['pid']} on host {h['host']} (`{h.get('command', 'twin run')}`, "
                f"since {h.get('since', '?')})")
    except (ValueError, KeyError, TypeError):
        return "another process"


@contextlib.contextmanager
def lock_run_dir(root: str | Path, command: str = "twin run"):
    """Hold the run directory ``root`` for this process, or refuse if another holds it.

    The lock is an exclusive ``flock`` on ``root/.twin.lock``; the operating system releases it
    when its holder exits, however it exits, so a killed run never leaves a stale lock. The file
    names the holder (pid, host, command, start time) for the message another run prints.

    Parameters
    ----------
    root : str or Path
        The run directory (created if missing).
    command : str
        What the holder is doing, for the message.

    Yields
    ------
    Path
        The lock file, ``root/.twin.lock``.

    Raises
    ------
    TwinInputError
        Another process holds the directory (CLI exit 2, naming that process), or ``root`` is
        a file.
    """
    import fcntl

    root = Path(root)
    if root.exists() and not root.is_dir():
        raise TwinInputError("-o/--output", str(root), "is a file; the output of a run is a "
                             "directory (an existing run's, or a new name)")
    root.mkdir(parents=True, exist_ok=True)
    path = root / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        holder = _holder(os.pread(fd, 4096, 0).decode(errors="replace"))
        os.close(fd)
        raise TwinInputError("--output", str(root), "", message=(
            f"output directory {root} is in use by {holder}; two runs on one directory would "
            f"corrupt it. Wait for that run to finish, stop it, or choose another directory "
            f"(the lock is {path}; it is released when its holder exits).")) from None
    try:
        info = json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                           "command": command,
                           "since": time.strftime("%Y-%m-%d %H:%M:%S %z")})
        os.ftruncate(fd, 0)
        os.pwrite(fd, info.encode(), 0)
        yield path
    finally:
        try:
            os.ftruncate(fd, 0)
        finally:
            os.close(fd)              # releases the flock


def run(s: Scenario, out: str | Path, progress: bool = True, log: Log = print,
        stages: Sequence[Stage] = STAGES) -> dict:
    """Run ``stages`` for scenario ``s`` into ``out``.

    The directory is locked for the duration (:func:`lock_run_dir`): a second run on it raises
    :class:`TwinInputError` naming the first. ``scenario.json`` and ``forecast.json`` are
    written first; a ``resolution.model = "simulated"`` scenario is calibrated before its
    forecast (:func:`twin.workflows.calibrate.run`: its cost logged, refused above the limit).

    Parameters
    ----------
    s : Scenario
        The scenario.
    out : str or Path
        The run directory (created if missing; an earlier run's is reused as a cache).
    progress : bool
        Progress bars (stderr).
    log : callable
        Receives one line per step.
    stages : sequence of Stage
        The stages, in order (default :data:`STAGES`); those that do not apply to ``s`` are
        skipped.

    Returns
    -------
    dict
        The summary, rewritten to ``summary.json`` after each stage: ``scenario`` (its name),
        ``forecast`` (the values), ``stages`` (each cached stage: ``"run"`` or ``"cached"``)
        and one entry of results per stage.

    Raises
    ------
    TwinInputError
        The directory is in use or a file, the calibration exceeds its limit, or a stage
        refuses its input.
    """
    rd = RunDir(Path(out))
    with lock_run_dir(rd.root):
        return _run_locked(s, rd, progress, log, stages)


def _run_locked(s: Scenario, rd: RunDir, progress: bool, log: Log,
                stages: Sequence[Stage]) -> dict:
    rd.scenario_json.write_text(s.model_dump_json(indent=2))
    if s.resolution.model == "simulated":
        # the forecast reads a simulated calibration and never makes one: calibrating is this
        # explicit step, its cost said first and refused above TWIN_CALIBRATION_LIMIT_S
        from twin.workflows import calibrate

        calibrate.run(s, log=log, progress=progress)
    fc = _forecast.forecast(s)          # cheap: always fresh
    rd.forecast_json.write_text(json.dumps(fc.as_dict(), indent=2))
    summary: dict = {"scenario": s.name, "stages": {}, "forecast": fc.values}
    redone: set[str] = set()
    for st in stages:
        if not st.applies(s):
            continue
        key = _hash(st.name, st.deps(s))
        info = rd.stage_info(st.name)
        fresh = (st.cached and info.get("key") == key
                 and not any(a in redone for a in st.after))
        if not fresh:
            result = st.action(s, rd, log, progress)
            if st.cached:
                rd.stage_dir(st.name).mkdir(parents=True, exist_ok=True)
                info = {"key": key, **result}
                (rd.stage_dir(st.name) / "stage.json").write_text(
                    json.dumps(info, indent=2, default=str))
            else:
                info = result
            redone.add(st.name)
        if st.cached:
            summary["stages"][st.name] = "cached" if fresh else "run"
        summary[st.name] = {k: v for k, v in info.items() if k != "key"}
        rd.summary_json.write_text(json.dumps(summary, indent=2, default=str))
    return summary
