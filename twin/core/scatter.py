"""Gather and scatter-add on flat indices, the adjoint pair behind patch extraction and
interpolation (NumPy ``bincount`` on the CPU, ``cupyx.scatter_add`` on the GPU)."""

from __future__ import annotations

import numpy as np

from twin.core.xp import array_module


def scatter_add(size: int, flat_index, values):
    """A length-``size`` vector with ``values`` summed at ``flat_index`` (real or complex)."""
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
