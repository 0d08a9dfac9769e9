"""HDF5 helpers shared by the formats: opening a file as bad input, required datasets, NeXus
units, and the frames' compression filters.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import h5py

from twin.core.errors import TwinInputError

try:  # registers bitshuffle/LZ4 with h5py, for reading too
    import hdf5plugin
except ImportError:  # pragma: no cover
    hdf5plugin = None

__all__ = ["COMPRESSIONS", "GZIP_LEVEL", "compression_options", "dataset_with_units",
           "need_dataset", "open_h5"]

COMPRESSIONS = ("gzip", "bitshuffle", "none")
#: Deflate level of the default CXI compression. Measured (README, "Files other software
#: reads") on quickstart, SELUN 110 kHz and EIGER 3 kHz frames: writing with shuffle + deflate-4
#: costs 5-8 % of the frames' simulation time (level 1: 3-6 %, level 6: 5-13 %) and gives files
#: 6-30 % smaller than level 1 and 2-2.2x smaller than bitshuffle-LZ4.
GZIP_LEVEL = 4


def compression_options(name: str = "gzip") -> dict:
    """h5py dataset options for the frames.

    ``gzip``: byte shuffle + deflate, filters built into every HDF5 library (plain h5py,
    MATLAB, HDFView) - the default. ``bitshuffle``: bitshuffle + LZ4, the detector vendors'
    native format; readers need the plugin (``pip install hdf5plugin`` and
    ``import hdf5plugin`` before opening). ``none``: no filter.

    Parameters
    ----------
    name : {"gzip", "bitshuffle", "none"}
        The filter; anything else is a :class:`TwinInputError` naming ``--compression``.

    Returns
    -------
    dict
        Keyword arguments for :meth:`h5py.Group.create_dataset`.
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


def dataset_with_units(group: h5py.Group, name: str, value, units: str) -> h5py.Dataset:
    """Create dataset ``name`` in ``group`` holding ``value``, with a NeXus ``units``
    attribute.

    Parameters
    ----------
    group : h5py.Group
        Where to create it.
    name : str
        Dataset name.
    value : array_like
        Its data.
    units : str
        The ``units`` attribute (e.g. ``"m"``, ``"counts"``).

    Returns
    -------
    h5py.Dataset
    """
    ds = group.create_dataset(name, data=value)
    ds.attrs["units"] = units
    return ds


@contextlib.contextmanager
def open_h5(path: Path, kind: str, field: str = "input"):
    """Open an HDF5 file for reading; a missing, truncated or corrupt file is bad input
    (:class:`TwinInputError` naming ``field``, the path and the ``kind`` of file expected).

    A context manager: ``with open_h5(path, "CXI") as f: ...``.

    Parameters
    ----------
    path : Path
        The file.
    kind : str
        The kind of file expected, for the message (``"CXI"``, ``"HDF5"``).
    field : str
        The option or field that named the file.

    Yields
    ------
    h5py.File
        Open read-only.

    Raises
    ------
    TwinInputError
        When the file does not exist, or h5py raises OSError, KeyError or ValueError while it is
        open (a TwinInputError raised in the block passes through).
    """
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


def need_dataset(f: h5py.File, name: str, source: str) -> h5py.Dataset:
    """The dataset ``name`` of ``f``; a missing one is a :class:`TwinInputError` naming it and
    ``source`` (the file).

    Parameters
    ----------
    f : h5py.File
        The open file.
    name : str
        Dataset path.
    source : str
        The file's name, for the message.

    Returns
    -------
    h5py.Dataset

    Raises
    ------
    TwinInputError
        When ``name`` is not in ``f``.
    """
    if name not in f:
        raise TwinInputError(name, source, f"dataset {name} is missing from the CXI file")
    return f[name]

