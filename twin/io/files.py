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

try:  # registers bitshuffle/LZ4 with h5py, for reading too
    import hdf5plugin
except ImportError:  # pragma: no cover
    hdf5plugin = None

COMPRESSIONS = ("bitshuffle", "gzip", "none")


def _compression(name: str = "bitshuffle") -> dict:
    """h5py dataset options. bitshuffle + LZ4 is the detector vendors' choice (readers need
    ``import hdf5plugin``); gzip is readable by any HDF5 library."""
    if name == "bitshuffle" and hdf5plugin is not None:
        return dict(hdf5plugin.Bitshuffle(nelems=0, cname="lz4"))
    if name in ("gzip", "bitshuffle"):
        return {"compression": "gzip", "compression_opts": 4}
    if name == "none":
        return {}
    raise TwinInputError("--compression", name, f"allowed: {', '.join(COMPRESSIONS)}")


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
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    _install_signal_cleanup()
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}@{_host_tag()}.",
                               suffix=".part", dir=path.parent)
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
        return self.wavelength_m * self.distance_m / (self.frames.shape[-1] * self.pixel_size_m)


class CXIWriter:
    """Streamed CXI writer: create, :meth:`write_frames` in chunks, :meth:`close`."""

    def __init__(self, path: str | Path, n_frames: int, frame_shape: tuple[int, int],
                 dtype, *, distance_m: float, pixel_size_m: float, energy_kev: float,
                 chunk_frames: int = 64, compression: str = "bitshuffle"):
        self.path = Path(path)
        options = _compression(compression)
        self._ctx = atomic_path(self.path)
        self.tmp = self._ctx.__enter__()
        self.f = h5py.File(self.tmp, "w")
        f = self.f
        f["cxi_version"] = 150
        e = f.create_group("entry_1")
        d = e.create_group("data_1")
        self.data = d.create_dataset("data", shape=(n_frames, *frame_shape), dtype=dtype,
                                     chunks=(min(chunk_frames, max(n_frames, 1)), *frame_shape),
                                     **options)
        det = e.create_group("instrument_1/detector_1")
        det["distance"] = float(distance_m)
        det["x_pixel_size"] = float(pixel_size_m)
        det["y_pixel_size"] = float(pixel_size_m)
        src = e.create_group("instrument_1/source_1")
        src["energy"] = float(energy_kev) * 1e3 * E_CHARGE_C
        src["wavelength"] = HC_KEV_M / float(energy_kev)

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


@contextlib.contextmanager
def _open_h5(path: Path, kind: str):
    """Open an HDF5 file for reading; a missing, truncated or corrupt file is bad input."""
    if not path.exists():
        raise TwinInputError("input", str(path), "the file does not exist")
    try:
        with h5py.File(path, "r") as f:
            yield f
    except TwinInputError:
        raise
    except (OSError, KeyError, ValueError) as exc:
        raise TwinInputError("input", str(path),
                             f"is not a readable {kind} file (truncated or corrupt?): {exc}"
                             ) from None


def _need(f: h5py.File, name: str, source: str):
    if name not in f:
        raise TwinInputError(name, source, f"dataset {name} is missing from the CXI file")
    return f[name]


def read_cxi(path: str | Path, frames: slice | int | None = None) -> PtychoData:
    """Read a CXI file laid out as CONTRACTS §3; ``frames`` keeps a subset (``int``: the first N).

    Raises :class:`TwinInputError` naming the dataset for a missing, malformed or truncated file.
    """
    path = Path(path)
    sel = slice(None) if frames is None else (slice(0, frames) if isinstance(frames, int)
                                              else frames)
    with _open_h5(path, "CXI/HDF5") as f:
        ds = _need(f, "entry_1/data_1/data", str(path))
        if ds.ndim != 3:
            raise TwinInputError("/entry_1/data_1/data", ds.shape,
                                 "must be (N, ny, nx) frames")
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
        truth = _read_truth(f, sel, ds.shape[0])
        tw = f.get("entry_1/twin")
        exposure = (float(f[det + "count_time"][()]) if det + "count_time" in f
                    else float(tw["exposure_s"][()]) if tw is not None and "exposure_s" in tw
                    else None)
        rate = float(tw["frame_rate_hz"][()]) if tw is not None and "frame_rate_hz" in tw else None
        up = int(tw["upsampling"][()]) if tw is not None and "upsampling" in tw else 1
    if not np.all(np.isfinite(data)):
        raise TwinInputError("/entry_1/data_1/data", "NaN/inf", "counts must be finite")
    for name, v in (("distance", dist), ("x_pixel_size", pix), ("energy", energy_kev)):
        if not (np.isfinite(v) and v > 0):
            raise TwinInputError(f"/entry_1/instrument_1/{name}", v, "must be a positive number")
    return PtychoData(data, tr, dist, pix, energy_kev, illum, mask, exposure, rate, up, truth)


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
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        d = f.create_dataset("exchange/data", data=np.asarray(data, dtype=np.float32))
        if voxel_size_m:
            d.attrs["voxel_size_m"] = voxel_size_m
        f["exchange/theta"] = np.asarray(theta_deg, dtype=np.float64)


def write_volume(path: str | Path, volume, voxel_size_m: float | None = None, **extra) -> None:
    """CONTRACTS §5 output: /volume float32 (rows, cols, cols), attribute voxel_size_m."""
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        v = f.create_dataset("volume", data=np.asarray(volume, dtype=np.float32))
        if voxel_size_m:
            v.attrs["voxel_size_m"] = float(voxel_size_m)
        for k, val in extra.items():
            f[k] = val


READERS = {"cxi": read_cxi, "dxchange": read_dxchange}
WRITERS = {"reconstruction": write_reconstruction, "dxchange": write_dxchange,
           "volume": write_volume}
