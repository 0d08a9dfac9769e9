"""Planning a beamtime: ``twin forecast``, ``twin calibrate``, ``twin sweep``, ``twin plan``
and ``twin materials``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from twin.cli.common import guarded, say, scheduler_address
from twin.core.errors import TwinInputError
from twin.core.formatting import format_value, label, shown_value


@guarded
def forecast(scenario: Annotated[Path, typer.Argument(help="scenario TOML file")],
             as_json: Annotated[bool, typer.Option("--json", help="print one JSON object")]
             = False) -> None:
    """Acquisition time, dose, data volume and resolution forecast of one scenario."""
    from twin.workflows import forecast as fc
    from twin import scenario as sc

    try:
        result = fc.forecast(sc.load(scenario))
    except TwinInputError as exc:       # a missing calibration: name this file's command
        text = str(exc)
        if "twin calibrate SCENARIO.toml" not in text:
            raise
        raise TwinInputError(exc.field, exc.value, exc.allowed, message=text.replace(
            "SCENARIO.toml", str(scenario))) from None
    for name in result.values["flags"]:      # stderr: --json stays one clean object
        typer.echo(f"twin: warning: {fc.flag_message(name, result.values)}", err=True)
    if as_json:
        typer.echo(json.dumps(result.as_dict(), indent=2))
        return
    typer.echo(f"Forecast for {result.scenario}")
    rows = [(label(k), shown_value(k, v, result.values), k) for k, v in result.values.items()]
    w0, w1 = max(len(r[0]) for r in rows), 22
    for lab, value, key in rows:
        typer.echo(f"  {lab:<{w0}}  {value:<{w1}}  [{key}]")


@guarded
def calibrate(scenario: Annotated[Path, typer.Argument(help="scenario TOML file "
                                                       "(resolution.model = \"simulated\")")],
              seeds: Annotated[Optional[int], typer.Option(
                  "--seeds", help="seeds per fluence (default: resolution.calibration_seeds)")]
              = None,
              scheduler: Annotated[Optional[str], typer.Option(
                  "--scheduler", help="address of an existing Dask scheduler "
                  "(default: $TWIN_DASK_SCHEDULER, else local workers)")] = None,
              max_hours: Annotated[Optional[float], typer.Option(
                  "--max-hours", help="refuse (exit 2) if the estimate exceeds this many hours "
                  "(default: $TWIN_CALIBRATION_LIMIT_S seconds, else no limit)")] = None,
              volume: Annotated[bool, typer.Option(
                  "--volume", help="3D scenarios: measure the 3D resolution on simulated "
                  "sub-volumes (FSC) instead of the 2D patches")] = False,
              ) -> None:
    """Simulate and reconstruct the patches of a scenario's resolution calibration d(F),
    after printing what it costs; `twin forecast` then reads them."""
    from twin import scenario as sc
    from twin.workflows import calibrate as cb

    s = sc.load(scenario)
    address = scheduler_address(scheduler)
    if volume:
        vc = cb.run_volume(s, seeds=seeds, scheduler=address, max_hours=max_hours, log=say)
        for f, d, ok, split in zip(vc.fluences, vc.resolution_m, vc.all_resolved, vc.split_m):
            state = f"{d * 1e9:.4g} nm" if ok else f"unresolved (bound {d * 1e9:.4g} nm)"
            typer.echo(f"  {f * 1e-12:.4g} ph/µm² per projection: FSC vs truth {state}, "
                       f"even/odd {split * 1e9:.4g} nm (half periods, half-bit)")
        return
    cal = cb.run(s, seeds=seeds, scheduler=address, max_hours=max_hours, log=say)
    typer.echo(f"calibrated {s.name}: d(F0) = {cal.d0_m * 1e9:.4g} nm (half period, FRC "
               f"half-bit against the truth), k = {cal.k:.3g}, {cal.seeds} seed(s) at "
               f"{len(cal.points)} fluences")


@guarded
def sweep(scenario: Annotated[Path, typer.Argument(help="scenario TOML with a [sweep] table")],
          output: Annotated[Path, typer.Option("-o", "--output",
                                               help="OUT.csv or OUT.parquet")],
          scheduler: Annotated[Optional[str], typer.Option(
              "--scheduler", help="address of an existing Dask scheduler "
              "(default: $TWIN_DASK_SCHEDULER, else a local cluster)")] = None,
          plots: Annotated[bool, typer.Option(help="write PNG plots beside the table")] = True,
          simulate: Annotated[bool, typer.Option(
              "--simulate", help="also simulate and reconstruct a patch at every point and "
              "measure its resolution (FRC against the truth and between two halves)")] = False,
          seeds: Annotated[int, typer.Option("--seeds", help="with --simulate: seeds per "
                                             "point (mean and std over them)")] = 1,
          yes: Annotated[bool, typer.Option("--yes", help="run even above the size limits "
                                            "(10^6 points; an hour of simulation)")] = False,
          max_calibration_hours: Annotated[Optional[float], typer.Option(
              "--max-calibration-hours", help="refuse (exit 2) a calibration or --simulate "
              "whose estimate exceeds this many hours (default: $TWIN_CALIBRATION_LIMIT_S "
              "seconds)")] = None,
          ) -> None:
    """Evaluate the scenario's sweep table on Dask: one CSV/Parquet row per grid point."""
    from twin import scenario as sc
    from twin.workflows import sweep as sw

    if output.suffix not in (".csv", ".parquet"):
        raise TwinInputError("--output", str(output), "allowed suffixes: .csv, .parquet")
    s = sc.load(scenario)
    address = scheduler_address(scheduler)
    if simulate:
        table = sw.run_sweep(s, scheduler=address, progress=True, simulate=True, seeds=seeds,
                             yes=yes, log=say, max_calibration_hours=max_calibration_hours)
        sw.write_table(table, output)
        n_rows = len(table)
    else:       # chunk by chunk to the file: a 10⁸-point grid in the memory of a few chunks
        n_rows, table = sw.sweep_to_file(s, output, keep_rows=sw.MAX_POINTS if plots else 0,
                                         scheduler=address, progress=True, yes=yes, log=say,
                                         max_calibration_hours=max_calibration_hours)
    typer.echo(f"wrote {n_rows} rows to {output}")
    if plots and table is None:
        say(f"no plots above {sw.MAX_POINTS:,} points (the table is on disk only)")
    elif plots:
        for path in sw.plot_sweep(table, s, output.with_suffix("")):
            typer.echo(f"wrote {path}")


@guarded
def plan(scenario: Annotated[Path, typer.Argument(help="scenario TOML file")],
         budget_shifts: Annotated[float, typer.Option(
             "--budget-shifts", help="beamtime in 8-hour shifts (overheads included)")],
         target_resolution_nm: Annotated[Optional[float], typer.Option(
             "--target-resolution-nm", help="half-period resolution to reach (3D for a 3D "
             "scenario)")] = None,
         vary: Annotated[Optional[list[str]], typer.Option(
             "--vary", help="FIELD=LO:HI, a scenario field (dotted, as in [sweep]) and its "
             "range; repeat for several (default: flux, frame rate, beams, projections)")]
         = None,
         points: Annotated[int, typer.Option(help="grid values per varied field")]
         = 9,
         as_json: Annotated[bool, typer.Option("--json", help="print a JSON list of the "
                                               "front's points (forecast keys + varied "
                                               "fields)")] = False,
         plot: Annotated[Optional[Path], typer.Option(
             "-o", "--plot", help="write a PNG of the front here")] = None) -> None:
    """Inverse planning: the feasible choices on the Pareto front of time, dose, resolution."""
    from twin import scenario as sc
    from twin.workflows import planner as pl

    if plot is not None and plot.suffix.lower() != ".png":
        raise TwinInputError("--plot", str(plot), "a .png file")
    if not 2 <= points <= 200:
        raise TwinInputError("--points", points, "an integer from 2 to 200")
    s = sc.load(scenario)
    varies = [pl.parse_vary(v, s) for v in vary or []]
    target = None if target_resolution_nm is None else target_resolution_nm * 1e-9
    result = pl.plan(s, budget_shifts, target, varies or None, points)
    if plot is not None:
        pl.plot_front(result, plot)
    if not result.points:
        typer.echo(f"twin: no feasible point: none of the {result.n_evaluated} grid points "
                   f"fits {budget_shifts:g} shifts"
                   + (f" at {target_resolution_nm:g} nm or better" if target else "")
                   + " without a feasibility flag; widen --vary, raise the budget or relax "
                   "the target", err=True)
    if as_json:
        typer.echo(json.dumps(result.points, indent=2))
    else:
        for line in pl.table(result):
            typer.echo(line)
    if plot is not None:
        typer.echo(f"wrote {plot}", err=as_json)


@guarded
def materials(formula: Annotated[str, typer.Argument(help="formula, NIST name or library name")],
              density: Annotated[Optional[float], typer.Option(
                  "--density", help="g/cm³ (default: the library's or NIST's)")] = None,
              energy_kev: Annotated[float, typer.Option("--energy-kev", help="photon energy")]
              = 10.0,
              as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """δ, β, μ, μ_en/ρ and attenuation length of a compound (xraylib)."""
    from twin.sample import materials as mt

    props = mt.lookup(formula, energy_kev, density)
    d = props.as_dict()
    if as_json:
        typer.echo(json.dumps(d, indent=2))
        return
    for lab, value, key in _materials_rows(d):
        typer.echo(f"  {lab:<34} {value:<16} [{key}]")


def _materials_rows(d: dict) -> list[tuple[str, str, str]]:
    """(label, value with its unit, JSON key) of ``twin materials``' human output."""
    mu, length = d["mu_per_m"], d["attenuation_length_m"]
    return [
        ("material", str(d["material"]), "material"),
        ("formula", str(d["formula"]), "formula"),
        ("density", f"{d['density_g_per_cm3']:.4g} g/cm³", "density_g_per_cm3"),
        ("photon energy", f"{d['energy_kev']:.4g} keV", "energy_kev"),
        ("δ (refractive index decrement)", format_value("delta", d["delta"], ""), "delta"),
        ("β (absorption index)", format_value("beta", d["beta"], ""), "beta"),
        ("μ (linear attenuation)", f"{mu / 100:.4g} 1/cm", "mu_per_m"),
        ("μ_en/ρ (mass energy absorption)", f"{d['mu_en_over_rho_cm2_per_g']:.4g} cm²/g",
         "mu_en_over_rho_cm2_per_g"),
        ("attenuation length (1/μ)", format_value("attenuation_length_m", length),
         "attenuation_length_m")]
