"""Reconstructions written by other codes (and by twin), read into one :class:`Product`;
twin's own CONTRACTS §4 file written by :func:`write_reconstruction`.

Formats, told apart by their content (not only the suffix):

* twin's own ``.h5`` (CONTRACTS §4): ``/object`` (attribute ``pixel_size_m``), ``/probe``,
  ``/positions_m``;
* a CXI product (Ptychodus, twin ``-o OUT.cxi``): ``/entry_1/image_2/data`` the object (layers
  multiplied), ``/entry_1/image_1/data`` the probe, the pixel size from Ptychodus's
  ``/entry_1/ptychodus/object_pixel_width_m`` or ``image_2/image_size``, positions from
  ``sample_1/geometry_1/translation`` or ``data_1/translation``;
* pty-chi (its PEAR workflow's ``recon_Niter*.h5``): ``/object`` (slices, H, W), ``/probe``,
  ``/positions_px`` (row, column pixels), ``/obj_pixel_size_m``;
* PtyPy ``.ptyr`` (HDF5): ``/content/obj/<storage>/data`` (layers, H, W) with ``_psize``
  (y, x metres) and ``_origin`` (physical y, x of pixel [0, 0]); ``/content/probe/<storage>/data``;
* ``.npy`` (a complex 2D object) and ``.npz`` (keys ``object``/``obj``, optional ``probe``,
  ``pixel_size_m``, ``positions_m``).

A missing or unreadable file, or one with none of these layouts, is a
:class:`~twin.core.errors.TwinInputError` naming it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import h5py
import numpy as np

from twin.core.errors import TwinInputError
from twin.io.atomic import atomic_path


@dataclass(frozen=True)
class Product:
    """A reconstruction, whoever wrote it.

    Attributes
    ----------
    object : complex128 (H, W)
        Object transmission (layers of a multislice object multiplied).
    pixel_size_m : float or None
        Object pixel size where the file says.
    origin_px : (row, col) float or None
        Pixel of the object that the file puts at position 0 (the scan's origin), where known;
        None means the centre pixel (H//2, W//2) is assumed.
    probe : complex (M, ny, nx) or None
    positions_m : float (N, 2) x, y or None
    source : str
        Which layout was read ("twin", "cxi", "ptychi", "ptypy", "npy", "npz").
    """

    object: np.ndarray
    pixel_size_m: float | None
    origin_px: tuple[float, float] | None
    probe: np.ndarray | None
    positions_m: np.ndarray | None
    source: str


def _object2d(a, path: Path, name: str) -> np.ndarray:
    a = np.asarray(a)
    if not np.iscomplexobj(a):
        a = a.astype(np.complex128)
    while a.ndim > 2 and a.shape[0] >= 1:
        # layers of a multislice object: their product is the projected transmission
        a = np.prod(a, axis=0) if a.ndim == 3 else a[0]
    if a.ndim != 2 or min(a.shape) < 8:
        raise TwinInputError(name, f"{path}: shape {a.shape}",
                             "must be a 2D complex object of at least 8 × 8 pixels")
    a = a.astype(np.complex128)
    if not np.all(np.isfinite(a)):
        raise TwinInputError(name, str(path), "the object holds NaN/inf")
    return a


def _scalar(f, name):
    return float(np.ravel(f[name][()])[0]) if name in f else None


#: HDF5 reconstruction layouts, in the order they are tried: (name, detect(file), read(file,
#: path)). Adding a layout is one decorated function (:func:`hdf5_layout`).
HDF5_LAYOUTS: list[tuple[str, Callable, Callable]] = []


def hdf5_layout(name: str, detect: Callable[[h5py.File], bool]):
    """Register a reader of one HDF5 reconstruction layout (tried in registration order).

    Parameters
    ----------
    name : str
        The layout's name (:attr:`Product.source`).
    detect : callable
        ``detect(file) -> bool``: whether an open :class:`h5py.File` has this layout.

    Returns
    -------
    callable
        The decorator: it appends (name, detect, reader) to :data:`HDF5_LAYOUTS` and returns the
        reader unchanged.
    """
    def deco(read):
        """Append ``read`` to :data:`HDF5_LAYOUTS` under the enclosing ``name`` and ``detect``.

        Parameters
        ----------
        read : callable
            ``read(file, path) -> Product``.

        Returns
        -------
        callable
            ``read``.
        """
        HDF5_LAYOUTS.append((name, detect, read))
        return read
    return deco


@hdf5_layout("cxi", lambda f: "entry_1/image_2/data" in f)
def _read_cxi_product(f: h5py.File, path: Path) -> Product:
    obj = _object2d(f["entry_1/image_2/data"][()], path, "/entry_1/image_2/data")
    dx = _scalar(f, "entry_1/ptychodus/object_pixel_width_m")
    if dx is None and "entry_1/image_2/image_size" in f:
        dx = float(np.ravel(f["entry_1/image_2/image_size"][()])[0]) / obj.shape[1]
    origin = None
    cx = _scalar(f, "entry_1/ptychodus/object_center_x_m")
    cy = _scalar(f, "entry_1/ptychodus/object_center_y_m")
    if dx and cx is not None and cy is not None:
        # Ptychodus: world centre (cx, cy) at pixel (N-1)/2 → position 0 at:
        origin = ((obj.shape[0] - 1) / 2 - cy / dx, (obj.shape[1] - 1) / 2 - cx / dx)
    pos = None
    for name in ("entry_1/sample_1/geometry_1/translation", "entry_1/data_1/translation"):
        if name in f:
            pos = np.asarray(f[name][()], dtype=float)[:, :2]
            break
    probe = f["entry_1/image_1/data"][()] if "entry_1/image_1/data" in f else None
    return Product(obj, dx, origin, probe, pos, "cxi")


@hdf5_layout("ptypy", lambda f: "content/obj" in f)
def _read_ptyr(f: h5py.File, path: Path) -> Product:
    keys = list(f["content/obj"].keys())
    if not keys:
        raise TwinInputError("/content/obj", str(path), "the PtyPy file has no object")
    g = f["content/obj"][keys[0]]
    obj = _object2d(g["data"][()], path, f"/content/obj/{keys[0]}/data")
    dx = float(np.ravel(g["_psize"][()])[-1]) if "_psize" in g else None
    origin = None
    if dx and "_origin" in g:
        o = np.ravel(g["_origin"][()]).astype(float)
        origin = (-o[0] / dx, -o[1] / dx)
    probe = None
    if "content/probe" in f and len(f["content/probe"]):
        pk = list(f["content/probe"].keys())[0]
        probe = f["content/probe"][pk]["data"][()]
    return Product(obj, dx, origin, probe, None, "ptypy")


@hdf5_layout("ptychi", lambda f: "object" in f and "positions_px" in f)
def _read_ptychi(f: h5py.File, path: Path) -> Product:
    obj = _object2d(f["object"][()], path, "/object")
    dx = _scalar(f, "obj_pixel_size_m")
    pos_px = np.asarray(f["positions_px"][()], dtype=float)
    pos = pos_px[:, ::-1] * dx if dx else None   # pty-chi: (row, col) pixels
    probe = f["probe"][()] if "probe" in f else None
    return Product(obj, dx, None, probe, pos, "ptychi")


@hdf5_layout("twin", lambda f: "object" in f)
def _read_twin(f: h5py.File, path: Path) -> Product:
    ds = f["object"]
    obj = _object2d(ds[()], path, "/object")
    dx = ds.attrs.get("pixel_size_m")
    pos = np.asarray(f["positions_m"][()], dtype=float) if "positions_m" in f else None
    probe = f["probe"][()] if "probe" in f else None
    return Product(obj, None if dx is None else float(dx), None, probe, pos, "twin")


def _read_h5(path: Path) -> Product:
    try:
        f = h5py.File(path, "r")
    except (OSError, ValueError) as exc:
        raise TwinInputError("RECON", str(path),
                             f"is not a readable HDF5 file (truncated or corrupt?): {exc}"
                             ) from None
    with f:
        for _, detect, read in HDF5_LAYOUTS:
            if detect(f):
                return read(f, path)
    raise TwinInputError("RECON", str(path),
                         "no object found: expected one of the layouts "
                         + ", ".join(name for name, _, _ in HDF5_LAYOUTS)
                         + " (twin's /object, a CXI product's /entry_1/image_2/data, pty-chi's "
                         "/object + /positions_px, or PtyPy's /content/obj)")


def read_product(path: str | Path, pixel_size_m: float | None = None) -> Product:
    """Read a reconstruction of any supported layout (see the module docstring).

    Parameters
    ----------
    path : str or Path
        ``.h5``/``.hdf5``/``.cxi``/``.ptyr`` (HDF5), ``.npy`` or ``.npz``.
    pixel_size_m : float, optional
        Overrides (or supplies) the object's pixel size, metres.
    """
    path = Path(path)
    if not path.exists():
        raise TwinInputError("RECON", str(path), "the file does not exist")
    suffix = path.suffix.lower()
    if suffix in (".npy", ".npz"):
        try:
            z = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise TwinInputError("RECON", str(path), f"is not a readable NumPy file: {exc}"
                                 ) from None
        if suffix == ".npy":
            p = Product(_object2d(z, path, "RECON"), None, None, None, None, "npy")
        else:
            with z:
                key = next((k for k in ("object", "obj", "arr_0") if k in z.files), None)
                if key is None:
                    raise TwinInputError("RECON", str(path),
                                         f"the .npz has no 'object' array (keys: {z.files})")
                dx = float(z["pixel_size_m"]) if "pixel_size_m" in z.files else None
                pos = np.asarray(z["positions_m"], float) if "positions_m" in z.files else None
                probe = z["probe"] if "probe" in z.files else None
                p = Product(_object2d(z[key], path, key), dx, None, probe, pos, "npz")
    else:
        p = _read_h5(path)
    if pixel_size_m is not None:
        if not (np.isfinite(pixel_size_m) and pixel_size_m > 0):
            raise TwinInputError("--pixel-size-m", pixel_size_m, "must be a positive length")
        p = Product(p.object, float(pixel_size_m), p.origin_px, p.probe, p.positions_m,
                    p.source)
    if p.pixel_size_m is not None and not (np.isfinite(p.pixel_size_m) and p.pixel_size_m > 0):
        raise TwinInputError("pixel size", p.pixel_size_m, "must be a positive length")
    return p


def write_reconstruction(path: str | Path, obj, probe, positions_m, cost, pixel_size_m: float,
                         **extra) -> None:
    """CONTRACTS §4: ``/object``, ``/probe``, ``/positions_m``, ``/cost``, atomically.

    Parameters
    ----------
    path : str or Path
        Output ``.h5``.
    obj : complex (H, W)
        Object transmission; its centre pixel is the translations' origin.
    probe : complex (M, ny, nx)
        Probe modes.
    positions_m : float (N, 2)
        Refined positions x, y, metres.
    cost : (iterations,)
        Data-fidelity cost per iteration.
    pixel_size_m : float
        Object pixel size (attribute of ``/object``).
    **extra
        Further datasets by name.
    """
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        o = f.create_dataset("object", data=np.asarray(obj, dtype=np.complex64))
        o.attrs["pixel_size_m"] = float(pixel_size_m)
        f["probe"] = np.asarray(probe, dtype=np.complex64)
        f["positions_m"] = np.asarray(positions_m, dtype=np.float64)
        f["cost"] = np.asarray(cost, dtype=np.float64)
        for k, v in extra.items():
            f[k] = v
