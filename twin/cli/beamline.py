"""The beamline side: ``twin panda``, a PandA box emulator, and ``twin assemble``, measured frames
and positions into a CXI file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from twin.cli.common import guarded, say
from twin.core.errors import TwinInputError


@guarded
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
    ps.serve(cap, s.scan.frame_rate_hz, g.exposure_s, host=host, speed=speed, log=say)


@guarded
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
