"""``twin reconstruct OUT.h5``: every projection of a master file reconstructed, one Dask task
each, into the Data Exchange stack (CONTRACTS §5) that ``twin tomo`` reads.

The master file and its projections are those that :mod:`twin.workflows.experiment` writes and
reads (:func:`~twin.workflows.experiment.read_master`); the Dask tasks run as its simulation's do
(:func:`~twin.workflows.experiment._run_tasks`: the memory stated, input errors raised here).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from twin.core.errors import TwinInputError
from twin.workflows.experiment import (BASE_BYTES, MASTER_SUFFIXES, _as_value, _run_tasks,
                                       read_master)


def region_px(translations_m: np.ndarray, pixel_m: float, margin_px: int = 0) -> tuple[int, int]:
    """(rows, cols) of the scanned field in pixels plus ``margin_px`` on every side, even."""
    ext = np.ptp(np.asarray(translations_m)[:, :2], axis=0)
    return (int(ext[1] / pixel_m) // 2 * 2 + 2 * margin_px,
            int(ext[0] / pixel_m) // 2 * 2 + 2 * margin_px)


def axis_centre_px(shape, pixel_m: float, translations_m: np.ndarray,
                   origin_m: np.ndarray | None) -> tuple[int, int]:
    """(row, col) of an object array (centre pixel = the translations' origin) at the middle of
    the scanned rows and on the rotation axis: the scan centre, which is where twin's
    ``object_origin_m`` puts it, else the translations' midpoint."""
    tr = np.asarray(translations_m)[:, :2]
    mid = (tr.max(axis=0) + tr.min(axis=0)) / 2
    col_off = -origin_m[0] / pixel_m if origin_m is not None else mid[0] / pixel_m
    return shape[0] // 2 + int(round(mid[1] / pixel_m)), shape[1] // 2 + int(round(col_off))


def projected_phase(obj: np.ndarray, centre: tuple[int, int],
                    region: tuple[int, int]) -> np.ndarray:
    """The phase advance k∫δ dz (radians, = −arg O unwrapped) of ``region`` around ``centre``,
    the plane through the air beside the sample removed as the preview chain does
    (:func:`twin.workflows.ptychotomo.remove_background`): float32 (rows, cols)."""
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
    projected phase (and the ground truth's, where the file has one on the same grid)."""
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
    processed alike (for scoring) and ``/twin/projection_pcc`` each projection's PCC with it.
    """
    from twin.io.atomic import atomic_path
    from twin.io.dataexchange import write_dxchange

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
    stopped = [f"projection_{k}: {r['stopped_early']}" for k, r in enumerate(res)
               if r["stopped_early"]]
    return ReconstructedStack(out, data.shape, dx, np.array([r["pcc"] for r in res]), stopped)
