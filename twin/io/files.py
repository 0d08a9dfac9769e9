"""File formats: CXI for ptychographic data (CONTRACTS §3), reconstruction output (§4) and
Data Exchange for tomography (§5).

Every writer writes to a temporary name beside the target and renames it on success, so a
failed or interrupted command leaves nothing under the requested name. Every reader checks the
layout and raises :class:`~twin.errors.TwinInputError` naming the dataset that is missing, of
the wrong shape, or unreadable (a truncated file).

Formats are registered in :data:`READERS` / :data:`WRITERS` by name: adding one touches this
file only.
"""

from __future__ import annotations

import contextlib
import glob
import os
import signal
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from twin.core.constants import HC_KEV_M, E_CHARGE_C
from twin.core.errors import TwinInputError
from twin.operators.propagation import farfield_pixel_m

try:  # registers bitshuffle/LZ4 with h5py, for reading too
    import hdf5plugin
except ImportError:  # pragma: no cover
    hdf5plugin = None

COMPRESSIONS = ("gzip", "bitshuffle", "none")
#: Deflate level of the default CXI compression. Measured (README, "Files other software
#: reads") on quickstart, SELUN 110 kHz and EIGER 3 kHz frames: writing with shuffle + deflate-4
#: costs 5-8 % of the frames' simulation time (level 1: 3-6 %, level 6: 5-13 %) and gives files
#: 6-30 % smaller than level 1 and 2-2.2x smaller than bitshuffle-LZ4.
GZIP_LEVEL = 4


def _compression(name: str = "gzip") -> dict:
    """h5py dataset options for the frames.

    ``gzip``: byte shuffle + deflate, filters built into every HDF5 library (plain h5py,
    MATLAB, HDFView) - the default. ``bitshuffle``: bitshuffle + LZ4, the detector vendors'
    native format; readers need the plugin (``pip install hdf5plugin`` and
    ``import hdf5plugin`` before opening). ``none``: no filter.
    """
    if name == "gzip":
        return {"compression": "gzip", "compression_opts": GZIP_LEVEL, "shuffle": True}
    if name == "bitshuffle":
        if hdf5plugin is None:  # pragma: no cover - hdf5plugin is a dependency
            raise TwinInputError("--compression", name,
                                 "bitshuffle needs the hdf5plugin package (pip install "
                                 "hdf5plugin); use gzip, which every HDF5 library reads")
        return dict(hdf5plugin.Bitshuffle(nelems=0, cname="lz4"))
    if name == "none":
        return {}
    raise TwinInputError("--compression", name, f"allowed: {', '.join(COMPRESSIONS)}")


compression_options = _compression


def check_output_file(path: str | Path, option: str = "-o/--output") -> Path:
    """Refuse, before any work, an output file name that names a directory or lies under a
    file (:class:`TwinInputError` naming ``option``)."""
    path = Path(path)
    if path.is_dir():
        raise TwinInputError(option, str(path), "is a directory; give a file name, e.g. "
                             f"{path / 'out'}{path.suffix or ''}")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise TwinInputError(option, str(path), f"{parent} is a file, not a directory")
            break
    return path


# --- atomic writes: temporaries that never outlive their writer ---------------------------------
#
# A temporary is named ``.<name>.<pid>@<host>.<random>.part`` beside its target, so that a later
# write to the same target can tell its own leftovers (a dead writer on this host) from another
# live writer's. While one is open, SIGINT and SIGTERM remove every open temporary before the
# interpreter acts on the signal (SIGINT still raises KeyboardInterrupt; SIGTERM exits with
# status 143 through the usual unwinding, so locks and other files are released too).

_LIVE_TEMPORARIES: set[str] = set()
_PREVIOUS_HANDLERS: dict[int, object] = {}
_STALE_AGE_OTHER_HOST_S = 7 * 86400


def _host_tag() -> str:
    import re
    import socket

    return re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname())[:40] or "host"


def _remove_live_temporaries() -> None:
    for tmp in list(_LIVE_TEMPORARIES):
        try:
            os.unlink(tmp)
        except OSError:
            pass
        _LIVE_TEMPORARIES.discard(tmp)


def _on_signal(signum, frame):
    _remove_live_temporaries()
    previous = _PREVIOUS_HANDLERS.get(signum)
    if callable(previous):
        return previous(signum, frame)
    if signum == signal.SIGINT:
        raise KeyboardInterrupt
    raise SystemExit(128 + signum)


def _install_signal_cleanup() -> None:
    """Route SIGINT/SIGTERM through :func:`_on_signal` (main thread only; once per process)."""
    if _PREVIOUS_HANDLERS or threading.current_thread() is not threading.main_thread():
        return
    for sig in (signal.SIGINT, signal.SIGTERM):
        previous = signal.getsignal(sig)
        if previous in (signal.SIG_IGN, None):
            continue
        try:
            signal.signal(sig, _on_signal)
        except (ValueError, OSError):  # pragma: no cover - not the main interpreter
            continue
        _PREVIOUS_HANDLERS[sig] = previous


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temporaries(path: str | Path) -> list[Path]:
    """Remove the temporaries of earlier writes to ``path`` whose writer is gone.

    A temporary of this host is stale when its writer's process no longer exists; one of another
    host (a shared file system) when it is older than a week; one in the old unnamed form
    (``.<name>.<random>.part``) always. Returns the removed paths.
    """
    import re
    import time

    path = Path(path)
    if not path.parent.is_dir():
        return []
    pattern = re.compile(rf"^\.{re.escape(path.name)}\.(?:(\d+)@([A-Za-z0-9-]+)\.)?[^.]+\.part$")
    host = _host_tag()
    removed = []
    for p in path.parent.glob(f".{glob.escape(path.name)}.*.part"):
        m = pattern.match(p.name)
        if m is None or str(p) in _LIVE_TEMPORARIES:
            continue
        pid, where = m.group(1), m.group(2)
        if pid is None:
            stale = True
        elif where == host:
            stale = int(pid) != os.getpid() and not _pid_alive(int(pid))
        else:
            try:
                stale = time.time() - p.stat().st_mtime > _STALE_AGE_OTHER_HOST_S
            except OSError:
                continue
        if stale:
            try:
                p.unlink()
                removed.append(p)
            except OSError:
                pass
    return removed


def _current_umask() -> int:
    """The process's umask, read without changing it where Linux shows it (/proc), else by
    the set-and-restore of :func:`os.umask`."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | Path):
    """Yield a temporary path beside ``path``; rename it to ``path`` only if the block succeeds.

    On any exception, and on SIGINT or SIGTERM, the temporary is removed (the target, if it
    existed, is untouched). Temporaries that earlier, killed writes to the same target left
    behind are removed first (:func:`remove_stale_temporaries`).

    Parameters
    ----------
    path : str or Path
        The file to write.
    """
    path = check_output_file(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    _install_signal_cleanup()
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}@{_host_tag()}.",
                               suffix=".part", dir=path.parent)
    # mkstemp creates the file 0600; the result gets the mode an ordinary open() would give
    # (0644 under umask 022), so that colleagues on a shared file system can read it
    os.fchmod(fd, 0o666 & ~_current_umask())
    os.close(fd)
    _LIVE_TEMPORARIES.add(tmp)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    finally:
        _LIVE_TEMPORARIES.discard(tmp)


# ----------------------------------------------------------------------------- CXI


@dataclass
class GroundTruth:
    """What the simulation knew and a real experiment would not (CONTRACTS §3, and the file's
    ``/entry_1/twin`` group). Every field is None in a file that does not carry it.

    Attributes
    ----------
    object : complex64 (H, W)
        Object transmission, ``/entry_1/sample_1/ground_truth``.
    pixel_size_m : float
        Its pixel size.
    translations_m : float64 (N, 3)
        True probe positions (x, y, 0), same frame selection as the data.
    captured : bool (N,)
        Whether the PandA captured a fresh encoder reading for the frame.
    probe_modes : complex64 (B, M, n, n)
        The probe modes the simulation used (per beam).
    object_origin_m, beam_offsets_m : arrays
        Origin of the object grid from the scan centre; offsets of the beams.
    scenario_json : str
        The scenario the file was simulated from.
    seed, saturated_frames : int
    """

    object: np.ndarray | None = None
    pixel_size_m: float | None = None
    translations_m: np.ndarray | None = None
    captured: np.ndarray | None = None
    probe_modes: np.ndarray | None = None
    object_origin_m: np.ndarray | None = None
    beam_offsets_m: np.ndarray | None = None
    scenario_json: str | None = None
    seed: int | None = None
    saturated_frames: int | None = None


@dataclass
class PtychoData:
    """The content of a CXI file of CONTRACTS §3 (frames may be a subset).

    Attributes
    ----------
    frames : float32 (N, ny, nx)
        Counts, DC at the frame centre.
    translations_m : float64 (N, 3)
        Probe positions x, y, 0 as recorded (what a user has).
    distance_m, pixel_size_m, energy_kev : float
        Sample–detector distance, effective pixel (after binning), photon energy.
    illumination : complex64 (M, py, px) or None
        The starting probe, at the object pixel size (``upsampling`` × the frame side).
    mask : (ny, nx) or None
        1 = valid pixel.
    exposure_s, frame_rate_hz : float or None
        Exposure per frame and frame rate, where the file says.
    upsampling : int
        Object pixels per detector-limited pixel the illumination is sampled at (1 unless the
        frames were binned on the chip).
    truth : GroundTruth
        The simulation's ground truth (empty for measured data).
    beam_offsets_m : float64 (B, 2) or None
        Several beams share every frame (multibeam): beam b lights the object at the
        translation plus this x, y offset; None for one beam.
    beam_illumination : complex64 (B, M, n, n) or None
        The starting probe of each beam (as ``illumination``); None: ``illumination`` for all.
    background : float or (ny, nx) or None
        Counts per pixel and frame added to the model intensity (Σ|Ψ|² + b); None: none.
    """

    frames: np.ndarray
    translations_m: np.ndarray
    distance_m: float
    pixel_size_m: float
    energy_kev: float
    illumination: np.ndarray | None = None
    mask: np.ndarray | None = None
    exposure_s: float | None = None
    frame_rate_hz: float | None = None
    upsampling: int = 1
    truth: GroundTruth = field(default_factory=GroundTruth)
    beam_offsets_m: np.ndarray | None = None
    beam_illumination: np.ndarray | None = None
    background: float | np.ndarray | None = None

    @property
    def n_beams(self) -> int:
        """Beams sharing each frame (1 unless the file gives several offsets)."""
        return 1 if self.beam_offsets_m is None else len(self.beam_offsets_m)

    @property
    def ground_truth(self) -> np.ndarray | None:
        """The true object transmission (``truth.object``)."""
        return self.truth.object

    @property
    def wavelength_m(self) -> float:
        return HC_KEV_M / self.energy_kev

    @property
    def object_pixel_m(self) -> float:
        """λz/(N·p) of the frames as stored."""
        return farfield_pixel_m(self.wavelength_m, self.distance_m, self.frames.shape[-1],
                                self.pixel_size_m)


class CXIWriter:
    """Streamed CXI writer: create, :meth:`write_frames` in chunks, :meth:`close`.

    Besides CONTRACTS §3 the file carries what other readers look for: NeXus classes and
    ``/entry_1/definition = NXcxi_ptycho``; ``detector_1/count_time`` (exposure) and
    ``frame_time``; ``detector_1/data`` and ``sample_1/geometry_1/translation`` as links to the
    ``data_1`` datasets (CXI 1.6 spells positions there); ``beam_center_x/y`` (metres, the DC
    pixel); and Ptychodus's extension datasets ``/entry_1/ptychodus/exposure_time_s`` and
    ``probe_photon_count``. No time stamp is written: the same scenario and seed give the same
    bytes.

    Parameters
    ----------
    path : str or Path
        Target file; written under a temporary name and renamed by :meth:`close`.
    n_frames : int
        Frames N.
    frame_shape : (ny, nx)
        Frame size in pixels.
    dtype : numpy dtype
        Stored counts type.
    distance_m, pixel_size_m : float
        Sample–detector distance and effective pixel size (after binning), metres.
    energy_kev : float
        Photon energy, keV.
    chunk_frames : int
        Frames per HDF5 chunk.
    compression : {"gzip", "bitshuffle", "none"}
        See :func:`_compression`; ``gzip`` (shuffle + deflate) is readable everywhere.
    exposure_s : float, optional
        Exposure per frame, seconds (``count_time``).
    frame_rate_hz : float, optional
        Frame rate; ``frame_time`` = 1/rate.
    photons_per_frame : float, optional
        Incident photons per frame (Ptychodus's ``probe_photon_count``).
    title : str, optional
        ``/entry_1/title``.
    """

    def __init__(self, path: str | Path, n_frames: int, frame_shape: tuple[int, int],
                 dtype, *, distance_m: float, pixel_size_m: float, energy_kev: float,
                 chunk_frames: int = 64, compression: str = "gzip",
                 exposure_s: float | None = None, frame_rate_hz: float | None = None,
                 photons_per_frame: float | None = None, title: str | None = None):
        self.path = Path(path)
        options = _compression(compression)
        if exposure_s is not None and not (np.isfinite(exposure_s) and exposure_s > 0):
            raise TwinInputError("exposure_s", exposure_s, "must be a positive time in s")
        self._ctx = atomic_path(self.path)
        self.tmp = self._ctx.__enter__()
        try:
            self.f = h5py.File(self.tmp, "w")
        except BaseException:
            self._ctx.__exit__(RuntimeError, RuntimeError("aborted"), None)
            raise
        f = self.f
        f["cxi_version"] = 150
        e = f.create_group("entry_1")
        e.attrs["NX_class"] = "NXentry"
        e["definition"] = "NXcxi_ptycho"
        if title:
            e["title"] = str(title)
        d = e.create_group("data_1")
        d.attrs["NX_class"] = "NXdata"
        d.attrs["signal"] = "data"
        self.data = d.create_dataset("data", shape=(n_frames, *frame_shape), dtype=dtype,
                                     chunks=(min(chunk_frames, max(n_frames, 1)), *frame_shape),
                                     **options)
        self.data.attrs["units"] = "counts"
        e.create_group("instrument_1").attrs["NX_class"] = "NXinstrument"
        det = e.create_group("instrument_1/detector_1")
        det.attrs["NX_class"] = "NXdetector"
        _unit(det, "distance", float(distance_m), "m")
        _unit(det, "x_pixel_size", float(pixel_size_m), "m")
        _unit(det, "y_pixel_size", float(pixel_size_m), "m")
        # frames are stored with DC at pixel (ny//2, nx//2)
        _unit(det, "beam_center_x", (frame_shape[1] // 2) * float(pixel_size_m), "m")
        _unit(det, "beam_center_y", (frame_shape[0] // 2) * float(pixel_size_m), "m")
        det["data"] = h5py.SoftLink("/entry_1/data_1/data")
        if exposure_s is not None:
            _unit(det, "count_time", float(exposure_s), "s")
        if frame_rate_hz:
            _unit(det, "frame_time", 1.0 / float(frame_rate_hz), "s")
        src = e.create_group("instrument_1/source_1")
        src.attrs["NX_class"] = "NXsource"
        src["probe"] = "x-ray"
        _unit(src, "energy", float(energy_kev) * 1e3 * E_CHARGE_C, "J")
        _unit(src, "wavelength", HC_KEV_M / float(energy_kev), "m")
        smp = e.create_group("sample_1")
        smp.attrs["NX_class"] = "NXsample"
        smp.create_group("geometry_1")["translation"] = h5py.SoftLink(
            "/entry_1/data_1/translation")
        pt = e.create_group("ptychodus")
        pt.attrs["NX_class"] = "NXcollection"
        if exposure_s is not None:
            pt["exposure_time_s"] = float(exposure_s)
        if photons_per_frame is not None:
            pt["probe_photon_count"] = int(round(float(photons_per_frame)))

    def write_frames(self, start: int, frames: np.ndarray) -> None:
        self.data[start:start + len(frames)] = frames

    def write(self, name: str, value, **attrs) -> None:
        """Any further dataset, by path below the file's root."""
        ds = self.f.create_dataset(name, data=value)
        for k, v in attrs.items():
            ds.attrs[k] = v

    def close(self, ok: bool = True) -> None:
        self.f.close()
        if ok:
            self._ctx.__exit__(None, None, None)
        else:
            self._ctx.__exit__(RuntimeError, RuntimeError("aborted"), None)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.close(True)
        else:
            try:
                self.f.close()
            finally:
                self._ctx.__exit__(exc_type, exc, tb)
        return False


def _unit(group: h5py.Group, name: str, value, units: str) -> h5py.Dataset:
    """A dataset with a NeXus ``units`` attribute."""
    ds = group.create_dataset(name, data=value)
    ds.attrs["units"] = units
    return ds


@contextlib.contextmanager
def open_h5(path: Path, kind: str, field: str = "input"):
    """Open an HDF5 file for reading; a missing, truncated or corrupt file is bad input
    (:class:`TwinInputError` naming ``field``, the path and the ``kind`` of file expected)."""
    path = Path(path)
    if not path.is_file():
        raise TwinInputError(field, str(path), f"the {kind} file does not exist")
    try:
        with h5py.File(path, "r") as f:
            yield f
    except TwinInputError:
        raise
    except (OSError, KeyError, ValueError) as exc:
        raise TwinInputError(field, str(path),
                             f"is not a readable {kind} file (truncated or corrupt?): {exc}"
                             ) from None


_open_h5 = open_h5


def _need(f: h5py.File, name: str, source: str):
    if name not in f:
        raise TwinInputError(name, source, f"dataset {name} is missing from the CXI file")
    return f[name]


class FrameStack:
    """The frames of a CXI file read on demand (``read_cxi(..., lazy=True)``): big data without
    big memory. Indexing reads only what it names from the file (h5py slicing: a contiguous
    range of frames reads the HDF5 chunks it covers and nothing else) and returns float32.

    Parameters
    ----------
    path : Path
        The CXI file.
    start, stop : int
        The frames ``[start, stop)`` of ``/entry_1/data_1/data`` this stack stands for.

    Attributes
    ----------
    shape : tuple (N, ny, nx)
    chunk_frames : int
        Frames per HDF5 chunk of the dataset (reads aligned to it decompress each chunk once).
    """

    dataset = "/entry_1/data_1/data"

    def __init__(self, path: Path, start: int, stop: int):
        self.path = Path(path)
        self.start, self.stop = int(start), int(stop)
        self._f = None
        with h5py.File(self.path, "r") as f:
            ds = f[self.dataset]
            self.shape = (self.stop - self.start, *ds.shape[1:])
            self.chunk_frames = int(ds.chunks[0]) if ds.chunks else 64
        self.dtype = np.dtype(np.float32)
        self.ndim = 3

    def __len__(self) -> int:
        return self.shape[0]

    @property
    def nbytes(self) -> int:
        """Bytes the frames take as float32 in memory (what loading them all would cost)."""
        return int(np.prod(self.shape)) * 4

    def _ds(self):
        if self._f is None:
            self._f = h5py.File(self.path, "r")
        return self._f[self.dataset]

    def close(self) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None

    def __getitem__(self, key) -> np.ndarray:
        """Frames ``key`` (an int, a slice or an index array into this stack) as float32;
        non-finite counts, and frames the file cannot give (a corrupt chunk, a truncated
        file), raise :class:`TwinInputError` naming the file and the dataset."""
        try:
            return self._read(key)
        except OSError as exc:
            raise TwinInputError(self.dataset, str(self.path), (
                f"frames of {self.path} cannot be read (corrupt or truncated file?): {exc}")
                ) from None

    def _read(self, key) -> np.ndarray:
        ds = self._ds()
        if isinstance(key, slice):
            a, b, step = key.indices(len(self))
            out = ds[self.start + a:self.start + b:step] if step > 0 else \
                np.asarray(ds[self.start:self.stop])[key]
        elif np.isscalar(key):
            out = ds[self.start + int(key) % len(self)]
        else:
            idx = np.asarray(key).ravel() % len(self)
            order = np.argsort(idx)
            lo, hi = int(idx.min()), int(idx.max()) + 1
            if hi - lo <= 4 * len(idx):        # one contiguous read of the covering range
                block = ds[self.start + lo:self.start + hi]
                out = block[idx - lo]
            else:                              # h5py fancy indexing wants increasing indices
                out = np.empty((len(idx), *self.shape[1:]), ds.dtype)
                out[order] = ds[self.start + idx[order]]
        out = np.asarray(out, dtype=np.float32)
        if not np.all(np.isfinite(out)):
            raise TwinInputError(self.dataset, "NaN/inf", "counts must be finite")
        return out

    def __array__(self, dtype=None, copy=None):
        a = self[:]
        return a if dtype is None else a.astype(dtype)

    def iter_chunks(self, frames: int | None = None):
        """Yield ``(start, frames)`` over the stack in blocks of ``frames`` (default: the HDF5
        chunk), each block float32 (k, ny, nx)."""
        step = frames or self.chunk_frames
        for a in range(0, len(self), step):
            yield a, self[a:min(a + step, len(self))]

    def __del__(self):
        try:
            self.close()
        except Exception:  # noqa: BLE001 (interpreter shutdown)
            pass


def read_cxi(path: str | Path, frames: slice | int | None = None,
             lazy: bool = False) -> PtychoData:
    """Read a CXI file laid out as CONTRACTS §3; ``frames`` keeps a subset (``int``: the first N).

    With ``lazy`` the frames stay in the file: ``PtychoData.frames`` is a :class:`FrameStack`
    that reads them on demand (a contiguous subset only), and their finiteness is checked as
    they are read.

    Raises :class:`TwinInputError` naming the dataset for a missing, malformed or truncated file,
    non-finite counts, translations or illumination.
    """
    path = Path(path)
    sel = slice(None) if frames is None else (slice(0, frames) if isinstance(frames, int)
                                              else frames)
    with _open_h5(path, "CXI/HDF5") as f:
        ds = _need(f, "entry_1/data_1/data", str(path))
        if ds.ndim != 3:
            raise TwinInputError("/entry_1/data_1/data", ds.shape,
                                 "must be (N, ny, nx) frames")
        if lazy:
            a, b, step = sel.indices(ds.shape[0])
            if step != 1:
                raise TwinInputError("frames", frames, "a contiguous range when streaming")
            data = FrameStack(path, a, max(a, b))
        else:
            data = np.asarray(ds[sel], dtype=np.float32)
        tr = np.asarray(_need(f, "entry_1/data_1/translation", str(path))[sel],
                        dtype=np.float64)
        if tr.ndim != 2 or tr.shape[1] < 2:
            raise TwinInputError("/entry_1/data_1/translation", tr.shape,
                                 "must be (N, 3) x, y, z in metres")
        if len(tr) != len(data):
            raise TwinInputError("/entry_1/data_1/translation", len(tr),
                                 f"must have one row per frame ({len(data)} frames)")
        det = "entry_1/instrument_1/detector_1/"
        src = "entry_1/instrument_1/source_1/"
        dist = float(_need(f, det + "distance", str(path))[()])
        pix = float(_need(f, det + "x_pixel_size", str(path))[()])
        if src + "energy" in f:
            energy_kev = float(f[src + "energy"][()]) / E_CHARGE_C / 1e3
        elif src + "wavelength" in f:
            energy_kev = HC_KEV_M / float(f[src + "wavelength"][()])
        else:
            raise TwinInputError(src + "energy", str(path),
                                 "the photon energy (or wavelength) is missing")
        illum = (np.asarray(f[src + "illumination"], dtype=np.complex64)
                 if src + "illumination" in f else None)
        if illum is not None and illum.ndim == 2:
            illum = illum[None]
        mask = np.asarray(f[det + "mask"]) if det + "mask" in f else None
        offs = beams = None
        if src + "beam_offsets" in f:                # several beams share every frame
            offs = np.asarray(f[src + "beam_offsets"], dtype=np.float64)
            if (offs.ndim != 2 or offs.shape[1] != 2 or len(offs) < 1
                    or not np.all(np.isfinite(offs))):
                raise TwinInputError("/" + src + "beam_offsets", offs.shape,
                                     "must be finite (B, 2) x, y offsets in metres, B ≥ 1")
            if src + "beam_illumination" in f:
                beams = np.asarray(f[src + "beam_illumination"], dtype=np.complex64)
                if beams.ndim == 3:
                    beams = beams[:, None]
                if (beams.ndim != 4 or len(beams) != len(offs)
                        or not np.all(np.isfinite(beams))):
                    raise TwinInputError("/" + src + "beam_illumination", beams.shape,
                                         f"must be finite (B, M, n, n) with B = {len(offs)}")
            if len(offs) == 1:                      # one beam, off the translations
                tr = tr.copy()
                tr[:, :2] += offs[0]
                if beams is not None:
                    illum = beams[0]
                offs = beams = None
        truth = _read_truth(f, sel, ds.shape[0])
        tw = f.get("entry_1/twin")
        exposure = (float(f[det + "count_time"][()]) if det + "count_time" in f
                    else float(tw["exposure_s"][()]) if tw is not None and "exposure_s" in tw
                    else None)
        rate = float(tw["frame_rate_hz"][()]) if tw is not None and "frame_rate_hz" in tw else None
        up = int(tw["upsampling"][()]) if tw is not None and "upsampling" in tw else 1
    if not lazy and not np.all(np.isfinite(data)):
        raise TwinInputError("/entry_1/data_1/data", "NaN/inf", "counts must be finite")
    if not np.all(np.isfinite(tr[:, :2])):
        bad = int(np.flatnonzero(~np.all(np.isfinite(tr[:, :2]), axis=1))[0])
        raise TwinInputError("/entry_1/data_1/translation", f"NaN/inf in row {bad}",
                             "positions must be finite")
    if illum is not None and not np.all(np.isfinite(illum)):
        raise TwinInputError("/entry_1/instrument_1/source_1/illumination", "NaN/inf",
                             "the probe must be finite")
    for name, v in (("distance", dist), ("x_pixel_size", pix), ("energy", energy_kev)):
        if not (np.isfinite(v) and v > 0):
            raise TwinInputError(f"/entry_1/instrument_1/{name}", v, "must be a positive number")
    return PtychoData(data, tr, dist, pix, energy_kev, illum, mask, exposure, rate, up, truth,
                      offs, beams)


def _read_truth(f: h5py.File, sel: slice, n_total: int) -> GroundTruth:
    """The ground truth rows of a CXI file (per-frame rows follow the frame selection)."""
    t = GroundTruth()
    if "entry_1/sample_1/ground_truth" in f:
        g = f["entry_1/sample_1/ground_truth"]
        t.object = np.asarray(g, dtype=np.complex64)
        t.pixel_size_m = float(g.attrs.get("pixel_size_m", np.nan))
    src = "entry_1/instrument_1/source_1/illumination_ground_truth"
    if src in f:
        t.probe_modes = np.asarray(f[src], dtype=np.complex64)[None]
    tw = f.get("entry_1/twin")
    if tw is None:
        return t

    def get(name, per_frame=False):
        if name not in tw:
            return None
        v = tw[name]
        return v[sel] if per_frame and v.ndim >= 1 and v.shape[0] == n_total else v[()]

    t.translations_m = get("true_translation", per_frame=True)
    cap = get("captured", per_frame=True)
    t.captured = None if cap is None else np.asarray(cap).astype(bool)
    probes = get("probes")
    if probes is not None:
        t.probe_modes = np.asarray(probes, dtype=np.complex64)
    t.object_origin_m = get("object_origin_m")
    t.beam_offsets_m = get("beam_offsets_m")
    scn = get("scenario")
    t.scenario_json = scn.decode() if isinstance(scn, bytes) else scn
    seed = get("seed")
    t.seed = None if seed is None else int(seed)
    sat = get("saturated_frames")
    t.saturated_frames = None if sat is None else int(sat)
    return t


# ----------------------------------------------------------------------------- recon out


def write_reconstruction(path: str | Path, obj, probe, positions_m, cost, pixel_size_m: float,
                         **extra) -> None:
    """CONTRACTS §4: /object, /probe, /positions_m, /cost (atomically)."""
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        o = f.create_dataset("object", data=np.asarray(obj, dtype=np.complex64))
        o.attrs["pixel_size_m"] = float(pixel_size_m)
        f["probe"] = np.asarray(probe, dtype=np.complex64)
        f["positions_m"] = np.asarray(positions_m, dtype=np.float64)
        f["cost"] = np.asarray(cost, dtype=np.float64)
        for k, v in extra.items():
            f[k] = v


def write_cxi_product(path: str | Path, obj, probe, positions_m, pixel_size_m: float, *,
                      energy_kev: float, distance_m: float | None = None,
                      detector_pixel_m: float | None = None, cost=None,
                      exposure_s: float | None = None, title: str | None = None,
                      beam_probes=None) -> None:
    """A reconstruction as a CXI *product* (CXI 1.6 image groups), atomically.

    Probe at ``/entry_1/image_1/data`` (M, ny, nx) (also linked as
    ``source_1/illumination``), object at ``/entry_1/image_2/data`` (H, W), each with
    ``image_size`` (width, height, 0 in metres); positions (N, 3) at
    ``/entry_1/sample_1/geometry_1/translation`` (linked from ``data_1/translation``), x then y,
    the probe centre relative to the object's centre pixel (H//2, W//2) as in CONTRACTS §4.
    Ptychodus's extension datasets (``/entry_1/ptychodus/…``) give the pixel sizes and the
    object centre: Ptychodus puts the centre of an N-pixel axis at index (N-1)/2, so the centre
    is written as the offset that puts position 0 on pixel N//2.

    Parameters
    ----------
    path : str or Path
        Output ``.cxi``.
    obj : complex (H, W)
        Object transmission.
    probe : complex (M, ny, nx) or (ny, nx)
        Probe modes.
    positions_m : float (N, 2)
        Refined probe positions x, y in metres.
    pixel_size_m : float
        Object (and probe) pixel size, metres.
    energy_kev : float
        Photon energy, keV.
    distance_m, detector_pixel_m : float, optional
        Sample–detector distance and detector pixel, metres.
    cost : (iterations,) optional
        Cost per iteration (Ptychodus's ``loss_values``).
    exposure_s : float, optional
        Exposure per frame, seconds.
    title : str, optional
        ``/entry_1/title``.
    beam_probes : (B, M, ny, nx), optional
        Several beams: every beam's modes, at ``/entry_1/twin/beam_probes`` (``probe`` is
        beam 0's).
    """
    obj = np.asarray(obj, dtype=np.complex64)
    probe = np.asarray(probe, dtype=np.complex64)
    if probe.ndim == 2:
        probe = probe[None]
    pos = np.asarray(positions_m, dtype=np.float64)
    if obj.ndim != 2 or probe.ndim != 3 or pos.ndim != 2 or pos.shape[1] < 2:
        raise TwinInputError("reconstruction", f"object {obj.shape}, probe {probe.shape}, "
                             f"positions {pos.shape}", "(H, W), (M, ny, nx) and (N, 2)")
    dx = float(pixel_size_m)
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        f["cxi_version"] = 150
        e = f.create_group("entry_1")
        e.attrs["NX_class"] = "NXentry"
        if title:
            e["title"] = str(title)
        ins = e.create_group("instrument_1")
        ins.attrs["NX_class"] = "NXinstrument"
        src = ins.create_group("source_1")
        src.attrs["NX_class"] = "NXsource"
        _unit(src, "energy", float(energy_kev) * 1e3 * E_CHARGE_C, "J")
        _unit(src, "wavelength", HC_KEV_M / float(energy_kev), "m")
        det = ins.create_group("detector_1")
        det.attrs["NX_class"] = "NXdetector"
        if distance_m is not None:
            _unit(det, "distance", float(distance_m), "m")
        if detector_pixel_m is not None:
            _unit(det, "x_pixel_size", float(detector_pixel_m), "m")
            _unit(det, "y_pixel_size", float(detector_pixel_m), "m")
        if exposure_s is not None:
            _unit(det, "count_time", float(exposure_s), "s")
        for k, (arr, axes, kind) in enumerate(
                ((probe, "incoherent:y:x", "amplitude"),      # image_1: the probe
                 (obj, "y:x", "transmission")), start=1):     # image_2: the object
            g = e.create_group(f"image_{k}")
            g.attrs["NX_class"] = "NXdata"
            g.attrs["signal"] = "data"
            ds = g.create_dataset("data", data=arr)
            ds.attrs["axes"] = axes
            ds.attrs["pixel_size_m"] = dx
            g["data_type"] = kind
            g["data_space"] = "real"
            g["image_size"] = np.array([dx * arr.shape[-1], dx * arr.shape[-2], 0.0])
            g["process_1"] = h5py.SoftLink("/entry_1/process_1")
        src["illumination"] = h5py.SoftLink("/entry_1/image_1/data")
        tr = np.zeros((len(pos), 3))
        tr[:, :2] = pos[:, :2]
        smp = e.create_group("sample_1")
        smp.attrs["NX_class"] = "NXsample"
        _unit(smp.create_group("geometry_1"), "translation", tr, "m")
        e.create_group("data_1")["translation"] = h5py.SoftLink(
            "/entry_1/sample_1/geometry_1/translation")
        proc = e.create_group("process_1")
        proc.attrs["NX_class"] = "NXprocess"
        proc["program"] = "twin"
        pt = e.create_group("ptychodus")
        pt.attrs["NX_class"] = "NXcollection"
        pt["probe_pixel_width_m"] = dx
        pt["probe_pixel_height_m"] = dx
        pt["object_pixel_width_m"] = dx
        pt["object_pixel_height_m"] = dx
        h, w = obj.shape
        pt["object_center_x_m"] = -dx * (w // 2 - (w - 1) / 2)
        pt["object_center_y_m"] = -dx * (h // 2 - (h - 1) / 2)
        pt["probe_position_indexes"] = np.arange(len(pos), dtype=np.int64)
        if exposure_s is not None:
            pt["exposure_time_s"] = float(exposure_s)
        if cost is not None and len(cost):
            c = np.asarray(cost, dtype=np.float64)
            pt["loss_values"] = c
            pt["loss_epochs"] = np.arange(len(c), dtype=np.int64)
        if beam_probes is not None:        # several beams: every beam's modes (image_1: beam 0)
            tw = e.create_group("twin")
            tw.attrs["NX_class"] = "NXcollection"
            tw["beam_probes"] = np.asarray(beam_probes, dtype=np.complex64)


# ----------------------------------------------------------------------------- DXchange


@dataclass
class Projections:
    data: np.ndarray        # (n_angles, rows, cols) float32
    theta_deg: np.ndarray   # (n_angles,)
    voxel_size_m: float | None = None


def read_dxchange(path: str | Path) -> Projections:
    """CONTRACTS §5 input: /exchange/data and /exchange/theta (degrees)."""
    path = Path(path)
    with _open_h5(path, "HDF5") as f:
        data = np.asarray(_need(f, "exchange/data", str(path)), dtype=np.float32)
        theta = np.asarray(_need(f, "exchange/theta", str(path)), dtype=np.float64)
        vox = f["exchange/data"].attrs.get("voxel_size_m")
    if data.ndim != 3:
        raise TwinInputError("/exchange/data", data.shape, "must be (n_angles, rows, cols)")
    if theta.ndim != 1 or len(theta) != data.shape[0]:
        raise TwinInputError("/exchange/theta", theta.shape,
                             f"must hold one angle per projection ({data.shape[0]})")
    if not np.all(np.isfinite(data)):
        raise TwinInputError("/exchange/data", "NaN/inf", "projections must be finite")
    if not np.all(np.isfinite(theta)):
        raise TwinInputError("/exchange/theta", "NaN/inf", "angles must be finite")
    return Projections(data, theta, float(vox) if vox is not None else None)


def write_dxchange(path: str | Path, data, theta_deg, voxel_size_m: float | None = None) -> None:
    """CONTRACTS §5 input as a Data Exchange file that dxchange/TomoPy read unchanged.

    ``/implements``; ``/exchange/data`` (n_angles, rows, cols) float32 with ``axes =
    theta:y:x``; ``/exchange/theta`` in degrees (``units``); ``/exchange/data_white`` (ones)
    and ``/exchange/data_dark`` (zeros), one frame each, so that a TomoPy script which
    normalises ``(data - dark) / (white - dark)`` leaves the already-normalised line integrals
    unchanged; the pixel size, where known, as ``voxel_size_m`` and at
    ``/measurement/instrument/detector/actual_pixel_size_x``/``_y`` (micrometres, as APS files).
    """
    data = np.asarray(data, dtype=np.float32)
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        f["implements"] = "exchange:measurement"
        d = f.create_dataset("exchange/data", data=data)
        d.attrs["axes"] = "theta:y:x"
        d.attrs["description"] = "projected phase (line integrals), radians"
        if voxel_size_m:
            d.attrs["voxel_size_m"] = voxel_size_m
            det = f.create_group("measurement/instrument/detector")
            for axis in ("x", "y"):
                det.create_dataset(f"actual_pixel_size_{axis}",
                                   data=float(voxel_size_m) * 1e6).attrs["units"] = "microns"
        th = f.create_dataset("exchange/theta", data=np.asarray(theta_deg, dtype=np.float64))
        th.attrs["units"] = "degrees"
        shape = (1, *data.shape[1:]) if data.ndim == 3 else (1,)
        f.create_dataset("exchange/data_white", data=np.ones(shape, np.float32))
        f.create_dataset("exchange/data_dark", data=np.zeros(shape, np.float32))


def write_volume(path: str | Path, volume, voxel_size_m: float | None = None, **extra) -> None:
    """CONTRACTS §5 output: /volume float32 (rows, cols, cols), attribute voxel_size_m."""
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        v = f.create_dataset("volume", data=np.asarray(volume, dtype=np.float32))
        if voxel_size_m:
            v.attrs["voxel_size_m"] = float(voxel_size_m)
        for k, val in extra.items():
            f[k] = val


READERS = {"cxi": read_cxi, "dxchange": read_dxchange}
WRITERS = {"reconstruction": write_reconstruction, "cxi_product": write_cxi_product,
           "dxchange": write_dxchange,
           "volume": write_volume}
