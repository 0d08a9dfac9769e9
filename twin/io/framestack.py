"""The frames of a CXI file read on demand: big data without big memory."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from twin.core.errors import TwinInputError

__all__ = ["FrameStack"]


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
        """Close the HDF5 file if it is open (it is reopened on the next read)."""
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
        chunk), each block float32 (k, ny, nx).

        Parameters
        ----------
        frames : int, optional
            Frames per block; the dataset's chunk size (64 when unchunked) when None or 0.

        Yields
        ------
        start : int
            Index of the block's first frame in this stack.
        frames : numpy.ndarray
            (k, ny, nx) float32.

        Raises
        ------
        TwinInputError
            As :meth:`__getitem__`: unreadable frames or non-finite counts.
        """
        step = frames or self.chunk_frames
        for a in range(0, len(self), step):
            yield a, self[a:min(a + step, len(self))]

    def __del__(self):
        try:
            self.close()
        except Exception:  # noqa: BLE001 (interpreter shutdown)
            pass
