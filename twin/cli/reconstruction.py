"""Reconstruction and scoring: ``twin reconstruct`` (ptychography of a CXI file, or of every
projection of a master file), ``twin tomo`` and ``twin score``."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Optional

import typer

from twin.cli.common import guarded, say, scheduler_address
from twin.core.errors import TwinInputError
from twin.recon import options as _recon_options

#: ``twin reconstruct``'s engine flags: each option's default (every choice left to the data:
#: twin.recon.options.AUTO), type, bounds and help come from twin.recon.options.Options
_ENGINE = _recon_options.Options(**_recon_options.AUTO)


def _engine(name: str):
    """The ``--name`` flag of engine option ``name``, its help from the options model."""
    return typer.Option(help=_recon_options.help_for(name))


@guarded
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
    from twin.recon.options import Options

    opts = Options(algorithm=algorithm, iterations=iterations, modes=modes,
                   batch_size=batch_size, position_correction=position_correction,
                   upsampling=upsampling, noise_model=noise_model, slices=slices,
                   slice_thickness_m=slice_thickness_m, seed=seed, backend=backend)
    _reconstruct(input, opts, _Controls(output, max_memory_gb, frames, scheduler, probe,
                                        object_, resume, checkpoint_every, background, preview,
                                        preview_every))


@dataclass(frozen=True)
class _Controls:
    """``twin reconstruct``'s flags that the engine options model does not hold."""

    output: Path                 #: ``-o``: OUT.h5 (CONTRACTS §4) or OUT.cxi
    max_memory_gb: float         #: frames above a quarter of this (float32) are streamed
    frames: int | None           #: only the first N frames
    scheduler: str | None        #: master file: a Dask scheduler's address
    probe: Path | None           #: a starting probe's file
    object_: Path | None         #: a starting object's file
    resume: Path | None          #: a reconstruction to continue
    checkpoint_every: int        #: write ``output`` every N iterations (0: at the end only)
    background: str | None       #: counts per pixel and frame: a number or an array's file
    preview: Path | None         #: a PNG refreshed while it runs
    preview_every: int           #: the preview's period in iterations

    def cxi_only(self) -> list[str]:
        """The flags given that only a CXI file takes (not a master file of projections)."""
        given = {"--probe": self.probe, "--object": self.object_, "--resume": self.resume,
                 "--background": self.background, "--preview": self.preview,
                 "--checkpoint-every": self.checkpoint_every or None}
        return [k for k, v in given.items() if v is not None]


def _reconstruct(input: Path, opts, c: _Controls) -> None:
    """``twin reconstruct`` with its flags read: a master file's projections, or a CXI file's
    reconstruction written to ``c.output`` (checkpoints and preview on the way)."""
    from twin.recon import controls as ctl

    _check_reconstruct_flags(c)
    if _reconstruct_master(input, opts, c):
        return
    data = _read_for_reconstruct(input, c.frames, c.max_memory_gb, c.background)
    start = ctl.load_start(data, opts.upsampling, c.probe, c.object_, c.resume)
    if start is not None and start.probe is not None:
        data.illumination = start.probe          # what the automatic choices start from too
    result = _run_with_controls(data, opts, start, input, c)
    if c.preview is not None:
        ctl.write_preview(c.preview, result)
    _write_recon(c.output, result, data, input)
    _say_reconstructed(c.output, result, data)


def _check_reconstruct_flags(c: _Controls) -> None:
    """``twin reconstruct``'s flags that the options model does not hold, checked."""
    if c.output.suffix.lower() not in (".h5", ".hdf5", ".cxi"):
        raise TwinInputError("--output", str(c.output), "allowed suffixes: .h5 "
                             "(book/contracts.md §4), .cxi (CXI product)")
    if c.max_memory_gb <= 0:
        raise TwinInputError("--max-memory-gb", c.max_memory_gb, "a positive number")
    for name, v in (("--checkpoint-every", c.checkpoint_every), ("--preview-every",
                                                                  c.preview_every)):
        if v < 0:
            raise TwinInputError(name, v, "0 or a positive number of iterations")
    if c.preview is not None and c.preview.suffix.lower() != ".png":
        raise TwinInputError("--preview", str(c.preview), "a .png file")


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


def _run_with_controls(data, opts, start, input: Path, c: _Controls):
    """``twin reconstruct`` of a CXI file's data: the engines with checkpoints of ``c.output``
    and the preview PNG written every so many iterations; warnings echoed."""
    import warnings

    import numpy as np

    from twin import recon
    from twin.recon import controls as ctl

    def on_state(r):                                 # every `every` iterations, not the last
        done = len(r.cost)
        if c.preview is not None and c.preview_every and done % c.preview_every == 0:
            ctl.write_preview(c.preview, r)
        if c.checkpoint_every and done % c.checkpoint_every == 0:
            _write_recon(c.output, r, data, input)

    every = int(np.gcd(c.checkpoint_every, c.preview_every if c.preview else 0))
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


def _reconstruct_master(master: Path, opts, c: _Controls) -> bool:
    """``twin reconstruct`` of a master file (twin.workflows.experiment_recon); False, having done
    nothing, where ``master`` is not one."""
    import numpy as np

    from twin.workflows import experiment_recon

    if not experiment_recon.is_master(master):
        if c.scheduler is not None:
            raise TwinInputError("--scheduler", c.scheduler, "only for a master file (`twin "
                                 "simulate` of a 3D scenario to OUT.h5)")
        return False
    if controls := c.cxi_only():
        raise TwinInputError(controls[0], str(master), "only for a CXI file, not a master file "
                             "of projections")
    address = scheduler_address(c.scheduler)
    r = experiment_recon.reconstruct_experiment(
        master, c.output, opts, scheduler=address, frames=c.frames,
        max_memory_gb=c.max_memory_gb, progress=True, log=say)
    for line in r.stopped_early:
        typer.echo(f"twin: warning: {line}", err=True)
    typer.echo(f"wrote {r.path}: Data Exchange stack {r.shape} (angles, rows, cols), pixel "
               f"{r.pixel_size_m * 1e9:.4g} nm")
    if np.all(np.isfinite(r.projection_pcc)):
        typer.echo(f"  against the ground truth: PCC(phase) per projection "
                   f"{r.projection_pcc.min():.4f} … {r.projection_pcc.max():.4f}")
    return True


@guarded
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
    vol = _tomo_volume(data, theta, algorithm, nonneg, filter_name, iterations, center, backend)
    write_volume(output, vol, pr.voxel_size_m, **extra)
    typer.echo(f"wrote {output}: volume {vol.shape}")


def _tomo_volume(data, theta, algorithm: str, nonneg: bool, filter_name: str,
                 iterations: int | None, center: float | None, backend: str):
    """``twin tomo``'s volume by ``algorithm`` (``auto`` resolved already): FBP about
    ``center``, or an iterative method on the projections shifted to centre the axis."""
    import numpy as np

    from twin.tomo import reconstruct as tm

    if algorithm == "fbp":
        return tm.fbp(data, theta, filter_name, center=center, backend=backend)
    if algorithm not in ("sart", "sirt", "tv"):
        raise TwinInputError("--algorithm", algorithm, "allowed: auto, fbp, sart, sirt, tv")
    if center is not None and center != data.shape[-1] // 2:
        shift = data.shape[-1] // 2 - center
        from twin.analysis.metrics import fourier_shift

        data = np.stack([fourier_shift(p, (0, shift)) for p in data]).astype(np.float32)
    fn = {"sart": tm.sart, "sirt": tm.sirt, "tv": tm.tv_reconstruct}[algorithm]
    its = iterations or {"sart": 10, "sirt": 50, "tv": 100}[algorithm]
    return fn(data, theta, iterations=its, nonneg=nonneg, progress=True)


@guarded
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
