"""Gather and scatter-add on flat indices, the adjoint pair behind patch extraction and
interpolation (NumPy ``bincount`` on the CPU, ``cupyx.scatter_add`` on the GPU)."""

from __future__ import annotations

import numpy as np

from twin.core.xp import array_module


def scatter_add(size: int, flat_index, values):
    """A length-``size`` vector with ``values`` summed at ``flat_index`` (real or complex).

    Parameters
    ----------
    size : int
        Length of the result.
    flat_index : ndarray of int
        Non-negative flat indices, any shape; the same number of elements as ``values``.
    values : ndarray
        Values to add, NumPy or CuPy, real or complex.

    Returns
    -------
    ndarray
        (size,) array of ``values.dtype`` on the input's device; repeated indices add up.
    """
    xp = array_module(values)
    idx = flat_index.ravel()
    vals = values.ravel()
    if xp is np:
        if np.iscomplexobj(vals):
            re = np.bincount(idx, weights=vals.real, minlength=size)
            im = np.bincount(idx, weights=vals.imag, minlength=size)
            return (re + 1j * im).astype(values.dtype)
        return np.bincount(idx, weights=vals, minlength=size).astype(values.dtype)
    import cupyx  # pragma: no cover

    out = xp.zeros(size, dtype=values.dtype)  # pragma: no cover
    cupyx.scatter_add(out, idx, vals)  # pragma: no cover
    return out  # pragma: no cover


def window_index(origins, size: tuple[int, int], width: int, xp=np):
    """(B, sy, sx) flat indices into a row-major array of ``width`` columns of the windows whose
    top-left corners are ``origins`` (B, 2) (row, col), built on ``xp``'s device: only the
    origins travel to a GPU, not the index array (B·sy·sx integers).

    Parameters
    ----------
    origins : array_like (B, 2) int
        Top-left corners (row, col), pixels.
    size : (int, int)
        Window size (sy, sx), pixels.
    width : int
        Number of columns of the indexed array.
    xp : module
        ``numpy`` or ``cupy``.

    Returns
    -------
    ndarray
        (B, sy, sx) int64 flat indices row·width + col.
    """
    sy, sx = size
    o = (origins.astype(xp.int64, copy=False) if array_module(origins) is xp
         else xp.asarray(np.asarray(origins, dtype=np.int64)))
    start = o[:, 0, None, None] * width + o[:, 1, None, None]
    return (start + (xp.arange(sy, dtype=xp.int64) * width)[None, :, None]
            + xp.arange(sx, dtype=xp.int64)[None, None, :])


def add_windows(out, origins, values):
    """Add ``values`` (B, sy, sx) into ``out`` (H, W) at the windows whose top-left corners are
    ``origins`` (B, 2) integer (row, col): the adjoint of cutting those windows out.

    On the CPU a loop of slice additions (each window is contiguous rows, and no float64 copy is
    made as ``bincount`` would); on the GPU one scatter-add on flat indices.

    Parameters
    ----------
    out : ndarray (H, W)
        Accumulator, modified in place; NumPy or CuPy.
    origins : array_like (B, 2) int
        Top-left corners (row, col), pixels; windows must lie inside ``out``.
    values : ndarray (B, sy, sx)
        Windows to add.

    Returns
    -------
    ndarray
        ``out`` itself.
    """
    xp = array_module(out)
    b, sy, sx = values.shape
    if xp is np:
        origins = np.asarray(origins)
        for k in range(b):
            r, c = origins[k]
            out[r:r + sy, c:c + sx] += values[k]
        return out
    idx = window_index(origins, (sy, sx), out.shape[1], xp)  # pragma: no cover
    import cupyx  # pragma: no cover

    vals = xp.ascontiguousarray(xp.broadcast_to(values, (b, sy, sx)))  # pragma: no cover
    flat = out.reshape(-1)  # pragma: no cover
    if xp.iscomplexobj(vals):  # pragma: no cover
        # cupyx.scatter_add takes complex64 on recent CuPy; split to stay portable
        re = flat.view(xp.float32)[0::2] if out.dtype == xp.complex64 else None
        if re is not None:
            cupyx.scatter_add(re, idx.ravel(), vals.real.ravel())
            cupyx.scatter_add(flat.view(xp.float32)[1::2], idx.ravel(), vals.imag.ravel())
            return out
    cupyx.scatter_add(flat, idx.ravel(), vals.ravel())  # pragma: no cover
    return out  # pragma: no cover
