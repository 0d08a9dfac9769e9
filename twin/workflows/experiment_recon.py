"""``twin reconstruct OUT.h5``: a master file read, and every projection it links reconstructed,
one Dask task each, into the Data Exchange stack (CONTRACTS §5) that ``twin tomo`` reads.

The master file and its projections are those that :mod:`twin.workflows.experiment` writes (its
module doc has the layout); the Dask tasks run as its simulation's do
(:func:`~twin.workflows.experiment._run_tasks`: the memory stated, input errors raised here).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from twin.core.errors import TwinInputError
from twin.workflows.experiment import BASE_BYTES, MASTER_SUFFIXES, _as_value, _run_tasks


# ----------------------------------------------------------------------------- master file


@dataclass(frozen=True)
class Master:
    """A master file's projections: angles (degrees), their CXI files, their indices."""

    path: Path
    theta_deg: np.ndarray
    paths: list[Path]
    indices: np.ndarray


def _projection_links(e: h5py.Group) -> dict[int, str]:
    import re

    return {int(k.split("_")[1]): k for k in e.keys() if re.fullmatch(r"projection_\d+", k)}


def is_master(path: str | Path) -> bool:
    """Whether ``path`` is an HDF5 file with ``/entry_1/theta`` and projection links.

    Parameters
    ----------
    path : str or Path
        Any file; one that is absent or not HDF5 is not a master file (False).

    Returns
    -------
    bool
    """
    path = Path(path)
    try:
        if not (path.is_file() and h5py.is_hdf5(path)):
            return False
        with h5py.File(path, "r") as f:
            e = f.get("entry_1")
            return (isinstance(e, h5py.Group) and "theta" in e
                    and bool(_projection_links(e)))
    except OSError:
        return False


def _linked_file(master: Path, e: h5py.Group, name: str) -> Path:
    """The CXI a master's ``/entry_1/NAME`` links to, checked to open with frames."""
    where = f"/entry_1/{name}"
    link = e.get(name, getlink=True)
    if not isinstance(link, h5py.ExternalLink) or link.path.rstrip("/") not in ("", "/entry_1"):
        raise TwinInputError(where, type(link).__name__,
                             "an external link to /entry_1 of a projection's CXI file")
    target = Path(link.filename)
    target = target if target.is_absolute() else master.parent / target
    try:
        with h5py.File(target, "r") as f:
            ok = isinstance(f.get("entry_1/data_1/data"), h5py.Dataset)
    except OSError:
        ok = False
    if not ok:
        raise TwinInputError(where, str(target), (
            "the projection it links to is missing or unreadable (no /entry_1/data_1/data); "
            "rerun `twin simulate` with the same -o to write the missing projections"))
    return target


def read_master(path: str | Path) -> Master:
    """The projections of a master file (module doc), each link checked.

    Parameters
    ----------
    path : str or Path
        The master file.

    Returns
    -------
    Master
        Without ``/entry_1/projection_index``, the indices are 0 … n−1.

    Raises
    ------
    TwinInputError
        Naming ``/entry_1/projection_K`` for a missing link, a link beyond the angles or a
        linked file that is missing or unreadable, ``/entry_1/theta`` for bad angles, or the
        file itself where it is not a master file (unreadable, no ``/entry_1/theta``).
    """
    path = Path(path)
    try:
        with h5py.File(path, "r") as f:
            e = f["entry_1"]
            theta = np.asarray(e["theta"], dtype=np.float64)
            if theta.ndim != 1 or len(theta) == 0 or not np.all(np.isfinite(theta)):
                raise TwinInputError("/entry_1/theta", theta.shape,
                                     "one finite angle in degrees per projection")
            links = _projection_links(e)
            names = [f"projection_{k}" for k in range(len(theta))]
            for k, name in enumerate(names):
                if k not in links:
                    raise TwinInputError(f"/entry_1/{name}", "absent", (
                        f"one link per angle of /entry_1/theta: projection_0 … "
                        f"projection_{len(theta) - 1}"))
            extra = sorted(set(links) - set(range(len(theta))))
            if extra:
                raise TwinInputError(f"/entry_1/projection_{extra[0]}", "a link beyond theta",
                                     f"{len(theta)} angles in /entry_1/theta")
            paths = [_linked_file(path, e, name) for name in names]
            idx = (np.asarray(e["projection_index"], dtype=np.int64)
                   if "projection_index" in e else np.arange(len(theta)))
    except (KeyError, OSError) as exc:
        raise TwinInputError(str(path), "not a master file",
                             f"an HDF5 file with /entry_1/theta and /entry_1/projection_K "
                             f"links ({exc})") from None
    return Master(path, theta, paths, idx)


# ----------------------------------------------------------------------------- reconstruct


def region_px(translations_m: np.ndarray, pixel_m: float, margin_px: int = 0) -> tuple[int, int]:
    """(rows, cols) of the scanned field in pixels plus ``margin_px`` on every side, even.

    Parameters
    ----------
    translations_m : numpy.ndarray
        (n, 2) or (n, 3) scan positions, metres, x then y (further columns ignored).
    pixel_m : float
        The object's pixel, metres.
    margin_px : int
        Pixels added on each side.

    Returns
    -------
    (int, int)
        Rows (from the y extent) and columns (from the x extent), each rounded down to even
        before the margins are added.
    """
    ext = np.ptp(np.asarray(translations_m)[:, :2], axis=0)
    return (int(ext[1] / pixel_m) // 2 * 2 + 2 * margin_px,
            int(ext[0] / pixel_m) // 2 * 2 + 2 * margin_px)


def axis_centre_px(shape, pixel_m: float, translations_m: np.ndarray,
                   origin_m: np.ndarray | None) -> tuple[int, int]:
    """(row, col) of an object array (centre pixel = the translations' origin) at the middle of
    the scanned rows and on the rotation axis: the scan centre, which is where twin's
    ``object_origin_m`` puts it, else the translations' midpoint.

    Parameters
    ----------
    shape : tuple of int
        (rows, cols) of the object array.
    pixel_m : float
        Its pixel, metres.
    translations_m : numpy.ndarray
        (n, 2) or (n, 3) scan positions, metres, x then y.
    origin_m : numpy.ndarray or None
        The ground truth's ``object_origin_m`` (x first), metres; its x puts the column
        (−x / pixel from the centre); None: the translations' midpoint in x.

    Returns
    -------
    (int, int)
        Row (the middle of the scanned rows) and column, pixels.
    """
    tr = np.asarray(translations_m)[:, :2]
    mid = (tr.max(axis=0) + tr.min(axis=0)) / 2
    col_off = -origin_m[0] / pixel_m if origin_m is not None else mid[0] / pixel_m
    return shape[0] // 2 + int(round(mid[1] / pixel_m)), shape[1] // 2 + int(round(col_off))


def projected_phase(obj: np.ndarray, centre: tuple[int, int],
                    region: tuple[int, int]) -> np.ndarray:
    """The phase advance k∫δ dz (radians, = −arg O unwrapped) of ``region`` around ``centre``,
    the plane through the air beside the sample removed as the preview chain does
    (:func:`twin.workflows.ptychotomo.remove_background`): float32 (rows, cols).

    Parameters
    ----------
    obj : numpy.ndarray
        (H, W) complex transmission of the object.
    centre : (int, int)
        (row, col) of the region's centre in ``obj``, pixels (:func:`axis_centre_px`).
    region : (int, int)
        (rows, cols) of the region, pixels (:func:`region_px`).

    Returns
    -------
    numpy.ndarray
        (rows, cols) float32, radians.

    Raises
    ------
    ValueError
        The region does not lie inside ``obj``.
    """
    from twin.analysis.metrics import unwrap_phase
    from twin.workflows.ptychotomo import remove_background

    h, w = region
    r0, c0 = centre[0] - h // 2, centre[1] - w // 2
    if r0 < 0 or c0 < 0 or r0 + h > obj.shape[0] or c0 + w > obj.shape[1]:
        raise ValueError(f"the scanned field {region} at {centre} lies outside the object "
                         f"{obj.shape}")
    ph = unwrap_phase(np.angle(obj[r0:r0 + h, c0:c0 + w]))
    return (-remove_background(ph, max(2, w // 12))).astype(np.float32)


def reconstruct_projection(path: str, opts, frames: int | None = None,
                           max_memory_gb: float = 4.0) -> dict:
    """Reconstruct one projection's CXI as ``twin reconstruct IN.cxi`` does and return its
    projected phase (and the ground truth's, where the file has one on the same grid).

    A Dask task. The region kept is the scanned field plus an eighth of the probe's window on
    each side (:func:`region_px`), around :func:`axis_centre_px`.

    Parameters
    ----------
    path : str
        The projection's CXI file.
    opts : twin.recon.options.Options
        Reconstruction settings (:func:`twin.recon.reconstruct`).
    frames : int, optional
        Only the first frames (``--frames``); None: all.
    max_memory_gb : float
        The frames are read into memory (float32) where they take at most a quarter of this,
        GiB; else they are streamed from the file.

    Returns
    -------
    dict
        ``phase`` (:func:`projected_phase`), ``pixel_size_m`` (metres), ``cost`` (the last
        iteration's), ``stopped_early``, ``truth`` (the ground truth's projected phase, None
        without one on the same pixel grid) and ``pcc`` (phase vs truth, NaN without one); or,
        where the input was refused (TwinInputError), only ``error``: (field, value, allowed,
        message), re-raised by the caller.
    """
    from twin.analysis import metrics
    from twin.io.cxi import read_cxi
    from twin import recon

    try:
        data = read_cxi(path, frames=frames, lazy=True)
        if data.frames.nbytes <= max_memory_gb * 2 ** 30 / 4:
            data.frames = np.asarray(data.frames, dtype=np.float32)
        r = recon.reconstruct(data, opts)
    except TwinInputError as exc:
        return _as_value(exc)
    dx, tr, t = r.pixel_size_m, data.translations_m, data.truth
    # the probe lights the object beyond the outermost scan points: an eighth of its window on
    # each side is kept, so that the air beside a sample that fills the field is in the stack
    region = region_px(tr, dx, r.probe.shape[-1] // 8)
    phase = projected_phase(r.object, axis_centre_px(r.object.shape, dx, tr, t.object_origin_m),
                            region)
    out = {"phase": phase, "pixel_size_m": dx, "cost": float(r.cost[-1]),
           "stopped_early": r.stopped_early, "truth": None, "pcc": float("nan")}
    if t.object is not None and t.pixel_size_m and abs(t.pixel_size_m / dx - 1) < 1e-6:
        out["truth"] = projected_phase(
            t.object, axis_centre_px(t.object.shape, dx, tr, t.object_origin_m), region)
        out["pcc"] = metrics.pcc(phase, out["truth"])
    return out


@dataclass(frozen=True)
class ReconstructedStack:
    """What :func:`reconstruct_experiment` wrote."""

    path: Path
    shape: tuple[int, int, int]
    pixel_size_m: float
    projection_pcc: np.ndarray        # against each projection's ground truth (NaN: none)
    stopped_early: list[str]


def _centre_crop(a: np.ndarray, shape) -> np.ndarray:
    r0, c0 = (a.shape[0] - shape[0]) // 2, (a.shape[1] - shape[1]) // 2
    return a[r0:r0 + shape[0], c0:c0 + shape[1]]


def reconstruct_experiment(master: str | Path, out: str | Path, opts,
                           scheduler: str | None = None, n_workers: int | None = None,
                           frames: int | None = None, max_memory_gb: float = 4.0,
                           progress: bool = False, log=print) -> ReconstructedStack:
    """Reconstruct every projection of a master file (one Dask task each) into a Data Exchange
    stack (CONTRACTS §5) for ``twin tomo``.

    ``/exchange/data``: float32 (n_angles, rows, cols) phase advance k∫δ dz in radians (the
    negative of the object's unwrapped phase, zero in the air beside the sample), the rotation
    axis at column cols // 2; ``/exchange/theta``: the master's angles in degrees. Where the
    CXI files carry a ground truth, ``/twin/truth_data`` holds the phantom's projections
    processed alike (for scoring) and ``/twin/projection_pcc`` each projection's PCC with it
    (NaN where it has none); the projections are centre-cropped to the smallest one's shape.

    Parameters
    ----------
    master : str or Path
        The master file (:func:`read_master`).
    out : str or Path
        The stack, ``.h5`` or ``.hdf5`` (written atomically).
    opts : twin.recon.options.Options
        Reconstruction settings, the same for every projection.
    scheduler : str, optional
        An existing Dask scheduler's address; None: a local cluster of ``n_workers``.
    n_workers : int, optional
        Local workers; None: one per core (at most 8), as the tasks and the memory allow.
    frames : int, optional
        Only the first frames of each projection; None: all.
    max_memory_gb : float
        Per projection, GiB (:func:`reconstruct_projection`).
    progress : bool
        A progress bar (stderr).
    log : callable
        Receives what is reconstructed and the cluster's memory.

    Raises
    ------
    TwinInputError
        ``--output`` not ``.h5``/``.hdf5``, ``master`` not a readable master file
        (:func:`read_master`), or a projection's reconstruction refusing its input.
    """
    out = Path(out)
    if out.suffix.lower() not in MASTER_SUFFIXES:
        raise TwinInputError("--output", str(out),
                             "a Data Exchange stack OUT.h5 (or .hdf5) for a master file")
    m = read_master(master)
    with h5py.File(m.paths[0], "r") as f:
        frame_bytes = f["entry_1/data_1/data"].size * 4
    need = int(BASE_BYTES + 3 * min(frame_bytes, max_memory_gb * 2 ** 30 / 4))
    log(f"{len(m.paths)} projections from {m.path}")
    n = len(m.paths)
    res = _run_tasks(reconstruct_projection, [[str(p) for p in m.paths], [opts] * n,
                                              [frames] * n, [max_memory_gb] * n],
                     scheduler, n_workers, need, desc="reconstruct", progress=progress, log=log)
    shape, dx = _write_stack(out, m, res)
    stopped = [f"projection_{k}: {r['stopped_early']}" for k, r in enumerate(res)
               if r["stopped_early"]]
    return ReconstructedStack(out, shape, dx, np.array([r["pcc"] for r in res]), stopped)


def _write_stack(out: Path, m: Master, res: list[dict]) -> tuple[tuple, float]:
    """The Data Exchange stack of the projections ``res`` (:func:`reconstruct_projection`),
    centre-cropped to the smallest one's shape, written atomically at ``out``: its shape
    (n_angles, rows, cols) and pixel, metres."""
    from twin.io.atomic import atomic_path
    from twin.io.dataexchange import write_dxchange

    shape = tuple(min(r["phase"].shape[i] for r in res) for i in (0, 1))
    data = np.stack([_centre_crop(r["phase"], shape) for r in res])
    dx = float(res[0]["pixel_size_m"])
    with atomic_path(out) as tmp:
        write_dxchange(tmp, data, m.theta_deg, voxel_size_m=dx)
        with h5py.File(tmp, "a") as f:
            tw = f.create_group("twin")
            tw["projection_index"] = m.indices
            tw["projection_pcc"] = np.array([r["pcc"] for r in res])
            tw["master"] = str(m.path)
            if all(r["truth"] is not None for r in res):
                tw["truth_data"] = np.stack([_centre_crop(r["truth"], shape) for r in res])
    return data.shape, dx
