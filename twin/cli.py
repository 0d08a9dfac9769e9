"""The ``twin`` command line: a thin layer over the library (book/contracts.md §1).

Exit status: 0 success; 2 bad input (one paragraph on stderr naming the field or path, the
value and what is allowed, no traceback); 1 any other failure.
"""

from __future__ import annotations

import json
import os
import sys
from functools import wraps
from pathlib import Path
from typing import Annotated, Optional

import typer

from twin.core.errors import TwinInputError
from twin.core.formatting import format_value, label
from twin.recon import options as _recon_options

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Digital twin of fast X-ray ptychography and ptycho-tomography.")


def package_version() -> str:
    """The installed distribution's version (``ptycho-twin``), else the package's own."""
    from importlib import metadata

    try:
        return metadata.version("ptycho-twin")
    except metadata.PackageNotFoundError:
        from twin import __version__

        return __version__


def _version(value: bool) -> None:
    if value:
        typer.echo(f"twin {package_version()}")
        raise typer.Exit(0)


@app.callback()
def _main(version: Annotated[bool, typer.Option(
        "--version", callback=_version, is_eager=True, help="print the version and exit")]
          = False) -> None:
    """Digital twin of fast X-ray ptychography and ptycho-tomography."""


def _fail(code: int, message: str) -> None:
    typer.echo(f"twin: error: {message}", err=True)
    raise typer.Exit(code)


def _guarded(fn):
    """Map library errors to the exit statuses of book/contracts.md §1."""

    @wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (typer.Exit, typer.Abort, SystemExit):
            raise
        except TwinInputError as exc:
            _fail(2, str(exc))
        except BrokenPipeError:
            # the reader went away (`twin forecast … | head`): not an error of twin's
            sys.stdout = open(os.devnull, "w")
            raise typer.Exit(0) from None
        except KeyboardInterrupt:
            _fail(1, "interrupted")
        except Exception as exc:  # noqa: BLE001 - the contract: exit 1, a message, no trace
            if os.environ.get("TWIN_DEBUG"):
                raise
            _fail(1, f"{type(exc).__name__}: {exc} (set TWIN_DEBUG=1 for a traceback)")

    return wrapper


@app.command()
@_guarded
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
    rows = [(label(k), format_value(k, v), k) for k, v in result.values.items()]
    w0, w1 = max(len(r[0]) for r in rows), 22
    for lab, value, key in rows:
        typer.echo(f"  {lab:<{w0}}  {value:<{w1}}  [{key}]")


@app.command()
@_guarded
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
    address = scheduler or os.environ.get("TWIN_DASK_SCHEDULER") or None
    if volume:
        vc = cb.run_volume(s, seeds=seeds, scheduler=address, max_hours=max_hours,
                           log=lambda m: typer.echo(m, err=True))
        for f, d, ok, split in zip(vc.fluences, vc.resolution_m, vc.all_resolved, vc.split_m):
            state = f"{d * 1e9:.4g} nm" if ok else f"unresolved (bound {d * 1e9:.4g} nm)"
            typer.echo(f"  {f * 1e-12:.4g} ph/µm² per projection: FSC vs truth {state}, "
                       f"even/odd {split * 1e9:.4g} nm (half periods, half-bit)")
        return
    cal = cb.run(s, seeds=seeds, scheduler=address, max_hours=max_hours,
                 log=lambda m: typer.echo(m, err=True))
    typer.echo(f"calibrated {s.name}: d(F0) = {cal.d0_m * 1e9:.4g} nm (half period, FRC "
               f"half-bit against the truth), k = {cal.k:.3g}, {cal.seeds} seed(s) at "
               f"{len(cal.points)} fluences")


@app.command()
@_guarded
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
    address = scheduler or os.environ.get("TWIN_DASK_SCHEDULER") or None
    say = lambda m: typer.echo(m, err=True)  # noqa: E731
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


@app.command()
@_guarded
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
    address = scheduler or os.environ.get("TWIN_DASK_SCHEDULER") or None
    r = ex.simulate_experiment(s, output, projections=projections, n_frames=frames,
                               scheduler=address, compression=compression, progress=True,
                               log=lambda m: typer.echo(m, err=True))
    for w in r.warnings:
        typer.echo(f"twin: warning: {w}", err=True)
    typer.echo(f"wrote {r.master}: {len(r.indices)} projections ({len(r.computed)} simulated, "
               f"{len(r.kept)} kept), theta {r.theta_deg[0]:g}° … {r.theta_deg[-1]:g}°, "
               f"CXI files in {ex.projection_dir(r.master)}")


#: ``twin reconstruct``'s engine flags: each option's default (every choice left to the data:
#: twin.recon.options.AUTO), type, bounds and help come from twin.recon.options.Options
_ENGINE = _recon_options.Options(**_recon_options.AUTO)


def _engine(name: str):
    """The ``--name`` flag of engine option ``name``, its help from the options model."""
    return typer.Option(help=_recon_options.help_for(name))


@app.command()
@_guarded
def reconstruct(
        input: Annotated[Path, typer.Argument(help="CXI file (book/contracts.md §3)")],
        output: Annotated[Path, typer.Option(
            "-o", "--output", help="OUT.h5 (book/contracts.md §4) or OUT.cxi (a CXI product "
            "Ptychodus opens)")],
        algorithm: Annotated[str, _engine("algorithm")] = _ENGINE.algorithm.value,
        iterations: Annotated[int, _engine("iterations")] = _ENGINE.iterations,
        modes: Annotated[int, _engine("modes")] = _ENGINE.modes,
        batch_size: Annotated[int, _engine("batch_size")] = _ENGINE.batch_size,
        position_correction: Annotated[str, _engine("position_correction")]
        = _ENGINE.position_correction.value,
        max_memory_gb: Annotated[float, typer.Option(
            help="frames larger than a quarter of this (as float32) are streamed from the "
                 "file batch by batch instead of loaded")] = 4.0,
        upsampling: Annotated[Optional[int], _engine("upsampling")] = _ENGINE.upsampling,
        noise_model: Annotated[str, _engine("noise_model")] = _ENGINE.noise_model.value,
        slices: Annotated[int, _engine("slices")] = _ENGINE.slices,
        slice_thickness_m: Annotated[float, _engine("slice_thickness_m")]
        = _ENGINE.slice_thickness_m,
        frames: Annotated[Optional[int], typer.Option(help="use only the first N frames")]
        = None,
        seed: Annotated[int, _engine("seed")] = _ENGINE.seed,
        backend: Annotated[str, _engine("backend")] = _ENGINE.backend.value,
        scheduler: Annotated[Optional[str], typer.Option(
            "--scheduler", help="master file: address of an existing Dask scheduler "
            "(default: $TWIN_DASK_SCHEDULER, else a local cluster)")] = None,
        probe: Annotated[Optional[Path], typer.Option(
            "--probe", help="starting probe: twin .h5/.cxi output or a Ptychodus CXI product "
            "(resampled to the data's pixel; modes cut or added to --modes)")] = None,
        object_: Annotated[Optional[Path], typer.Option(
            "--object", help="starting object (files as --probe)")] = None,
        resume: Annotated[Optional[Path], typer.Option(
            "--resume", help="continue a reconstruction (twin .h5/.cxi): object, probe, "
            "positions; --iterations more, the cost appended")] = None,
        checkpoint_every: Annotated[int, typer.Option(
            help="write OUT every N iterations (0: only at the end)")] = 0,
        background: Annotated[Optional[str], typer.Option(
            "--background", help="counts per pixel and frame in the model (Σ|Ψ|² + b): a "
            "number, or a .npy/.h5 (ny, nx) array")] = None,
        preview: Annotated[Optional[Path], typer.Option(
            "--preview", help="a PNG (object phase, probe, cost) refreshed while it runs")]
        = None,
        preview_every: Annotated[int, typer.Option(
            help="--preview: every N iterations")] = 5) -> None:
    """Ptychographic reconstruction of a CXI file: object, probe modes, refined positions; of a
    master file (`twin simulate` of a 3D scenario): every projection, one Dask task each, into
    a Data Exchange stack OUT.h5 that `twin tomo` reads."""
    from twin.recon import controls as ctl
    from twin.recon.options import Options

    opts = Options(algorithm=algorithm, iterations=iterations, modes=modes,
                   batch_size=batch_size, position_correction=position_correction,
                   upsampling=upsampling, noise_model=noise_model, slices=slices,
                   slice_thickness_m=slice_thickness_m, seed=seed, backend=backend)
    _check_reconstruct_flags(output, max_memory_gb, checkpoint_every, preview, preview_every)
    controls = {"--probe": probe, "--object": object_, "--resume": resume,
                "--background": background, "--preview": preview,
                "--checkpoint-every": checkpoint_every or None}
    if _reconstruct_master(input, output, opts, scheduler, frames, max_memory_gb,
                           [k for k, v in controls.items() if v is not None]):
        return
    data = _read_for_reconstruct(input, frames, max_memory_gb, background)
    start = ctl.load_start(data, upsampling, probe, object_, resume)
    if start is not None and start.probe is not None:
        data.illumination = start.probe          # what the automatic choices start from too
    result = _run_with_controls(data, opts, start, output, input, checkpoint_every,
                                preview, preview_every)
    if preview is not None:
        ctl.write_preview(preview, result)
    _write_recon(output, result, data, input)
    _say_reconstructed(output, result, data)


def _check_reconstruct_flags(output: Path, max_memory_gb: float, checkpoint_every: int,
                             preview: Path | None, preview_every: int) -> None:
    """``twin reconstruct``'s flags that the options model does not hold, checked."""
    if output.suffix.lower() not in (".h5", ".hdf5", ".cxi"):
        raise TwinInputError("--output", str(output), "allowed suffixes: .h5 "
                             "(book/contracts.md §4), .cxi (CXI product)")
    if max_memory_gb <= 0:
        raise TwinInputError("--max-memory-gb", max_memory_gb, "a positive number")
    for name, v in (("--checkpoint-every", checkpoint_every), ("--preview-every",
                                                                preview_every)):
        if v < 0:
            raise TwinInputError(name, v, "0 or a positive number of iterations")
    if preview is not None and preview.suffix.lower() != ".png":
        raise TwinInputError("--preview", str(preview), "a .png file")


def _read_for_reconstruct(input: Path, frames, max_memory_gb: float, background):
    """The CXI file's data: frames in memory, or streamed where larger than a quarter of
    ``max_memory_gb`` as float32; the ``--background`` read."""
    import numpy as np

    from twin.io.cxi import read_cxi
    from twin.recon import controls as ctl

    data = read_cxi(input, frames=frames, lazy=True)
    if data.frames.nbytes <= max_memory_gb * 2 ** 30 / 4:
        data.frames = np.asarray(data.frames, dtype=np.float32)
    else:
        typer.echo(f"streaming {len(data.frames)} frames ({data.frames.nbytes / 2 ** 30:.1f} "
                   f"GiB as float32) from {input} batch by batch", err=True)
    if background is not None:
        data.background = ctl.read_background(background, data.frames.shape[-1])
    return data


def _say_reconstructed(output: Path, result, data) -> None:
    """``twin reconstruct``'s last lines: what was written, the score against a ground truth
    where the file has one; a run stopped by divergence fails."""
    import numpy as np

    rate = result.timings["frame_iterations_per_s"]
    typer.echo(f"wrote {output}: object {result.object.shape}, {result.probe.shape[0]} probe "
               f"mode(s), final cost {result.cost[-1]:.4g}, {rate:.0f} frame-iterations/s")
    if data.ground_truth is not None:
        from twin.analysis import score as sc   # `twin score OUT`'s function, object, pixel

        c = sc.score_data(np.asarray(result.object, np.complex64), data,
                          float(result.pixel_size_m))
        typer.echo("  against the ground truth (as `twin score` reports it): "
                   + sc.describe(c)[0])
    if result.stopped_early:
        raise RuntimeError(f"{result.stopped_early}; that state was written to {output}")


def _run_with_controls(data, opts, start, output: Path, input: Path, checkpoint_every: int,
                       preview: Path | None, preview_every: int):
    """``twin reconstruct`` of a CXI file's data: the engines with checkpoints of ``output``
    and the preview PNG written every so many iterations; warnings echoed."""
    import warnings

    import numpy as np

    from twin import recon
    from twin.recon import controls as ctl

    def on_state(r):                                 # every `every` iterations, not the last
        done = len(r.cost)
        if preview is not None and preview_every and done % preview_every == 0:
            ctl.write_preview(preview, r)
        if checkpoint_every and done % checkpoint_every == 0:
            _write_recon(output, r, data, input)

    every = int(np.gcd(checkpoint_every, preview_every if preview else 0))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = recon.reconstruct(data, opts, progress=True,
                                log=lambda m: typer.echo(f"auto: {m}", err=True),
                                start=start, state_every=every,
                                on_state=on_state if every else None)
    for w in caught:
        typer.echo(f"twin: warning: {w.message}", err=True)
    return result


def _write_recon(output: Path, result, data, input: Path) -> None:
    """``twin reconstruct``'s output (and checkpoints): CONTRACTS §4 .h5 or a CXI product."""
    from twin.io.cxi import write_cxi_product
    from twin.io.products import write_reconstruction

    extra = {}
    if result.slices is not None:
        extra["slices"] = result.slices
    if result.beam_probes is not None:
        extra["beam_probes"] = result.beam_probes           # (B, M, n, n); probe: beam 0's
    if output.suffix.lower() == ".cxi":
        write_cxi_product(output, result.object, result.probe, result.positions_m,
                          result.pixel_size_m, energy_kev=data.energy_kev,
                          distance_m=data.distance_m, detector_pixel_m=data.pixel_size_m,
                          cost=result.cost, exposure_s=data.exposure_s,
                          title=f"twin reconstruct {input.name}",
                          beam_probes=result.beam_probes)
    else:
        write_reconstruction(output, result.object, result.probe, result.positions_m,
                             result.cost, result.pixel_size_m, **extra)


def _reconstruct_master(master: Path, output: Path, opts, scheduler, frames,
                        max_memory_gb, controls=()) -> bool:
    """``twin reconstruct`` of a master file (twin.workflows.experiment); False, having done
    nothing, where ``master`` is not one."""
    import numpy as np

    from twin.workflows import experiment as ex

    if not ex.is_master(master):
        if scheduler is not None:
            raise TwinInputError("--scheduler", scheduler, "only for a master file (`twin "
                                 "simulate` of a 3D scenario to OUT.h5)")
        return False
    if controls:
        raise TwinInputError(controls[0], str(master), "only for a CXI file, not a master file "
                             "of projections")
    address = scheduler or os.environ.get("TWIN_DASK_SCHEDULER") or None
    r = ex.reconstruct_experiment(master, output, opts, scheduler=address, frames=frames,
                                  max_memory_gb=max_memory_gb, progress=True,
                                  log=lambda m: typer.echo(m, err=True))
    for line in r.stopped_early:
        typer.echo(f"twin: warning: {line}", err=True)
    typer.echo(f"wrote {r.path}: Data Exchange stack {r.shape} (angles, rows, cols), pixel "
               f"{r.pixel_size_m * 1e9:.4g} nm")
    if np.all(np.isfinite(r.projection_pcc)):
        typer.echo(f"  against the ground truth: PCC(phase) per projection "
                   f"{r.projection_pcc.min():.4f} … {r.projection_pcc.max():.4f}")
    return True


@app.command()
@_guarded
def tomo(input: Annotated[Path, typer.Argument(help="Data Exchange HDF5 (book/contracts.md §5)")],
         output: Annotated[Path, typer.Option("-o", "--output", help="OUT.h5")],
         algorithm: Annotated[str, typer.Option(
             help="auto, fbp, sart, sirt or tv (auto: FBP when the angles sample the object "
                  "fully, TV with positivity for few angles or a missing wedge)")] = "auto",
         align: Annotated[bool, typer.Option("--align", help="align the projections first "
                                             "(joint reconstruction and reprojection)")] = False,
         filter_name: Annotated[str, typer.Option("--filter", help="FBP filter: ramp, "
                                                  "shepp-logan, cosine, hamming, hann")]
         = "ramp",
         iterations: Annotated[Optional[int], typer.Option(
             help="iterations (default: sirt 50, sart 10, tv 100)")] = None,
         center: Annotated[Optional[float], typer.Option(
             help="rotation-axis column (default: the centre); 'auto' via --find-center")]
         = None,
         find_center: Annotated[bool, typer.Option("--find-center",
                                                   help="search the rotation axis")] = False,
         backend: Annotated[str, typer.Option(help="FBP backend: twin, tomopy or astra")]
         = "twin") -> None:
    """Tomographic reconstruction of a projection stack: (rows, cols, cols) volume."""
    import numpy as np

    from twin.io.dataexchange import read_dxchange, write_volume
    from twin.tomo import reconstruct as tm

    pr = read_dxchange(input)
    data, theta = pr.data, pr.theta_deg
    extra = {}
    if align:
        data, shifts = tm.align_projections(data, theta, progress=True)
        extra["alignment_shifts_px"] = shifts
        typer.echo(f"aligned: rms shift {np.sqrt(np.mean(shifts ** 2)):.3g} px")
    if find_center:
        center = tm.find_center(data, theta)
        typer.echo(f"rotation axis at column {center:g}")
    if center is not None and not 0 <= center < data.shape[-1]:
        raise TwinInputError("--center", center, f"must lie on the detector: 0 to "
                             f"{data.shape[-1] - 1}")
    nonneg = False
    if algorithm == "auto":
        choice = tm.choose_algorithm(data, theta)
        algorithm, nonneg = choice.algorithm, choice.nonneg
        typer.echo(f"algorithm: {algorithm} (auto: {choice.reason}; --algorithm overrides)")
    if iterations is not None and iterations < 1:
        raise TwinInputError("--iterations", iterations, "a positive integer")
    if algorithm == "fbp":
        vol = tm.fbp(data, theta, filter_name, center=center, backend=backend)
    elif algorithm in ("sart", "sirt", "tv"):
        if center is not None and center != data.shape[-1] // 2:
            shift = data.shape[-1] // 2 - center
            from twin.analysis.metrics import fourier_shift

            data = np.stack([fourier_shift(p, (0, shift)) for p in data]).astype(np.float32)
        fn = {"sart": tm.sart, "sirt": tm.sirt, "tv": tm.tv_reconstruct}[algorithm]
        its = iterations or {"sart": 10, "sirt": 50, "tv": 100}[algorithm]
        vol = fn(data, theta, iterations=its, nonneg=nonneg, progress=True)
    else:
        raise TwinInputError("--algorithm", algorithm, "allowed: auto, fbp, sart, sirt, tv")
    write_volume(output, vol, pr.voxel_size_m, **extra)
    typer.echo(f"wrote {output}: volume {vol.shape}")


@app.command("run")
@_guarded
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
        summary = tr.run(s, output, progress=True, build_report=report,
                         log=lambda m: typer.echo(m, err=True))
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


@app.command()
@_guarded
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


@app.command()
@_guarded
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


scenario_app = typer.Typer(no_args_is_help=True, help="Write, check and document scenarios.")
app.add_typer(scenario_app, name="scenario")


def _scenario_source(name: str) -> Path:
    """A scenario file by path, by name in ./scenarios/, or by name among the scenarios that
    ship with twin (``twin/data/scenarios``: found wherever twin is installed)."""
    from importlib import resources

    p = Path(name)
    if p.exists() or p.suffix == ".toml":
        return p
    local = Path("scenarios") / f"{name}.toml"
    if local.exists():
        return local
    shipped = resources.files("twin.data").joinpath("scenarios")
    if shipped.joinpath(f"{name}.toml").is_file():
        return Path(str(shipped.joinpath(f"{name}.toml")))
    names = sorted(f.name.removesuffix(".toml") for f in shipped.iterdir()
                   if f.name.endswith(".toml")) if shipped.is_dir() else []
    raise TwinInputError("--from", name, "a scenario file, or one of the shipped scenarios: "
                         + ", ".join(names))


@scenario_app.command("new")
@_guarded
def scenario_new(name: Annotated[str, typer.Argument(help="scenario name (writes NAME.toml)")],
                 from_: Annotated[Optional[str], typer.Option(
                     "--from", help="start from this scenario (a file, or the name of a "
                     "scenario twin ships, e.g. quickstart)")] = None,
                 output: Annotated[Optional[Path], typer.Option(
                     "-o", "--output", help="file to write (default: NAME.toml)")] = None,
                 force: Annotated[bool, typer.Option(help="overwrite an existing file")]
                 = False) -> None:
    """Write an annotated scenario: every field with its unit, range and default's source."""
    from twin import scenario as sc
    from twin.workflows import scenario_tools as st

    stem = Path(name).name.removesuffix(".toml")    # a path given as NAME: its file's name
    if not stem:
        raise TwinInputError("NAME", name, "a scenario name, e.g. myplan (writes myplan.toml)")
    out = output or Path(name if name.endswith(".toml") else f"{name}.toml")
    if out.exists() and not force:
        raise TwinInputError("--output", str(out), "the file exists; use --force to overwrite")
    base = sc.load(_scenario_source(from_)) if from_ else None
    st.write_new(out, stem, base)
    typer.echo(f"wrote {out}; check it with `twin scenario check {out}`")


@scenario_app.command("check")
@_guarded
def scenario_check(file: Annotated[Path, typer.Argument(help="scenario TOML file")]) -> None:
    """Validate a scenario and print the geometry and rates it implies."""
    from twin import scenario as sc
    from twin.workflows import scenario_tools as st

    s = sc.load(file)
    typer.echo(f"{file}: valid scenario '{s.name}'")
    rows = st.check_report(s)
    w = max(len(r[0]) for r in rows)
    for lab, value in rows:
        typer.echo(f"  {lab:<{w}}  {value}")


@scenario_app.command("schema")
@_guarded
def scenario_schema(markdown: Annotated[bool, typer.Option(
                        "--markdown", help="Markdown tables (the book's schema page)")] = True,
                    output: Annotated[Optional[Path], typer.Option(
                        "-o", "--output", help="write to this file (default: stdout)")] = None
                    ) -> None:
    """The scenario schema, generated from the models (the book's book/schema.md)."""
    from twin.io.atomic import atomic_path
    from twin.workflows import scenario_tools as st

    text = st.schema_markdown() + "\n"
    if output is None:
        typer.echo(text, nl=False)
        return
    with atomic_path(output) as tmp:
        tmp.write_text(text)
    typer.echo(f"wrote {output}")


@app.command()
@_guarded
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


@app.command()
@_guarded
def score(recon: Annotated[Path, typer.Argument(
              help="a reconstruction: twin .h5 or .cxi product, Ptychodus CXI, pty-chi .h5, "
                   "PtyPy .ptyr, .npy or .npz")],
          truth: Annotated[Path, typer.Option("--truth", help="the CXI file `twin simulate` "
                                              "wrote (its ground truth)")],
          as_json: Annotated[bool, typer.Option("--json", help="print one JSON object")]
          = False,
          pixel_size_m: Annotated[Optional[float], typer.Option(
              "--pixel-size-m", help="the reconstruction's pixel size where its file does "
              "not say (default: the truth's)")] = None,
          frc_prefix: Annotated[Optional[Path], typer.Option(
              "--frc", help="write the FRC curve to PREFIX.frc.csv and PREFIX.frc.png "
              "(default: beside RECON, named after it)")] = None,
          split: Annotated[Optional[str], typer.Option(
              "--split", help="even-odd: also the FRC between O[0::2, 0::2] and O[1::2, 1::2] "
              "of the registered phase (seed 000's procedure), as FIRE numbers (full period "
              "1/f)")] = None,
          method: Annotated[str, typer.Option(
              "--method", help="standard, or biop: the split's FRC as the BIOP ImageJ "
              "plugin's source computes it (not a correlation; implies --split even-odd)")]
          = "standard") -> None:
    """Score a reconstruction (any code's) against the twin's ground truth: PCC, SSIM, FRC."""
    from twin.analysis import score as sc

    s = sc.score_files(recon, truth, pixel_size_m, split, method)
    prefix = frc_prefix if frc_prefix is not None else recon.with_suffix("")
    csv_path, png_path = sc.write_frc(s, prefix)
    d = s.as_dict() | {"frc_csv": str(csv_path), "frc_png": str(png_path)}
    if as_json:
        typer.echo(json.dumps(d, indent=2))
        return
    typer.echo(f"{recon} ({s.source}) against {truth}:")
    for line in sc.describe(s):
        typer.echo(f"  {line}")
    typer.echo(f"  FRC curve: {csv_path}, {png_path}")


@app.command()
@_guarded
def panda(scenario: Annotated[Path, typer.Argument(help="scenario TOML file")],
          host: Annotated[str, typer.Option(help="address to listen on (ports 8888 control, "
                                            "8889 data)")] = "127.0.0.1",
          speed: Annotated[float, typer.Option(help="time compression: 1 = real time, 10 = "
                                               "ten times faster")] = 1.0,
          seed: Annotated[Optional[int], typer.Option(help="random seed (default: the "
                                                      "scenario's)")] = None) -> None:
    """A PandA box emulator (PandABlocks TCP protocol) streaming the scenario's scan."""
    import math

    from twin import scenario as sc
    from twin.services import panda as ps
    from twin.geometry import Geometry
    from twin.workflows import panda as wp

    if not (math.isfinite(speed) and speed > 0):
        raise TwinInputError("--speed", speed, "must be a positive factor (1 = real time)")
    s = sc.load(scenario)
    if seed is not None:
        s = s.model_copy(update={"seed": int(seed)})
    g = Geometry.from_scenario(s)
    typer.echo(f"twin panda: preparing {g.frames_per_projection:,} rows of {s.name} "
               "(made block by block as they are streamed)", err=True)
    cap = wp.streamed_capture(s, g)
    ps.serve(cap, s.scan.frame_rate_hz, g.exposure_s, host=host, speed=speed,
             log=lambda m: typer.echo(m, err=True))


@app.command()
@_guarded
def assemble(
        panda: Annotated[Path, typer.Option("--panda", help="PandA capture: the HDF5 file "
                                            "`pandablocks hdf` writes")],
        frames: Annotated[Path, typer.Option("--frames", help="DECTRIS-style NeXus master "
                                             "file (its data files beside it)")],
        output: Annotated[Path, typer.Option("-o", "--output", help="OUT.cxi")],
        x_field: Annotated[str, typer.Option(help="capture field of x (object columns); "
                                             "BLOCK.FIELD[.CAPTURE], '-' in front flips it "
                                             "(--x-field=-INENC1.VAL)")] = "INENC1.VAL",
        y_field: Annotated[str, typer.Option(help="capture field of y (object rows)")]
        = "INENC2.VAL",
        position_unit: Annotated[str, typer.Option(
            help="unit of the captured positions (their SCALE's): m, mm, um, nm or metres "
                 "per stored unit")] = "m",
        crop: Annotated[Optional[int], typer.Option(
            help="side of the square frames around the direct beam (default: the largest "
                 "even 5-smooth side that fits)")] = None,
        truncate: Annotated[bool, typer.Option(
            "--truncate", help="where capture rows and frames differ in number, keep the "
                               "first min of both (else an error)")] = False,
        centre: Annotated[bool, typer.Option(
            "--centre/--no-centre", help="translations from the scanned field's centre")]
        = True,
        energy_kev: Annotated[Optional[float], typer.Option(
            help="photon energy (default: the master's incident wavelength)")] = None,
        distance_m: Annotated[Optional[float], typer.Option(
            help="sample–detector distance (default: the master's detector_distance)")] = None,
        compression: Annotated[str, typer.Option(help="gzip, bitshuffle or none")] = "gzip",
) -> None:
    """A CXI file from a PandA capture and detector frames in a NeXus master file."""
    from twin.io import assemble as asm

    if output.suffix.lower() not in (".cxi", ".h5", ".hdf5"):
        raise TwinInputError("--output", str(output), "allowed suffixes: .cxi, .h5")
    r = asm.assemble(panda, frames, output, x_field=x_field, y_field=y_field,
                     position_unit=position_unit, crop=crop, truncate=truncate, centre=centre,
                     energy_kev=energy_kev, distance_m=distance_m, compression=compression)
    typer.echo(f"wrote {r.n_frames} frames of {r.side_px}×{r.side_px} to {r.output}")
    dropped = f"; kept the first {r.n_frames} of {r.rows} rows and {r.frames_in} frames" \
        if (r.rows != r.n_frames or r.frames_in != r.n_frames) else ""
    typer.echo(f"  x from {r.fields[0]}, y from {r.fields[1]}; field "
               f"{r.extent_m[0] * 1e6:.4g} × {r.extent_m[1] * 1e6:.4g} µm around "
               f"({r.scan_centre_m[0] * 1e6:.6g}, {r.scan_centre_m[1] * 1e6:.6g}) µm{dropped}")
    typer.echo(f"  {r.energy_kev:.5g} keV, distance {r.distance_m:.5g} m, pixel "
               f"{r.pixel_size_m * 1e6:.4g} µm, {r.bad_pixels} bad pixel(s) masked; no "
               "starting probe (twin reconstruct models one from the frames)")


def main() -> None:
    """Console-script entry point (click's standalone mode: usage errors exit 2)."""
    app()


if __name__ == "__main__":
    main()
