"""Detector frames in the DECTRIS (EIGER/PILATUS4) NeXus layout: a master file and data files.

The master file ``<prefix>_master.h5`` holds the metadata and, under ``/entry/data``, external
links ``data_000001``, ``data_000002`` … to ``/entry/data/data`` (k, ny, nx) of the data files
``<prefix>_data_000001.h5`` … beside it. The metadata twin reads and writes (units as NeXus
``units`` attributes, fixed-length strings as DECTRIS writes them):

``/entry/instrument/detector/``
    ``x_pixel_size``, ``y_pixel_size`` (m), ``detector_distance`` (m), ``beam_center_x``,
    ``beam_center_y`` (pixel: column and row of the direct beam), ``count_time`` (s),
    ``frame_time`` (s);
``/entry/instrument/detector/detectorSpecific/``
    ``pixel_mask`` (uint32, non-zero = bad pixel: gap, dead, hot…), ``photon_energy`` (eV),
    ``nimages``, ``ntrigger``, ``x_pixels_in_detector``, ``y_pixels_in_detector``;
``/entry/instrument/beam/incident_wavelength`` (Å);
``/entry/sample/goniometer/chi`` (degree; Ptychodus's Velociprobe reader asks for it).

:func:`read_nexus` accepts what real masters also do: a ``pixel_mask`` directly under the
detector group, frames in the master itself (``/entry/data/data``), other length units
(``mm``, ``um``, ``nm``, ``angstrom``) and a photon energy instead of a wavelength. Whatever is
missing, unreadable or inconsistent is a :class:`~twin.core.errors.TwinInputError` naming the
file and the dataset.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from twin.core.constants import HC_KEV_M
from twin.core.errors import TwinInputError
from twin.io.atomic import atomic_path
from twin.io.hdf5 import compression_options, open_h5

DET = "entry/instrument/detector/"
SPECIFIC = DET + "detectorSpecific/"
WAVELENGTH = "entry/instrument/beam/incident_wavelength"
_LINK = re.compile(r"^data_(\d{6})$")
_LENGTH_M = {"m": 1.0, "meter": 1.0, "metre": 1.0, "mm": 1e-3, "um": 1e-6, "µm": 1e-6,
             "micron": 1e-6, "nm": 1e-9, "angstrom": 1e-10, "a": 1e-10, "å": 1e-10}
_TIME_S = {"s": 1.0, "second": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}


@dataclass(frozen=True)
class NexusFrames:
    """A DECTRIS-style master file, read for assembly (frames stay in their files).

    Attributes
    ----------
    master : Path
    parts : list of (label, Path, str, int)
        One per data file, in order: the link name, the file, the dataset path in it and its
        number of frames.
    frame_shape : (ny, nx)
    dtype : numpy dtype
        Stored counts type.
    pixel_size_m : (x, y) float
    distance_m : float or None
    energy_kev : float or None
        From the incident wavelength, else the detector's photon energy.
    beam_center_px : (x, y) float
        Column and row of the direct beam.
    count_time_s, frame_time_s : float or None
    pixel_mask : uint32 (ny, nx) or None
        Non-zero = bad pixel.
    """

    master: Path
    parts: list
    frame_shape: tuple
    dtype: np.dtype
    pixel_size_m: tuple
    distance_m: float | None
    energy_kev: float | None
    beam_center_px: tuple
    count_time_s: float | None
    frame_time_s: float | None
    pixel_mask: np.ndarray | None

    @property
    def n_frames(self) -> int:
        """Frames over all data files."""
        return int(sum(p[3] for p in self.parts))

    def iter_blocks(self, stop: int | None = None, block: int = 64):
        """Yield ``(start, frames)`` over the first ``stop`` frames (default all), file by file
        in blocks of at most ``block`` frames, as stored (dtype unchanged).

        A data file that cannot be read (truncated, corrupt) is a TwinInputError naming it.

        Parameters
        ----------
        stop : int, optional
            Number of frames to read from the start; all when None.
        block : int
            Most frames per block.

        Yields
        ------
        start : int
            Index of the block's first frame over all data files.
        frames : numpy.ndarray
            (k, ny, nx) counts with the stored dtype.

        Raises
        ------
        TwinInputError
            ``/entry/data/<label>`` when a data file cannot be read.
        """
        stop = self.n_frames if stop is None else int(stop)
        start = 0
        for label, path, dset, count in self.parts:
            if start >= stop:
                return
            take = min(count, stop - start)
            try:
                with h5py.File(path, "r") as f:
                    ds = f[dset]
                    for a in range(0, take, block):
                        yield start + a, ds[a:min(a + block, take)]
            except (OSError, KeyError, ValueError) as exc:
                raise TwinInputError(f"/entry/data/{label}", str(path),
                                     f"the frames cannot be read (truncated or corrupt?): "
                                     f"{exc}") from None
            start += take


def _text(value) -> str:
    if isinstance(value, (bytes, np.bytes_)):
        return value.decode("utf-8", "replace")
    return str(value)


def _scalar(f: h5py.File, name: str, units: dict, default_unit: str, required: bool = True):
    """A positive scalar dataset converted to SI by its ``units`` attribute, or None."""
    if name not in f:
        if required:
            raise TwinInputError("/" + name, str(f.filename),
                                 "is missing from the NeXus master file")
        return None
    ds = f[name]
    unit = _text(ds.attrs.get("units", default_unit)).strip().lower()
    if unit not in units:
        raise TwinInputError("/" + name + "@units", unit, f"allowed units: {sorted(units)}")
    try:
        v = float(np.asarray(ds[()]).ravel()[0]) * units[unit]
    except (TypeError, ValueError, IndexError, OSError) as exc:
        raise TwinInputError("/" + name, str(f.filename), f"must be a number: {exc}") from None
    if not (np.isfinite(v) and v > 0):
        raise TwinInputError("/" + name, v, "must be a positive finite number")
    return v


def _parts(f: h5py.File, master: Path) -> list:
    """(label, file, dataset, frames) of every data file the master links, in order."""
    if "entry/data" not in f:
        raise TwinInputError("/entry/data", str(master), "the NeXus master has no data group")
    group = f["entry/data"]
    names = sorted(k for k in group if _LINK.match(k))
    if not names and isinstance(group.get("data"), h5py.Dataset):
        names = ["data"]                   # frames in the master itself
    if not names:
        raise TwinInputError("/entry/data", str(master),
                             "links data_000001, data_000002 … (or a dataset 'data') expected")
    parts = []
    for name in names:
        link = group.get(name, getlink=True)
        if isinstance(link, h5py.ExternalLink):
            path = Path(link.filename)
            path = path if path.is_absolute() else master.parent / path
            dset = link.path
        else:
            path, dset = master, f"entry/data/{name}"
        if not path.exists():
            raise TwinInputError(f"/entry/data/{name}", str(path), "the data file is missing")
        try:
            with h5py.File(path, "r") as d:
                ds = d[dset]
                shape, dtype = ds.shape, ds.dtype
        except (OSError, KeyError, ValueError) as exc:
            raise TwinInputError(f"/entry/data/{name}", f"{path}:{dset}",
                                 f"an HDF5 dataset of frames expected: {exc}") from None
        if len(shape) != 3 or shape[0] < 1:
            raise TwinInputError(f"/entry/data/{name}", shape, "must be (n, ny, nx) frames")
        if parts and (shape[1:] != parts[0][4] or dtype != parts[0][5]):
            raise TwinInputError(f"/entry/data/{name}", (shape, str(dtype)),
                                 f"every data file must hold {parts[0][4]} frames of "
                                 f"{parts[0][5]}")
        parts.append((name, path, dset, int(shape[0]), tuple(shape[1:]), dtype))
    return parts


def _pixel_mask(f: h5py.File, shape: tuple) -> np.ndarray | None:
    for name in (SPECIFIC + "pixel_mask", DET + "pixel_mask"):
        if name in f:
            try:
                m = np.asarray(f[name][()])
            except OSError as exc:
                raise TwinInputError("/" + name, str(f.filename), f"unreadable: {exc}") from None
            if m.shape != shape:
                raise TwinInputError("/" + name, m.shape, f"must match the frames {shape}")
            return m.astype(np.uint32)
    return None


def read_nexus(master: str | Path) -> NexusFrames:
    """Read a DECTRIS-style NeXus master file and check its data files (frames stay there).

    Parameters
    ----------
    master : str or Path
        The ``*_master.h5`` file.

    Returns
    -------
    NexusFrames

    Raises
    ------
    TwinInputError
        A missing, truncated or inconsistent file or dataset, named.
    """
    master = Path(master)
    with open_h5(master, "NeXus master", "--frames") as f:
        parts = _parts(f, master)
        shape, dtype = parts[0][4], parts[0][5]
        px = _scalar(f, DET + "x_pixel_size", _LENGTH_M, "m")
        py = _scalar(f, DET + "y_pixel_size", _LENGTH_M, "m")
        dist = _scalar(f, DET + "detector_distance", _LENGTH_M, "m", required=False)
        lam = _scalar(f, WAVELENGTH, _LENGTH_M, "angstrom", required=False)
        energy = HC_KEV_M / lam if lam else None
        if energy is None and SPECIFIC + "photon_energy" in f:
            energy = _scalar(f, SPECIFIC + "photon_energy", {"ev": 1e-3, "kev": 1.0}, "ev")
        centre = []
        for axis, n in (("x", shape[1]), ("y", shape[0])):
            name = DET + f"beam_center_{axis}"
            if name not in f:
                centre.append(n / 2)       # no beam centre: the frame's centre
                continue
            c = float(np.asarray(f[name][()]).ravel()[0])
            if not (np.isfinite(c) and 0 <= c < n):
                raise TwinInputError("/" + name, c, f"a pixel index in [0, {n}) expected")
            centre.append(c)
        count = _scalar(f, DET + "count_time", _TIME_S, "s", required=False)
        frame = _scalar(f, DET + "frame_time", _TIME_S, "s", required=False)
        mask = _pixel_mask(f, shape)
    return NexusFrames(master, [p[:4] for p in parts], shape, dtype, (px, py), dist, energy,
                       tuple(centre), count, frame, mask)


# ----------------------------------------------------------------------------- writing


def _units(group: h5py.Group, name: str, value, units: str) -> None:
    ds = group.create_dataset(name, data=value)
    ds.attrs["units"] = np.bytes_(units)    # fixed-length, as DECTRIS writes them


def data_file_name(master: Path, k: int) -> Path:
    """The k-th (1-based) data file beside ``master``: ``<prefix>_data_00000k.h5``.

    Parameters
    ----------
    master : Path
        The master file, ``<prefix>_master.h5`` (or ``<prefix>.h5``).
    k : int
        1-based index of the data file.

    Returns
    -------
    Path
        ``<prefix>_data_<k:06d>.h5`` in ``master``'s directory.
    """
    prefix = master.name.removesuffix(".h5").removesuffix("_master")
    return master.parent / f"{prefix}_data_{k:06d}.h5"


def write_nexus(master: str | Path, frames, *, pixel_size_m: float, distance_m: float,
                energy_kev: float, beam_center_px: tuple | None = None,
                count_time_s: float | None = None, frame_time_s: float | None = None,
                pixel_mask: np.ndarray | None = None, frames_per_file: int = 1000,
                compression: str = "gzip") -> list[Path]:
    """Write frames as a DECTRIS-style NeXus master file and its data files.

    Every file is written under a temporary name and renamed on success; the master last, so a
    failure leaves no master pointing at missing data.

    Parameters
    ----------
    master : str or Path
        ``<prefix>_master.h5``; data files ``<prefix>_data_000001.h5`` … go beside it.
    frames : array (N, ny, nx)
        Counts, stored with their dtype.
    pixel_size_m, distance_m : float
        Detector pixel (square) and sample–detector distance.
    energy_kev : float
        Photon energy (stored as the incident wavelength in Å and the photon energy in eV).
    beam_center_px : (x, y), optional
        Column and row of the direct beam (default: ``(nx // 2, ny // 2)``).
    count_time_s, frame_time_s : float, optional
        Exposure and frame period.
    pixel_mask : (ny, nx), optional
        Non-zero = bad pixel (stored as uint32).
    frames_per_file : int
        Frames per data file.
    compression : {"gzip", "bitshuffle", "none"}

    Returns
    -------
    list of Path
        The master file, then the data files.
    """
    master = Path(master)
    frames = np.asarray(frames)
    if frames.ndim != 3 or len(frames) < 1:
        raise TwinInputError("frames", frames.shape, "must be (N, ny, nx) with N ≥ 1")
    if frames_per_file < 1:
        raise TwinInputError("frames_per_file", frames_per_file, "must be ≥ 1")
    n, ny, nx = frames.shape
    options = compression_options(compression)
    written = []
    for k, a in enumerate(range(0, n, frames_per_file), start=1):
        written.append(data_file_name(master, k))
        _write_data_file(written[-1], frames[a:a + frames_per_file], a + 1, options)
    centre = (nx // 2, ny // 2) if beam_center_px is None else beam_center_px
    with atomic_path(master) as tmp, h5py.File(tmp, "w") as f:
        _write_master(f, written, (n, ny, nx), pixel_size_m, distance_m, energy_kev, centre,
                      count_time_s, frame_time_s, pixel_mask)
    return [master] + written


def _write_data_file(path: Path, block: np.ndarray, first: int, options: dict) -> None:
    """One data file: ``/entry/data/data`` chunked by frame, numbered from ``first``."""
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        e = f.create_group("entry")
        e.attrs["NX_class"] = np.bytes_("NXentry")
        g = e.create_group("data")
        g.attrs["NX_class"] = np.bytes_("NXdata")
        ds = g.create_dataset("data", data=block, chunks=(1, *block.shape[1:]), **options)
        ds.attrs["image_nr_low"] = np.int32(first)
        ds.attrs["image_nr_high"] = np.int32(first + len(block) - 1)


def _write_master(f: h5py.File, data_files: list, shape: tuple, pixel_size_m: float,
                  distance_m: float, energy_kev: float, centre: tuple, count_time_s,
                  frame_time_s, pixel_mask) -> None:
    n, ny, nx = shape
    e = f.create_group("entry")
    e.attrs["NX_class"] = np.bytes_("NXentry")
    e["definition"] = np.bytes_("NXmx")
    g = e.create_group("data")
    g.attrs["NX_class"] = np.bytes_("NXdata")
    for k, path in enumerate(data_files, start=1):
        g[f"data_{k:06d}"] = h5py.ExternalLink(path.name, "/entry/data/data")
    inst = e.create_group("instrument")
    inst.attrs["NX_class"] = np.bytes_("NXinstrument")
    beam = inst.create_group("beam")
    beam.attrs["NX_class"] = np.bytes_("NXbeam")
    _units(beam, "incident_wavelength", HC_KEV_M / energy_kev / 1e-10, "angstrom")
    det = inst.create_group("detector")
    det.attrs["NX_class"] = np.bytes_("NXdetector")
    det["description"] = np.bytes_("twin simulated detector (DECTRIS NeXus layout)")
    _units(det, "x_pixel_size", float(pixel_size_m), "m")
    _units(det, "y_pixel_size", float(pixel_size_m), "m")
    _units(det, "detector_distance", float(distance_m), "m")
    _units(det, "beam_center_x", float(centre[0]), "pixel")
    _units(det, "beam_center_y", float(centre[1]), "pixel")
    if count_time_s is not None:
        _units(det, "count_time", float(count_time_s), "s")
    if frame_time_s is not None:
        _units(det, "frame_time", float(frame_time_s), "s")
    spec = det.create_group("detectorSpecific")
    spec.attrs["NX_class"] = np.bytes_("NXcollection")
    spec["nimages"] = np.uint32(n)
    spec["ntrigger"] = np.uint32(1)
    _units(spec, "photon_energy", float(energy_kev) * 1e3, "eV")
    spec["x_pixels_in_detector"] = np.uint32(nx)
    spec["y_pixels_in_detector"] = np.uint32(ny)
    mask = np.zeros((ny, nx), np.uint32) if pixel_mask is None else pixel_mask
    spec.create_dataset("pixel_mask", data=np.asarray(mask, np.uint32))
    gon = e.create_group("sample/goniometer")
    gon.attrs["NX_class"] = np.bytes_("NXtransformations")
    _units(gon, "chi", 0.0, "degree")


def cxi_to_nexus(cxi: str | Path, master: str | Path, frames_per_file: int = 1000,
                 compression: str = "gzip") -> list[Path]:
    """Export a CXI file's frames (e.g. a twin simulation) in the DECTRIS NeXus layout.

    The counts keep their stored dtype; the CXI's mask (1 = valid) becomes the pixel mask
    (non-zero = bad); the beam centre is the frames' DC pixel (nx // 2, ny // 2).

    Parameters
    ----------
    cxi : str or Path
        A CXI file of CONTRACTS §3.
    master : str or Path
        The master file to write (``<prefix>_master.h5``).
    frames_per_file, compression :
        As :func:`write_nexus`.

    Returns
    -------
    list of Path
        The master file, then the data files.
    """
    from twin.io.cxi import read_cxi

    data = read_cxi(cxi, lazy=True)
    data.frames.close()
    with h5py.File(cxi, "r") as f:
        counts = f["entry_1/data_1/data"][()]
    frame_time = 1.0 / data.frame_rate_hz if data.frame_rate_hz else None
    bad = None if data.mask is None else (np.asarray(data.mask) == 0).astype(np.uint32)
    return write_nexus(master, counts, pixel_size_m=data.pixel_size_m,
                       distance_m=data.distance_m, energy_kev=data.energy_kev,
                       count_time_s=data.exposure_s, frame_time_s=frame_time,
                       pixel_mask=bad, frames_per_file=frames_per_file,
                       compression=compression)
