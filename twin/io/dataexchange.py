"""Data Exchange files (CONTRACTS §5): the projection stack ``twin tomo`` reads and
dxchange/TomoPy read unchanged, and the reconstructed volume ``twin tomo`` writes.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from twin.core.errors import TwinInputError
from twin.io.atomic import atomic_path
from twin.io.datamodel import Projections
from twin.io.hdf5 import need_dataset, open_h5

__all__ = ["read_dxchange", "write_dxchange", "write_volume"]


def read_dxchange(path: str | Path) -> Projections:
    """CONTRACTS §5 input: /exchange/data and /exchange/theta (degrees).

    Parameters
    ----------
    path : str or Path
        The Data Exchange file.

    Returns
    -------
    Projections
        Data as float32 (n_angles, rows, cols), angles as float64 degrees, and the
        ``voxel_size_m`` attribute of ``/exchange/data`` (metres) or None.

    Raises
    ------
    TwinInputError
        A missing or unreadable file or dataset; data not 3-D; not one angle per projection;
        NaN or inf in the data or the angles.
    """
    path = Path(path)
    with open_h5(path, "HDF5") as f:
        data = np.asarray(need_dataset(f, "exchange/data", str(path)), dtype=np.float32)
        theta = np.asarray(need_dataset(f, "exchange/theta", str(path)), dtype=np.float64)
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

    Written atomically (:func:`twin.io.atomic.atomic_path`).

    Parameters
    ----------
    path : str or Path
        The file to write.
    data : array_like (n_angles, rows, cols)
        Projections (line integrals, radians), stored as float32.
    theta_deg : array_like (n_angles,)
        Rotation angles, degrees.
    voxel_size_m : float, optional
        Pixel size, metres; not stored when None or 0.

    Raises
    ------
    TwinInputError
        When ``path`` cannot be an output file (:func:`twin.io.atomic.check_output_file`).
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
    """CONTRACTS §5 output: /volume float32 (rows, cols, cols), attribute voxel_size_m.

    Written atomically (:func:`twin.io.atomic.atomic_path`).

    Parameters
    ----------
    path : str or Path
        The file to write.
    volume : array_like (rows, cols, cols)
        The reconstruction, stored as float32.
    voxel_size_m : float, optional
        Voxel size, metres; not stored when None or 0.
    **extra
        Further datasets, name → value, at the file's root.

    Raises
    ------
    TwinInputError
        When ``path`` cannot be an output file.
    """
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        v = f.create_dataset("volume", data=np.asarray(volume, dtype=np.float32))
        if voxel_size_m:
            v.attrs["voxel_size_m"] = float(voxel_size_m)
        for k, val in extra.items():
            f[k] = val
