"""Parameter sweeps of forecasts on Dask.

The ``[sweep]`` table of a scenario maps dotted field paths to lists of values; the grid is
their Cartesian product. Every point is validated as a scenario of its own (a bad value names
its field), turned into physical parameters, and the forecast of a whole chunk is evaluated in
one vectorised call. Chunks run on a Dask cluster: a local one by default, or any scheduler by
address (``--scheduler`` / ``TWIN_DASK_SCHEDULER``), e.g. one started by dask-jobqueue on SLURM.
The plots of a sweep's table are :mod:`twin.workflows.sweep_plots`' (re-exported here).
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import os
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from twin.workflows import calibrate
from twin.workflows import forecast as _forecast
from twin.core.errors import TwinInputError
from twin.scenario import Scenario
from twin.workflows.sweep_plots import plot_sweep  # noqa: F401  (re-exported)


def grid(s: Scenario) -> tuple[list[str], list[tuple]]:
    """(swept field paths, list of value tuples) of the scenario's sweep, in row-major order.

    The whole list: for a small grid. :func:`grid_points` makes any part of a big one.

    Parameters
    ----------
    s : Scenario
        Its ``[sweep]`` table (empty: one empty point).
    """
    keys = list(s.sweep)
    return keys, list(itertools.product(*(s.sweep[k] for k in keys)))


def grid_points(s: Scenario, start: int, stop: int) -> list[tuple]:
    """The points ``start`` to ``stop − 1`` of the sweep grid (row-major, as :func:`grid`),
    made from their flat indices alone: a part of a 10⁸-point grid costs only that part.

    Parameters
    ----------
    s : Scenario
        Its ``[sweep]`` table (empty: no points).
    start, stop : int
        Flat indices, ``stop`` exclusive and cut to the grid's size.

    Returns
    -------
    list of tuple
        One value per swept field, in the ``[sweep]`` table's order.
    """
    keys = list(s.sweep)
    sizes = [len(s.sweep[k]) for k in keys]
    stop = min(stop, math.prod(sizes)) if keys else 0
    if stop <= start:
        return []
    digits = np.unravel_index(np.arange(start, stop, dtype=np.int64), sizes)
    columns = [[s.sweep[k][int(d)] for d in ds] for k, ds in zip(keys, digits)]
    return list(zip(*columns))


def _check_values(s: Scenario, keys: list[str]) -> None:
    """Validate each swept value once on its own, so that an error names the sweep field."""
    for key in keys:
        for v in s.sweep[key]:
            try:
                s.with_values({key: v})
            except TwinInputError as exc:
                raise TwinInputError(f"sweep.{key}", v, "", message=(
                    f"sweep.{key}: the value {v!r} makes an invalid scenario: {exc}")) from None


#: The swept field that changes nothing but a point's fluence: one simulated calibration d(F)
#: serves every value of it. Any other swept field changes what is simulated (exposure and blur,
#: detector, beams, geometry), so each combination of their values gets its own calibration.
FLUENCE_FIELD = "beam.flux_photons_per_s"


def _calibration_key(keys: list[str], point: tuple) -> tuple:
    """The values of a point that select its calibration (all but the flux)."""
    return tuple(v for k, v in zip(keys, point) if k != FLUENCE_FIELD)


def evaluate_chunk(s: Scenario, keys: list[str], points: list[tuple],
                   compression_ratio: float = float("nan"),
                   calibrations: dict | None = None) -> pd.DataFrame:
    """Forecast of a list of grid points as a DataFrame (runs on a Dask worker).

    Parameters
    ----------
    s : Scenario
        The base scenario (without its sweep).
    keys : list of str
        The swept fields' dotted paths.
    points : list of tuple
        Values of ``keys``, one tuple per point.
    compression_ratio : float
        The base scenario's measured ratio, used for every point (NaN: none measured).
    calibrations : dict or None
        ``resolution.model = "simulated"``: the simulated d(F) of each combination of the
        swept values other than the flux (:func:`_calibration_key`), evaluated at every
        point's own fluence; None (or empty): no calibration.

    Returns
    -------
    pandas.DataFrame
        One row per point: the swept values, the forecast's columns (SI units, as their names
        say), the conventions of its numbers and ``flags`` (comma-separated, "" if feasible).

    Raises
    ------
    TwinInputError
        A point whose values make an invalid scenario (field ``sweep``).
    """
    params, rows, conventions = [], [], []
    for point in points:
        values = dict(zip(keys, point))
        try:
            scenario = s.with_values(values)
        except TwinInputError as exc:
            raise TwinInputError("sweep", values, "", message=(
                f"sweep point {values} makes an invalid scenario: {exc}")) from None
        cal = calibrations[_calibration_key(keys, point)] if calibrations else None
        params.append(_forecast.physical_parameters(scenario, cal))
        conventions.append(_forecast._conventions(scenario, params[-1],
                                                  getattr(cal, "source", "")))
        rows.append(values)
    inputs = _forecast.stack(params)
    out = _forecast.evaluate(dataclasses.replace(
        inputs, compression_ratio=np.full(len(inputs), compression_ratio)))
    table = pd.DataFrame(rows, columns=keys)
    for k, v in out.items():     # (resolved / unresolved: None where uncalibrated)
        table[k] = pd.array(v, dtype="boolean") if v.dtype == object else v
    for k in (conventions[0] if conventions else {}):   # the conventions of every number
        table[k] = [c[k] for c in conventions]
    # the forecast's feasibility flags, comma-separated ("" where the point is feasible)
    table["flags"] = [",".join(f) for f in _forecast.flags(out)]
    return table


def _chunks(points: list[tuple], n: int) -> list[list[tuple]]:
    size = max(1, math.ceil(len(points) / n))
    return [points[i:i + size] for i in range(0, len(points), size)]


#: Above these a sweep asks for ``--yes``: forecast points, and hours of simulated work.
MAX_POINTS = 1_000_000
MAX_SIMULATED_HOURS = 1.0


def grid_size(s: Scenario) -> int:
    """Number of points of the sweep grid (without building it; 0 without a sweep).

    Parameters
    ----------
    s : Scenario
        Its ``[sweep]`` table.
    """
    return math.prod(len(v) for v in s.sweep.values()) if s.sweep else 0


def estimate_simulated_s(s: Scenario, n_points: int, seeds: int, n_workers: int) -> float:
    """Wall-time estimate of ``n_points`` × ``seeds`` simulated points like scenario ``s``'s,
    on ``n_workers`` workers, from the measured cost model (no work is done to estimate it:
    :func:`twin.workflows.calibrate.point_seconds`).

    Parameters
    ----------
    s : Scenario
        The scenario whose patch is costed (its sweep is ignored).
    n_points, seeds : int
        Points and seeds per point.
    n_workers : int
        Workers sharing the work evenly (at least 1 counted).

    Returns
    -------
    float
        Seconds: core-seconds of one point × points × seeds / workers.
    """
    one = calibrate.point_seconds(s.model_copy(update={"sweep": {}}))[2]
    return one * n_points * seeds / max(1, n_workers)


def _calibrations(base: Scenario, keys: list[str], sweep: dict,
                  n_workers: int | None, yes: bool, log,
                  max_hours: float | None = None) -> dict:
    """The simulated d(F) of every combination of swept values other than the flux
    (``resolution.model = "simulated"``), and of the scenario's own values (key None), after
    an estimate of the simulation it needs (refused above the user's limit ``max_hours``)."""
    from twin.workflows import simres

    others = [k for k in keys if k != FLUENCE_FIELD]
    combos: dict = {None: base}
    for key in itertools.product(*(sweep[k] for k in others)):   # not the whole grid
        if key not in combos:
            combos[key] = base.with_values(dict(zip(others, key)))
    seeds = base.resolution.calibration_seeds
    # combinations that differ only in what the 2D patch ignores (the projection count) share
    # their simulated points: count each point once
    todo = {k: simres.missing_keys(sc, seeds) for k, sc in combos.items()}
    missing = len(set().union(*todo.values()))
    skip: set = set()
    if missing:
        workers = n_workers or min(2, os.cpu_count() or 1)
        est = estimate_simulated_s(base, missing, 1, workers)
        detail = (f"{len(combos)} calibration(s), {missing} simulated patches to make, about "
                  f"{est / 3600:.3g} h on {workers} workers")
        if log:
            log(f"resolution.model = simulated: {detail}")
        calibrate.check_limit("calibrating this sweep", est / 3600,
                              calibrate.limit_hours(max_hours, "--max-calibration-hours"), detail,
                              "--max-calibration-hours")
        if est > MAX_SIMULATED_HOURS * 3600 and not yes:
            # time, dose and data are still forecast; the resolution of a combination whose
            # calibration is not cached is left empty rather than taken from another model
            skip = {k for k, n in todo.items() if n and k is not None}
            say = log or (lambda m: warnings.warn(m, stacklevel=3))
            say(f"warning: resolution.model = simulated: {len(skip)} of {len(combos)} "
                f"combinations of the swept values other than {FLUENCE_FIELD} are not "
                f"calibrated yet ({missing} "
                f"simulated patches, about {est / 3600:.3g} h on {workers} workers); their "
                "resolution columns are left empty (NaN). Run the sweep with --yes to simulate "
                f"them (cached: once), or sweep only {FLUENCE_FIELD}, which one calibration "
                "serves")
    return {k: (_uncalibrated(sc) if k in skip
                else calibrate.calibration(sc, simulate=True, n_workers=n_workers))
            for k, sc in combos.items()}


def _uncalibrated(s: Scenario):
    """A calibration that forecasts no resolution (NaN): the combination was not simulated."""
    from twin.analysis.laws import Calibration
    from twin.geometry import Geometry

    nan = float("nan")
    return Calibration(nan, nan, nan, nan, Geometry.from_scenario(s).fluence_per_m2, [])


def _check_simulated(s: Scenario, n: int, seeds: int, n_workers: int | None, yes: bool, log,
                     max_hours: float | None) -> None:
    """Say what ``--simulate`` over ``n`` points × ``seeds`` seeds costs, before any work;
    refuse it above the user's limit, or above :data:`MAX_SIMULATED_HOURS` without ``yes``."""
    workers = n_workers or min(2, os.cpu_count() or 1)
    est = estimate_simulated_s(s, n, seeds, workers)
    if log:
        log(f"simulated sweep: {n} points × {seeds} seeds, about {est / 60:.3g} min on "
            f"{workers} workers (measured cost model)")
    calibrate.check_limit("this simulated sweep", est / 3600,
                          calibrate.limit_hours(max_hours, "--max-calibration-hours"),
                          f"{n} points × {seeds} seeds on {workers} workers",
                          "--max-calibration-hours")
    if est > MAX_SIMULATED_HOURS * 3600 and not yes:
        raise TwinInputError("--simulate", f"about {est / 3600:.3g} h", (
            f"a simulated sweep over {MAX_SIMULATED_HOURS:g} h needs --yes "
            f"({n} points × {seeds} seeds on {workers} workers)"))


def _check_size(n: int, yes: bool) -> None:
    if n == 0:
        raise TwinInputError("sweep", {}, "the scenario has no [sweep] table to evaluate")
    if n > MAX_POINTS and not yes:
        raise TwinInputError("sweep", f"{n:,} points", (
            f"at most {MAX_POINTS:,} points without --yes (about {n * 500 / 1e9:.3g} GB of "
            f"table and {n / 1300 / 3600:.3g} h on one core at ~1300 points/s)"))


def _prepare(s: Scenario, n_workers: int | None, yes: bool, log,
             max_hours: float | None = None) -> tuple:
    """Checks of a sweep before any work; (keys, base scenario, compression ratio,
    calibrations)."""
    _check_size(grid_size(s), yes)
    keys = list(s.sweep)
    _check_values(s, keys)
    base = s.model_copy(update={"sweep": {}})
    simulated_model = base.resolution.model == "simulated"
    cals = (_calibrations(base, keys, s.sweep, n_workers, yes, log, max_hours)
            if simulated_model else None)
    ratio = (float(cals.pop(None).compression_ratio) if simulated_model
             else float("nan"))
    return keys, base, ratio, cals


def _evaluate_range(s: Scenario, base: Scenario, keys: list[str], start: int, stop: int,
                    ratio: float, cals: dict | None) -> pd.DataFrame:
    """:func:`evaluate_chunk` of the grid points ``[start, stop)`` (made on the worker)."""
    return evaluate_chunk(base, keys, grid_points(s, start, stop), ratio, cals)


def iter_sweep(s: Scenario, scheduler: str | None = None, n_workers: int | None = None,
               chunk_points: int = 2000, progress: bool = False, yes: bool = False,
               log=None, max_calibration_hours: float | None = None):
    """Yield the forecast table of the sweep grid chunk by chunk, in grid order.

    The grid is never built whole: each Dask task makes its own ``chunk_points`` points from
    their indices, and at most a few chunks per worker are in flight, so that the memory of a
    10⁸-point sweep is that of a few chunks (the caller writes each one away).

    Parameters
    ----------
    s : Scenario
        The scenario with its ``[sweep]`` table.
    scheduler, n_workers, chunk_points, progress, yes, log, max_calibration_hours
        As :func:`run_sweep`'s.

    Yields
    ------
    pandas.DataFrame
        :func:`evaluate_chunk`'s table of up to ``chunk_points`` points.
    """
    from twin.workflows.cluster import dask_client

    keys, base, ratio, cals = _prepare(s, n_workers, yes, log, max_calibration_hours)
    n = grid_size(s)
    starts = range(0, n, max(1, int(chunk_points)))
    bar = None
    with dask_client(scheduler, n_workers) as client:
        window = 2 * max(1, len(client.scheduler_info().get("workers", {})) or 1) + 2
        if log:
            log(f"sweep: {n:,} points in {len(starts):,} chunks of {chunk_points:,}")
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=n, desc="sweep", unit="pt")
        try:
            pending, nxt = {}, 0
            todo = iter(starts)
            for a in itertools.islice(todo, window):
                pending[a] = client.submit(_evaluate_range, s, base, keys, a, a + chunk_points,
                                           ratio, cals, pure=False)
            while pending:
                a = starts[nxt]
                table = pending.pop(a).result()        # in grid order; others run meanwhile
                nxt += 1
                b = next(todo, None)
                if b is not None:
                    pending[b] = client.submit(_evaluate_range, s, base, keys, b,
                                               b + chunk_points, ratio, cals, pure=False)
                if bar is not None:
                    bar.update(len(table))
                yield table
        finally:
            if bar is not None:
                bar.close()


def run_sweep(s: Scenario, scheduler: str | None = None, n_workers: int | None = None,
              chunk_points: int = 2000, progress: bool = False, simulate: bool = False,
              seeds: int = 1, yes: bool = False, log=None,
              max_calibration_hours: float | None = None) -> pd.DataFrame:
    """Evaluate the sweep grid on Dask and return one row per point, in grid order.

    The whole table is returned: for a huge grid, :func:`sweep_to_file` writes it chunk by chunk.

    Parameters
    ----------
    s : Scenario
        The scenario with its ``[sweep]`` table.
    scheduler : str or None
        Address of an existing Dask scheduler; ``None`` starts a local cluster for the call.
    n_workers : int or None
        Local workers (None: the CPU count, at most 8; for ``simulate``'s and the simulated
        calibrations' tasks at most 2).
    chunk_points : int
        Grid points per Dask task.
    progress : bool
        Show progress bars.
    simulate : bool
        Also simulate and reconstruct a patch at every point over ``seeds`` seeds
        (:func:`twin.workflows.simres.measure_many`, cached), adding ``resolution_simulated_m``,
        ``resolution_simulated_std_m``, ``frc_halves_m`` (metres), ``pcc_simulated`` and
        ``seeds_simulated`` (for a 3D projection-count sweep also the ``*_3d_simulated*``
        columns), and replacing ``compression_ratio`` by each point's measured one (where
        finite) and ``data_volume_compressed_bytes`` with it.
    seeds : int
        Seeds per point with ``simulate``.
    yes : bool
        Go ahead above :data:`MAX_POINTS` points or :data:`MAX_SIMULATED_HOURS` of simulation
        (without it: TwinInputError, or for uncached calibrations NaN resolutions).
    log : callable or None
        Takes each progress message (str); None: silent, warnings as Python warnings.
    max_calibration_hours : float or None
        Refuse a calibration or ``simulate`` whose estimate exceeds it, hours (None:
        ``TWIN_CALIBRATION_LIMIT_S``, seconds; :mod:`twin.workflows.calibrate`).

    Raises
    ------
    TwinInputError
        No ``[sweep]``, an invalid swept value, or an estimate over a limit.
    """
    n = grid_size(s)
    _check_size(n, yes)
    if simulate:
        _check_simulated(s, n, seeds, n_workers, yes, log, max_calibration_hours)
    table = pd.concat(list(iter_sweep(s, scheduler, n_workers, chunk_points, progress, yes,
                                      log, max_calibration_hours)), ignore_index=True)
    if simulate:
        _add_simulated(table, s, scheduler, n_workers, progress, seeds)
    return table


def _add_simulated(table: pd.DataFrame, s: Scenario, scheduler, n_workers, progress,
                   seeds: int) -> None:
    """The measured columns of a simulated sweep, added to ``table`` in place."""
    from twin.workflows import simres

    keys, points = grid(s)
    base = s.model_copy(update={"sweep": {}})
    scenarios = [base.with_values(dict(zip(keys, pt))) for pt in points]
    # projection-count sweeps of 3D scenarios also simulate a volume patch at each N
    volume = base.is_3d and "tomography.n_projections" in keys
    rows = simres.measure_many(scenarios, seeds=seeds, scheduler=scheduler,
                               n_workers=n_workers, progress=progress, volume=volume)
    measured = pd.DataFrame(rows)
    cols = ["resolution_simulated_m", "resolution_simulated_std_m", "frc_halves_m",
            "pcc_simulated", "seeds_simulated"]
    if volume:
        cols += ["resolution_3d_simulated_m", "resolution_3d_simulated_std_m",
                 "pcc_3d_simulated"]
    for col in cols:
        table[col] = measured[col].to_numpy()
    ok = np.isfinite(measured["compression_ratio_simulated"].to_numpy())
    cr = np.where(ok, measured["compression_ratio_simulated"].to_numpy(),
                  table["compression_ratio"].to_numpy())
    table["compression_ratio"] = cr
    table["data_volume_compressed_bytes"] = table["data_volume_bytes"] / cr


def sweep_to_file(s: Scenario, path: Path, keep_rows: int = MAX_POINTS, **kwargs):
    """Evaluate the sweep (as :func:`iter_sweep`) and write each chunk to ``path`` (CSV or
    Parquet) as it arrives, atomically: memory stays that of a few chunks, whatever the grid.

    Parameters
    ----------
    s : Scenario
        The scenario with its ``[sweep]`` table.
    path : pathlib.Path or str
        The table; ``.parquet`` writes Parquet, any other suffix CSV.
    keep_rows : int
        Grids of at most this many points are also returned whole.
    **kwargs
        :func:`iter_sweep`'s keyword arguments.

    Returns
    -------
    (int, DataFrame or None)
        The rows written, and the whole table where it has at most ``keep_rows`` rows (for
        the plots), else None.
    """
    from twin.io.atomic import atomic_path

    path = Path(path)
    keep = grid_size(s) <= keep_rows               # known before: nothing held for a big grid
    kept, n_rows, writer = [], 0, None
    with atomic_path(path) as tmp:
        try:
            for table in iter_sweep(s, **kwargs):
                if path.suffix == ".parquet":
                    import pyarrow as pa
                    import pyarrow.parquet as pq

                    t = pa.Table.from_pandas(table, preserve_index=False,
                                             schema=writer.schema if writer else None)
                    writer = writer or pq.ParquetWriter(tmp, t.schema)
                    writer.write_table(t)
                else:
                    table.to_csv(tmp, mode="w" if n_rows == 0 else "a", header=n_rows == 0,
                                 index=False)
                n_rows += len(table)
                if keep:
                    kept.append(table)
        finally:
            if writer is not None:
                writer.close()
    whole = pd.concat(kept, ignore_index=True) if keep and kept else None
    return n_rows, whole


def write_table(table: pd.DataFrame, path: Path) -> None:
    """Write CSV or Parquet atomically (temporary name in the same folder, then rename).

    Parameters
    ----------
    table : pandas.DataFrame
        Written without its index.
    path : pathlib.Path or str
        ``.parquet`` writes Parquet, any other suffix CSV.
    """
    from twin.io.atomic import atomic_path

    with atomic_path(path) as tmp:
        if Path(path).suffix == ".parquet":
            table.to_parquet(tmp, index=False)
        else:
            table.to_csv(tmp, index=False)
