"""Real data in (``twin assemble``): a PandA capture and detector frames become one CXI file.

Inputs
------
* The HDF5 file that the PandABlocks client's ``pandablocks hdf HOST SCHEME`` writes for one
  acquisition: one 1D dataset per captured field, named ``BLOCK.FIELD.CAPTURE`` (e.g.
  ``INENC1.VAL.Value``, ``INENC1.VAL.Mean``, ``PCAP.TS_TRIG.Value``), one row per PCAP
  trigger, already scaled by the field's ``SCALE`` and ``OFFSET`` (the client scales raw
  counts; the file keeps neither the scale nor the ``UNITS``). The position unit is therefore
  an option: metres by default, as ``twin panda`` sets ``INENC*.VAL.UNITS = m``.
* Detector frames in the DECTRIS NeXus layout (:mod:`twin.io.nexus`).

Assembly
--------
Row k of the capture is the position of frame k (one captured row per detector trigger). A
different number of rows and frames is bad input unless ``truncate`` keeps the first
min(rows, frames). The x and y fields (defaults ``INENC1.VAL`` and ``INENC2.VAL``, as
``twin panda`` streams them; a name without the capture suffix takes ``.Mean`` if captured,
else ``.Value``; a leading ``-`` flips the axis) are converted to metres and, with ``centre``,
the centre of the scanned field ((min + max) / 2 on each axis) is subtracted, so that the
reconstruction's centre pixel is the field's centre; that centre is kept as the translation's
attribute ``scan_centre_m``. Frames are cropped to an n × n square with the direct beam
(rounded to a pixel) at (n // 2, n // 2), CONTRACTS §3's DC pixel; by default n is the largest
even 5-smooth size that fits around the beam. Pixels the detector's ``pixel_mask`` marks bad
are stored as 0 and the CXI mask (1 = valid) is written where any pixel is bad. No starting
probe is written: ``twin reconstruct`` models one from the mean diffraction amplitude.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from twin.core.errors import TwinInputError
from twin.io.cxi import CXIWriter
from twin.io.hdf5 import open_h5
from twin.io.nexus import NexusFrames, read_nexus

#: Trigger time stamps, in the order looked for (a real PandA's PCAP field is TS_TRIG; twin's
#: emulator calls it TS_TRIGGER).
TIME_FIELDS = ("PCAP.TS_TRIG.Value", "PCAP.TS_TRIGGER.Value")
UNITS_M = {"m": 1.0, "mm": 1e-3, "um": 1e-6, "µm": 1e-6, "nm": 1e-9}


@dataclass(frozen=True)
class PandaCapture:
    """Positions read from a ``pandablocks hdf`` file.

    Attributes
    ----------
    path : Path
    x_m, y_m : float64 (N,)
        Positions in metres, as captured (signs applied, nothing subtracted).
    t_s : float64 (N,) or None
        Trigger times, where a time-stamp field was captured.
    fields : (str, str)
        The datasets x and y were read from (with a leading ``-`` where flipped).
    """

    path: Path
    x_m: np.ndarray
    y_m: np.ndarray
    t_s: np.ndarray | None
    fields: tuple


@dataclass(frozen=True)
class AssemblySummary:
    """What :func:`assemble` wrote.

    Attributes
    ----------
    output : Path
    n_frames, side_px : int
        Frames written and their side after cropping.
    rows, frames_in : int
        Capture rows and detector frames found (before any truncation).
    pixel_size_m, distance_m, energy_kev : float
    scan_centre_m : (2,) float
        The x, y centre subtracted from the positions (zeros without ``centre``).
    extent_m : (2,) float
        The scanned field's x, y size.
    bad_pixels : int
        Pixels of the cropped frame the pixel mask marks bad.
    fields : (str, str)
        The capture's datasets used for x and y.
    """

    output: Path
    n_frames: int
    side_px: int
    rows: int
    frames_in: int
    pixel_size_m: float
    distance_m: float
    energy_kev: float
    scan_centre_m: np.ndarray
    extent_m: np.ndarray
    bad_pixels: int
    fields: tuple


def position_scale_m(unit: str) -> float:
    """Metres per stored position unit: ``m``, ``mm``, ``um``, ``nm`` or a positive number.

    Parameters
    ----------
    unit : str
        ``m``, ``mm``, ``um``, ``µm`` or ``nm`` (case-insensitive, surrounding blanks ignored),
        or a number: metres per stored unit.

    Returns
    -------
    float
        Metres per stored unit.

    Raises
    ------
    TwinInputError
        ``--position-unit`` for an unknown name or a number that is not finite and > 0.
    """
    key = str(unit).strip()
    if key.lower() in UNITS_M:
        return UNITS_M[key.lower()]
    try:
        v = float(key)
    except ValueError:
        v = float("nan")
    if not (np.isfinite(v) and v > 0):
        raise TwinInputError("--position-unit", unit,
                             f"allowed: {', '.join(UNITS_M)} or metres per stored unit (> 0)")
    return v


def _field(f: h5py.File, spec: str, option: str) -> tuple[str, float]:
    """(dataset name, sign) of a position field given as ``[-]BLOCK.FIELD[.CAPTURE]``."""
    sign = -1.0 if spec.startswith("-") else 1.0
    name = spec.lstrip("-+").strip()
    candidates = [name, name + ".Mean", name + ".Value"]
    for c in candidates:
        if c in f and isinstance(f[c], h5py.Dataset):
            return c, sign
    fields = sorted(k for k in f if isinstance(f[k], h5py.Dataset))
    raise TwinInputError(option, spec, f"no such field in {f.filename}; captured fields: "
                         f"{', '.join(fields) or '(none)'}")


def _column(f: h5py.File, name: str, option: str) -> np.ndarray:
    try:
        v = np.asarray(f[name][()], dtype=np.float64)
    except (OSError, ValueError, TypeError) as exc:
        raise TwinInputError(option, f"{f.filename}:/{name}",
                             f"unreadable (truncated or corrupt?): {exc}") from None
    if v.ndim != 1:
        raise TwinInputError(option, f"/{name} {v.shape}", "one value per row (1D) expected")
    bad = np.flatnonzero(~np.isfinite(v))
    if bad.size:
        raise TwinInputError(option, f"/{name}[{bad[0]}] = {v[bad[0]]}",
                             "positions must be finite")
    return v


def read_panda_capture(path: str | Path, x_field: str = "INENC1.VAL",
                       y_field: str = "INENC2.VAL", position_unit: str = "m") -> PandaCapture:
    """Read x, y positions (and trigger times) from a ``pandablocks hdf`` capture file.

    Parameters
    ----------
    path : str or Path
        The capture file.
    x_field, y_field : str
        Position fields, ``[-]BLOCK.FIELD[.CAPTURE]`` (see the module's docstring).
    position_unit : str
        Unit of the stored (scaled) positions: ``m``, ``mm``, ``um``, ``nm`` or metres per
        stored unit.

    Returns
    -------
    PandaCapture
    """
    path = Path(path)
    scale = position_scale_m(position_unit)
    with open_h5(path, "PandA capture", "--panda") as f:
        xn, xs = _field(f, x_field, "--x-field")
        yn, ys = _field(f, y_field, "--y-field")
        x = _column(f, xn, "--x-field") * xs * scale
        y = _column(f, yn, "--y-field") * ys * scale
        if len(x) != len(y):
            raise TwinInputError("--y-field", f"/{yn}: {len(y)} rows",
                                 f"must have as many rows as /{xn} ({len(x)})")
        t = None
        for name in TIME_FIELDS:
            if name in f:
                t = _column(f, name, "--panda")
                break
    if len(x) == 0:
        raise TwinInputError("--panda", str(path), "the capture has no rows")
    if t is not None and (len(t) != len(x) or np.any(np.diff(t) < 0)):
        raise TwinInputError("--panda", f"{path}: trigger times",
                             "one non-decreasing time per row expected (rows out of order?)")
    label = ("-" if xs < 0 else "") + xn, ("-" if ys < 0 else "") + yn
    return PandaCapture(path, x, y, t, label)


def _smooth(n: int) -> bool:
    for p in (2, 3, 5):
        while n % p == 0:
            n //= p
    return n == 1


def crop_window(frame_shape: tuple, beam_center_px: tuple, crop: int | None) -> tuple:
    """(row0, col0, n): the n × n window whose pixel (n // 2, n // 2) is the direct beam.

    Parameters
    ----------
    frame_shape : (ny, nx)
    beam_center_px : (x, y)
        Column and row of the direct beam (rounded to the nearest pixel).
    crop : int or None
        The side n; None: the largest even 5-smooth side that fits (FFT-friendly).
    """
    ny, nx = frame_shape
    cy, cx = int(np.floor(beam_center_px[1] + 0.5)), int(np.floor(beam_center_px[0] + 0.5))
    # with n even, n // 2 pixels before the centre and n // 2 from it onwards
    room = min(cy, ny - cy, cx, nx - cx)
    if crop is None:
        n = 2 * room
        while n > 0 and not _smooth(n):
            n -= 2
        if n < 2:
            raise TwinInputError("beam_center", (beam_center_px[0], beam_center_px[1]),
                                 f"the direct beam must lie inside the {ny} × {nx} frame")
    else:
        n = int(crop)
        if n < 2 or n // 2 > min(cy, cx) or n - n // 2 > min(ny - cy, nx - cx):
            raise TwinInputError("--crop", crop, f"a side of 2 … {2 * room} px fits around the "
                                 f"beam at (x {cx}, y {cy}) in the {nx} × {ny} frame")
    return cy - n // 2, cx - n // 2, n


def _geometry(frames: NexusFrames, energy_kev, distance_m) -> tuple[float, float, float]:
    """(pixel, distance, energy) with the options overriding the master file."""
    px, py = frames.pixel_size_m
    if not np.isclose(px, py, rtol=1e-6, atol=0):
        raise TwinInputError("/entry/instrument/detector/y_pixel_size", py,
                             f"square pixels expected (x_pixel_size is {px})")
    for option, v in (("--energy-kev", energy_kev), ("--distance-m", distance_m)):
        if v is not None and not (np.isfinite(v) and v > 0):
            raise TwinInputError(option, v, "must be a positive number")
    energy = energy_kev if energy_kev is not None else frames.energy_kev
    if energy is None:
        raise TwinInputError("/entry/instrument/beam/incident_wavelength", str(frames.master),
                             "missing (and no detectorSpecific/photon_energy): give "
                             "--energy-kev")
    dist = distance_m if distance_m is not None else frames.distance_m
    if dist is None:
        raise TwinInputError("/entry/instrument/detector/detector_distance",
                             str(frames.master), "missing: give --distance-m")
    return float(px), float(dist), float(energy)


def _rows(cap: PandaCapture, frames: NexusFrames, truncate: bool) -> int:
    rows, n = len(cap.x_m), frames.n_frames
    if rows != n and not truncate:
        raise TwinInputError("--panda", f"{rows} rows in {cap.path.name}",
                             f"one captured row per detector frame expected, and "
                             f"{frames.master.name} holds {n} frames; --truncate keeps the "
                             f"first {min(rows, n)}")
    return min(rows, n)


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False


def assemble(panda: str | Path, master: str | Path, output: str | Path, *,
             x_field: str = "INENC1.VAL", y_field: str = "INENC2.VAL",
             position_unit: str = "m", crop: int | None = None, truncate: bool = False,
             centre: bool = True, energy_kev: float | None = None,
             distance_m: float | None = None, compression: str = "gzip") -> AssemblySummary:
    """Build a CXI file (CONTRACTS §3, no ground truth) from a PandA capture and NeXus frames.

    Parameters
    ----------
    panda : str or Path
        The ``pandablocks hdf`` capture file.
    master : str or Path
        The DECTRIS-style NeXus master file.
    output : str or Path
        The CXI file to write (atomically).
    x_field, y_field, position_unit :
        As :func:`read_panda_capture`.
    crop : int, optional
        Side of the square frames (default: the largest even 5-smooth that fits).
    truncate : bool
        Keep the first min(rows, frames) where their numbers differ (else bad input).
    centre : bool
        Subtract the scanned field's centre from the positions.
    energy_kev, distance_m : float, optional
        Override the master file's photon energy and detector distance.
    compression : {"gzip", "bitshuffle", "none"}

    Returns
    -------
    AssemblySummary
    """
    output = Path(output)
    if output.is_dir():
        raise TwinInputError("-o", str(output), "is a directory; give a file name OUT.cxi")
    cap = read_panda_capture(panda, x_field, y_field, position_unit)
    frames = read_nexus(master)
    inputs = [cap.path, frames.master] + [p[1] for p in frames.parts]
    if any(_same_file(output, p) for p in inputs):
        raise TwinInputError("-o", str(output), "would overwrite an input file")
    pixel, dist, energy = _geometry(frames, energy_kev, distance_m)
    n = _rows(cap, frames, truncate)
    r0, c0, side = crop_window(frames.frame_shape, frames.beam_center_px, crop)
    window = (slice(r0, r0 + side), slice(c0, c0 + side))
    xy = np.stack([cap.x_m[:n], cap.y_m[:n]], axis=1)
    lo, hi = xy.min(axis=0), xy.max(axis=0)
    mid = (lo + hi) / 2 if centre else np.zeros(2)
    bad = None if frames.pixel_mask is None else frames.pixel_mask[window] != 0
    tr = np.concatenate([xy - mid, np.zeros((n, 1))], axis=1)
    _write(output, frames, window, bad, tr, (pixel, dist, energy), compression,
           scan_centre_m=mid, x_field=cap.fields[0], y_field=cap.fields[1])
    return AssemblySummary(output, n, side, len(cap.x_m), frames.n_frames, pixel, dist,
                           energy, mid, hi - lo, int(0 if bad is None else bad.sum()),
                           cap.fields)


def _write(output: Path, frames: NexusFrames, window: tuple, bad, tr: np.ndarray,
           geometry: tuple, compression: str, **attrs) -> None:
    """Stream the cropped frames (bad pixels zeroed) and the translations into the CXI."""
    pixel, dist, energy = geometry
    n, side = len(tr), window[0].stop - window[0].start
    rate = 1.0 / frames.frame_time_s if frames.frame_time_s else None
    with CXIWriter(output, n, (side, side), frames.dtype, distance_m=dist, pixel_size_m=pixel,
                   energy_kev=energy, compression=compression,
                   exposure_s=frames.count_time_s, frame_rate_hz=rate,
                   title=frames.master.stem) as w:
        for start, block in frames.iter_blocks(stop=n):
            block = np.array(block[(slice(None),) + window])
            if block.dtype.kind == "f" and not np.all(np.isfinite(block)):
                raise TwinInputError(f"{frames.master}: frames {start}…{start + len(block)}",
                                     "NaN/inf", "counts must be finite")
            if bad is not None:
                block[:, bad] = 0
            w.write_frames(start, block)
        w.write("entry_1/data_1/translation", tr, units="m", **attrs)
        if bad is not None and bad.any():
            # CONTRACTS §3: 1 = valid (written only where some pixel is not, as simulate does)
            w.write("entry_1/instrument_1/detector_1/mask", (~bad).astype(np.uint8))
