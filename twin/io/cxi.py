"""CXI files (CONTRACTS §3): simulated or measured ptychographic data, written in a stream
(:class:`CXIWriter`) and read back checked (:func:`read_cxi`); a reconstruction as a CXI
*product* that Ptychodus opens (:func:`write_cxi_product`).

Every writer writes under a temporary name and renames on success (:mod:`twin.io.atomic`).
Every reader checks the layout and raises :class:`~twin.core.errors.TwinInputError` naming the
dataset that is missing, of the wrong shape, or unreadable (a truncated file).
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from twin.core.constants import E_CHARGE_C, HC_KEV_M
from twin.core.errors import TwinInputError
from twin.io.atomic import atomic_path
from twin.io.datamodel import GroundTruth, PtychoData, check_ptycho_data
from twin.io.framestack import FrameStack
from twin.io.hdf5 import compression_options, dataset_with_units as _unit, need_dataset, open_h5

__all__ = ["CXIWriter", "read_cxi", "write_cxi_product"]

_DET = "entry_1/instrument_1/detector_1/"
_SRC = "entry_1/instrument_1/source_1/"


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
        See :func:`twin.io.hdf5.compression_options`; ``gzip`` (shuffle + deflate) is
        readable everywhere.
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
        options = compression_options(compression)
        if exposure_s is not None and not (np.isfinite(exposure_s) and exposure_s > 0):
            raise TwinInputError("exposure_s", exposure_s, "must be a positive time in s")
        self._ctx = atomic_path(self.path)
        self.tmp = self._ctx.__enter__()
        try:
            self.f = h5py.File(self.tmp, "w")
        except BaseException:
            self._ctx.__exit__(RuntimeError, RuntimeError("aborted"), None)
            raise
        e = _entry(self.f, title, definition="NXcxi_ptycho")
        d = e.create_group("data_1")
        d.attrs["NX_class"] = "NXdata"
        d.attrs["signal"] = "data"
        self.data = d.create_dataset("data", shape=(n_frames, *frame_shape), dtype=dtype,
                                     chunks=(min(chunk_frames, max(n_frames, 1)), *frame_shape),
                                     **options)
        self.data.attrs["units"] = "counts"
        e.create_group("instrument_1").attrs["NX_class"] = "NXinstrument"
        _frames_detector(e, frame_shape, distance_m, pixel_size_m, exposure_s, frame_rate_hz)
        src = e.create_group("instrument_1/source_1")
        src.attrs["NX_class"] = "NXsource"
        src["probe"] = "x-ray"
        _energy(src, energy_kev)
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
        """Store ``frames`` (k, ny, nx) as frames ``start`` … ``start + k - 1``.

        Parameters
        ----------
        start : int
            Index of the first frame written.
        frames : ndarray (k, ny, nx)
            Counts; converted to the dataset's dtype by h5py.
        """
        self.data[start:start + len(frames)] = frames

    def write(self, name: str, value, **attrs) -> None:
        """Any further dataset, by path below the file's root.

        Parameters
        ----------
        name : str
            Dataset path (intermediate groups are created).
        value : array_like
            Its data.
        **attrs
            HDF5 attributes of the dataset.
        """
        ds = self.f.create_dataset(name, data=value)
        for k, v in attrs.items():
            ds.attrs[k] = v

    def close(self, ok: bool = True) -> None:
        """Close the file; rename it to its target if ``ok``, else remove it.

        Parameters
        ----------
        ok : bool
            True: the file appears under its name; False: the temporary file is deleted.
        """
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


def _entry(f: h5py.File, title: str | None, definition: str | None = None) -> h5py.Group:
    """``/cxi_version`` and the NXentry ``/entry_1`` (with its definition and title)."""
    f["cxi_version"] = 150
    e = f.create_group("entry_1")
    e.attrs["NX_class"] = "NXentry"
    if definition:
        e["definition"] = definition
    if title:
        e["title"] = str(title)
    return e


def _energy(src: h5py.Group, energy_kev: float) -> None:
    """The source's photon energy (J) and wavelength (m)."""
    _unit(src, "energy", float(energy_kev) * 1e3 * E_CHARGE_C, "J")
    _unit(src, "wavelength", HC_KEV_M / float(energy_kev), "m")


def _frames_detector(e: h5py.Group, frame_shape, distance_m: float, pixel_size_m: float,
                     exposure_s: float | None, frame_rate_hz: float | None) -> None:
    """``detector_1`` of a data file: geometry, the DC pixel, the frames' link and timing."""
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


def read_cxi(path: str | Path, frames: slice | int | None = None,
             lazy: bool = False) -> PtychoData:
    """Read a CXI file laid out as CONTRACTS §3.

    With ``lazy`` the frames stay in the file: ``PtychoData.frames`` is a :class:`FrameStack`
    that reads them on demand (a contiguous subset only), and their finiteness is checked as
    they are read.

    Parameters
    ----------
    path : str or Path
        The CXI file.
    frames : slice or int, optional
        A subset of the frames (``int``: the first N); per-frame rows follow it.
    lazy : bool
        Leave the frames in the file.

    Returns
    -------
    PtychoData
        Checked by :func:`twin.io.datamodel.check_ptycho_data`.

    Raises
    ------
    TwinInputError
        Naming the dataset for a missing, malformed or truncated file, non-finite counts,
        translations or illumination.
    """
    path = Path(path)
    sel = slice(None) if frames is None else (slice(0, frames) if isinstance(frames, int)
                                              else frames)
    with open_h5(path, "CXI/HDF5") as f:
        data, n_total = _read_frames(f, path, sel, frames, lazy)
        tr = _read_translations(f, path, sel, len(data))
        dist, pix, energy_kev = _read_geometry(f, path)
        illum = (np.asarray(f[_SRC + "illumination"], dtype=np.complex64)
                 if _SRC + "illumination" in f else None)
        if illum is not None and illum.ndim == 2:
            illum = illum[None]
        mask = np.asarray(f[_DET + "mask"]) if _DET + "mask" in f else None
        tr, illum, offs, beams = _read_beams(f, tr, illum)
        truth = _read_truth(f, sel, n_total)
        exposure, rate, up = _read_timing(f)
    return check_ptycho_data(PtychoData(data, tr, dist, pix, energy_kev, illum, mask, exposure,
                                        rate, up, truth, offs, beams))


def _read_frames(f: h5py.File, path: Path, sel: slice, frames, lazy: bool):
    """The selected frames (float32 in memory, or a :class:`FrameStack`) and the file's
    frame count."""
    ds = need_dataset(f, "entry_1/data_1/data", str(path))
    if ds.ndim != 3:
        raise TwinInputError("/entry_1/data_1/data", ds.shape, "must be (N, ny, nx) frames")
    if lazy:
        a, b, step = sel.indices(ds.shape[0])
        if step != 1:
            raise TwinInputError("frames", frames, "a contiguous range when streaming")
        return FrameStack(path, a, max(a, b)), ds.shape[0]
    return np.asarray(ds[sel], dtype=np.float32), ds.shape[0]


def _read_translations(f: h5py.File, path: Path, sel: slice, n_frames: int) -> np.ndarray:
    """The selected rows of ``/entry_1/data_1/translation``, float64 (N, 3)."""
    tr = np.asarray(need_dataset(f, "entry_1/data_1/translation", str(path))[sel],
                    dtype=np.float64)
    if tr.ndim != 2 or tr.shape[1] < 2:
        raise TwinInputError("/entry_1/data_1/translation", tr.shape,
                             "must be (N, 3) x, y, z in metres")
    if len(tr) != n_frames:
        raise TwinInputError("/entry_1/data_1/translation", len(tr),
                             f"must have one row per frame ({n_frames} frames)")
    return tr


def _read_geometry(f: h5py.File, path: Path) -> tuple[float, float, float]:
    """Distance (m), detector pixel (m) and photon energy (keV, from the energy or the
    wavelength)."""
    dist = float(need_dataset(f, _DET + "distance", str(path))[()])
    pix = float(need_dataset(f, _DET + "x_pixel_size", str(path))[()])
    if _SRC + "energy" in f:
        energy_kev = float(f[_SRC + "energy"][()]) / E_CHARGE_C / 1e3
    elif _SRC + "wavelength" in f:
        energy_kev = HC_KEV_M / float(f[_SRC + "wavelength"][()])
    else:
        raise TwinInputError(_SRC + "energy", str(path),
                             "the photon energy (or wavelength) is missing")
    return dist, pix, energy_kev


def _read_beams(f: h5py.File, tr: np.ndarray, illum):
    """Several beams sharing every frame: ``(translations, illumination, offsets, beam
    probes)``. A single beam off the translations is folded into them (offsets None)."""
    if _SRC + "beam_offsets" not in f:
        return tr, illum, None, None
    offs = np.asarray(f[_SRC + "beam_offsets"], dtype=np.float64)
    if offs.ndim != 2 or offs.shape[1] != 2 or len(offs) < 1 or not np.all(np.isfinite(offs)):
        raise TwinInputError("/" + _SRC + "beam_offsets", offs.shape,
                             "must be finite (B, 2) x, y offsets in metres, B ≥ 1")
    beams = None
    if _SRC + "beam_illumination" in f:
        beams = np.asarray(f[_SRC + "beam_illumination"], dtype=np.complex64)
        if beams.ndim == 3:
            beams = beams[:, None]
        if beams.ndim != 4 or len(beams) != len(offs) or not np.all(np.isfinite(beams)):
            raise TwinInputError("/" + _SRC + "beam_illumination", beams.shape,
                                 f"must be finite (B, M, n, n) with B = {len(offs)}")
    if len(offs) == 1:                      # one beam, off the translations
        tr = tr.copy()
        tr[:, :2] += offs[0]
        if beams is not None:
            illum = beams[0]
        return tr, illum, None, None
    return tr, illum, offs, beams


def _read_timing(f: h5py.File) -> tuple[float | None, float | None, int]:
    """Exposure (s), frame rate (Hz) and the illumination's upsampling, where the file says."""
    tw = f.get("entry_1/twin")
    exposure = (float(f[_DET + "count_time"][()]) if _DET + "count_time" in f
                else float(tw["exposure_s"][()]) if tw is not None and "exposure_s" in tw
                else None)
    rate = float(tw["frame_rate_hz"][()]) if tw is not None and "frame_rate_hz" in tw else None
    up = int(tw["upsampling"][()]) if tw is not None and "upsampling" in tw else 1
    return exposure, rate, up


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
        """A dataset of ``/entry_1/twin``, or None when absent.

        Parameters
        ----------
        name : str
            Dataset name in ``/entry_1/twin``.
        per_frame : bool
            Apply the frame selection to datasets with one row per frame of the file.

        Returns
        -------
        numpy.ndarray or scalar or None
        """
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
    object centre (:func:`_product_ptychodus`).

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
    obj, probe, pos = _product_arrays(obj, probe, positions_m)
    dx = float(pixel_size_m)
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        e = _entry(f, title)
        _product_instrument(e, energy_kev, distance_m, detector_pixel_m, exposure_s)
        _product_images(e, probe, obj, dx)
        _product_positions(e, pos)
        _product_ptychodus(e, obj.shape, len(pos), dx, exposure_s, cost)
        if beam_probes is not None:        # several beams: every beam's modes (image_1: beam 0)
            tw = e.create_group("twin")
            tw.attrs["NX_class"] = "NXcollection"
            tw["beam_probes"] = np.asarray(beam_probes, dtype=np.complex64)


def _product_arrays(obj, probe, positions_m) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Object complex64 (H, W), probe complex64 (M, ny, nx) and positions float64 (N, ≥ 2),
    or a :class:`TwinInputError` naming the shapes."""
    obj = np.asarray(obj, dtype=np.complex64)
    probe = np.asarray(probe, dtype=np.complex64)
    if probe.ndim == 2:
        probe = probe[None]
    pos = np.asarray(positions_m, dtype=np.float64)
    if obj.ndim != 2 or probe.ndim != 3 or pos.ndim != 2 or pos.shape[1] < 2:
        raise TwinInputError("reconstruction", f"object {obj.shape}, probe {probe.shape}, "
                             f"positions {pos.shape}", "(H, W), (M, ny, nx) and (N, 2)")
    return obj, probe, pos


def _product_positions(e: h5py.Group, pos: np.ndarray) -> None:
    """Positions (N, 3) x, y, 0 at ``sample_1/geometry_1/translation`` (linked from
    ``data_1``), then ``process_1`` (the program)."""
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


def _product_instrument(e: h5py.Group, energy_kev: float, distance_m: float | None,
                        detector_pixel_m: float | None, exposure_s: float | None) -> None:
    """``instrument_1`` of a product: the source's energy and what is known of the
    detector."""
    ins = e.create_group("instrument_1")
    ins.attrs["NX_class"] = "NXinstrument"
    src = ins.create_group("source_1")
    src.attrs["NX_class"] = "NXsource"
    _energy(src, energy_kev)
    det = ins.create_group("detector_1")
    det.attrs["NX_class"] = "NXdetector"
    if distance_m is not None:
        _unit(det, "distance", float(distance_m), "m")
    if detector_pixel_m is not None:
        _unit(det, "x_pixel_size", float(detector_pixel_m), "m")
        _unit(det, "y_pixel_size", float(detector_pixel_m), "m")
    if exposure_s is not None:
        _unit(det, "count_time", float(exposure_s), "s")


def _product_images(e: h5py.Group, probe: np.ndarray, obj: np.ndarray, dx: float) -> None:
    """``image_1`` the probe and ``image_2`` the object (CXI 1.6 image groups); the source's
    illumination links to the probe."""
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
    e["instrument_1/source_1/illumination"] = h5py.SoftLink("/entry_1/image_1/data")


def _product_ptychodus(e: h5py.Group, obj_shape: tuple[int, int], n_positions: int, dx: float,
                       exposure_s: float | None, cost) -> None:
    """Ptychodus's extension datasets: pixel sizes, the object's centre, the loss curve.

    Ptychodus puts the centre of an N-pixel axis at index (N-1)/2, so the centre is written as
    the offset that puts position 0 on pixel N//2.
    """
    pt = e.create_group("ptychodus")
    pt.attrs["NX_class"] = "NXcollection"
    pt["probe_pixel_width_m"] = dx
    pt["probe_pixel_height_m"] = dx
    pt["object_pixel_width_m"] = dx
    pt["object_pixel_height_m"] = dx
    h, w = obj_shape
    pt["object_center_x_m"] = -dx * (w // 2 - (w - 1) / 2)
    pt["object_center_y_m"] = -dx * (h // 2 - (h - 1) / 2)
    pt["probe_position_indexes"] = np.arange(n_positions, dtype=np.int64)
    if exposure_s is not None:
        pt["exposure_time_s"] = float(exposure_s)
    if cost is not None and len(cost):
        c = np.asarray(cost, dtype=np.float64)
        pt["loss_values"] = c
        pt["loss_epochs"] = np.arange(len(c), dtype=np.int64)
