"""Simulated experiments: ``twin simulate``, the whole chain ``twin run`` and its
``twin report``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from twin.cli.common import guarded, say, scheduler_address
from twin.core.errors import TwinInputError


@guarded
def simulate(scenario: Annotated[Path, typer.Argument(help="scenario TOML file")],
             output: Annotated[Path, typer.Option(
                 "-o", "--output", help="OUT.cxi; for a 3D scenario OUT.h5, a master file "
                 "(OUT.cxi: its first projection alone)")],
             seed: Annotated[Optional[int], typer.Option(help="random seed (default: the "
                                                         "scenario's)")] = None,
             frames: Annotated[Optional[int], typer.Option(
                 help="keep only the first N scan points")] = None,
             compression: Annotated[str, typer.Option(
                 help="gzip (shuffle + deflate: any HDF5 reader), bitshuffle (LZ4, the "
                 "detectors' format: readers need hdf5plugin) or none")]
             = "gzip",
             projections: Annotated[Optional[str], typer.Option(
                 help="3D scenario to OUT.h5: the projections A:B[:STEP] to simulate (a "
                 "Python slice of the scenario's angles; default all)")] = None,
             scheduler: Annotated[Optional[str], typer.Option(
                 "--scheduler", help="3D scenario to OUT.h5: address of an existing Dask "
                 "scheduler (default: $TWIN_DASK_SCHEDULER, else a local cluster)")] = None
             ) -> None:
    """Phantom → probe → scan → detector → a CXI file; a 3D scenario written to OUT.h5: one
    CXI per projection in OUT_projections/ and a master file OUT.h5 linking them."""
    import warnings

    from twin import scenario as sc
    from twin.io.atomic import check_output_file
    from twin.io.hdf5 import compression_options
    from twin.workflows import simulate as sim

    check_output_file(output)                 # refused before any work, not after it
    compression_options(compression)
    s = sc.load(scenario)
    if s.is_3d and output.suffix.lower() in (".h5", ".hdf5"):
        _simulate_experiment(s, output, seed, frames, compression, projections, scheduler)
        return
    for name, value in (("--projections", projections), ("--scheduler", scheduler)):
        if value is not None:
            raise TwinInputError(name, value, "only for a 3D scenario (tomography."
                                 "n_projections > 0) written to a master file OUT.h5")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        summary = sim.simulate(s, output, seed=seed, n_frames=frames, progress=True,
                               compression=compression)
    for w in caught:
        typer.echo(f"twin: warning: {w.message}", err=True)
    typer.echo(f"wrote {summary.n_frames} frames of {summary.frame_shape[0]}×"
               f"{summary.frame_shape[1]} to {summary.path}")
    typer.echo(f"  object pixel {summary.object_pixel_m * 1e9:.4g} nm, motion-blur samples "
               f"{summary.blur_samples}, mean counts/frame {summary.mean_counts_per_frame:.4g}, "
               f"peak counts {summary.peak_counts:g}")
    typer.echo(f"  saturated frames {summary.saturated_frames}, position error (rms) "
               f"{summary.position_error_rms_m * 1e9:.3g} nm")


def _simulate_experiment(s, output: Path, seed, frames, compression, projections,
                         scheduler) -> None:
    """``twin simulate`` of a 3D scenario into a master file (twin.workflows.experiment)."""
    from twin.workflows import experiment as ex

    if seed is not None:
        s = s.model_copy(update={"seed": int(seed)})
    address = scheduler_address(scheduler)
    r = ex.simulate_experiment(s, output, projections=projections, n_frames=frames,
                               scheduler=address, compression=compression, progress=True, log=say)
    for w in r.warnings:
        typer.echo(f"twin: warning: {w}", err=True)
    typer.echo(f"wrote {r.master}: {len(r.indices)} projections ({len(r.computed)} simulated, "
               f"{len(r.kept)} kept), theta {r.theta_deg[0]:g}° … {r.theta_deg[-1]:g}°, "
               f"CXI files in {ex.projection_dir(r.master)}")


@guarded
def run_(scenario: Annotated[Path, typer.Argument(help="scenario TOML file")],
         output: Annotated[Path, typer.Option("-o", "--output", help="output directory")],
         report: Annotated[bool, typer.Option(help="build the report at the end")] = True
         ) -> None:
    """The whole chain for one scenario, each stage cached, ending in a built report."""
    import warnings

    from twin import report as tr
    from twin import scenario as sc

    s = sc.load(scenario)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.simplefilter("ignore", RuntimeWarning)
        summary = tr.run(s, output, progress=True, build_report=report, log=say)
    for message in dict.fromkeys(str(w.message) for w in caught):   # once each, in order
        typer.echo(f"twin: warning: {message}", err=True)
    for stage, how in summary["stages"].items():
        typer.echo(f"  {stage:12} {how}")
    rec = summary.get("reconstruct", {})
    if rec:
        typer.echo(f"reconstruction: PCC {rec['pcc_phase']:.4f}, FRC half-bit "
                   f"{rec['frc_resolution_m'] * 1e9:.4g} nm")
    if "report" in summary:
        typer.echo(f"report: {summary['report']}")


@guarded
def report(directory: Annotated[Path, typer.Argument(help="a `twin run` output directory, "
                                                      "or a Jupyter Book folder")],
           pdf: Annotated[bool, typer.Option(
               "--pdf", help="also print it to DIR/report.pdf with headless Chromium")]
           = False) -> None:
    """Build the Jupyter Book report of the results in DIR to static HTML (offline)."""
    import contextlib

    from twin.report import book as rp
    from twin.workflows.pipeline import lock_run_dir

    # a run directory is locked like `twin run` locks it: a report built while a run writes
    # its results would mix two states
    hold = (lock_run_dir(directory, command="twin report")
            if (directory / "summary.json").exists() else contextlib.nullcontext())
    with hold:
        built = rp.build(directory, pdf=pdf)
    typer.echo(f"report: {built}")
    if pdf:
        target = (directory / "report.pdf" if (directory / "summary.json").exists()
                  else directory / "_build" / "book.pdf")
        typer.echo(f"pdf: {target}")
