"""Array backend: NumPy (with ``scipy.fft`` workers) on the CPU, CuPy on a GPU.

Physics is written once against the module returned by :func:`get_xp`; the FFTs go through
:func:`fft2` / :func:`ifft2` so that the CPU path uses every core.
"""

from __future__ import annotations

import os
from types import ModuleType

import numpy as np
import scipy.fft as _sfft

try:  # pragma: no cover - exercised only where CuPy and a GPU exist
    import cupy as _cp

    _cp.cuda.runtime.getDeviceCount()
except Exception:  # noqa: BLE001 - no CuPy, no driver or no device: stay on the CPU
    _cp = None

WORKERS = int(os.environ.get("TWIN_FFT_WORKERS", os.cpu_count() or 1))


def gpu_available() -> bool:
    """True when CuPy imported and reported a CUDA device at import time."""
    return _cp is not None


def get_xp(backend: str = "auto") -> ModuleType:
    """``numpy`` or ``cupy``. ``backend``: "auto" (CuPy when a GPU is usable), "numpy", "cupy".

    Parameters
    ----------
    backend : {"auto", "numpy", "cupy"}
        Which array module to return; any other value behaves as "cupy".

    Returns
    -------
    module
        ``numpy`` or ``cupy``.

    Raises
    ------
    RuntimeError
        When CuPy is asked for (explicitly, or by a value other than "numpy"/"auto") and no
        usable CuPy or GPU exists.
    """
    if backend == "numpy" or (backend == "auto" and _cp is None):
        return np
    if _cp is None:
        raise RuntimeError("backend 'cupy' asked for, but CuPy or a GPU is not available")
    return _cp


def array_module(a) -> ModuleType:
    """The module (numpy or cupy) that owns array ``a``.

    Parameters
    ----------
    a : object
        An array or anything else.

    Returns
    -------
    module
        ``cupy`` for a CuPy array, ``numpy`` for everything else.
    """
    if _cp is not None and isinstance(a, _cp.ndarray):
        return _cp
    return np


def to_numpy(a) -> np.ndarray:
    """A NumPy copy of a CuPy array (``a.get()``), or ``numpy.asarray(a)`` otherwise.

    Parameters
    ----------
    a : array_like
        Any array or anything with a ``get()`` method.

    Returns
    -------
    numpy.ndarray
        Host array (no copy when ``a`` is already a NumPy array).
    """
    return a.get() if hasattr(a, "get") else np.asarray(a)


def fft2(a, axes=(-2, -1), norm="ortho", overwrite_x: bool = False):
    """2-D FFT over ``axes``: ``scipy.fft`` with ``WORKERS`` threads on NumPy, ``cupy.fft``
    on a GPU.

    Parameters
    ----------
    a : ndarray
        Input array, NumPy or CuPy.
    axes : (2,) int
        Axes transformed.
    norm : {"ortho", "backward", "forward"}
        Normalisation; "ortho" makes the transform unitary.
    overwrite_x : bool
        Allow ``scipy.fft`` to overwrite ``a`` (ignored on the GPU).

    Returns
    -------
    ndarray
        Complex spectrum, unshifted FFT order, on the input's device.
    """
    if array_module(a) is np:
        return _sfft.fft2(a, axes=axes, norm=norm, workers=WORKERS, overwrite_x=overwrite_x)
    return _cp.fft.fft2(a, axes=axes, norm=norm)


def ifft2(a, axes=(-2, -1), norm="ortho", overwrite_x: bool = False):
    """2-D inverse FFT over ``axes``: ``scipy.fft`` with ``WORKERS`` threads on NumPy, ``cupy.fft``
    on a GPU.

    Parameters
    ----------
    a : ndarray
        Spectrum, unshifted FFT order, NumPy or CuPy.
    axes : (2,) int
        Axes transformed.
    norm : {"ortho", "backward", "forward"}
        Normalisation; "ortho" makes the transform unitary.
    overwrite_x : bool
        Allow ``scipy.fft`` to overwrite ``a`` (ignored on the GPU).

    Returns
    -------
    ndarray
        Complex array on the input's device.
    """
    if array_module(a) is np:
        return _sfft.ifft2(a, axes=axes, norm=norm, workers=WORKERS, overwrite_x=overwrite_x)
    return _cp.fft.ifft2(a, axes=axes, norm=norm)


def fft(a, axis: int = -1, norm="ortho", overwrite_x: bool = False, inverse: bool = False):
    """1D (inverse if ``inverse``) FFT along ``axis``: ``scipy.fft`` with every core on NumPy
    arrays, ``cupy.fft`` on the GPU.

    Parameters
    ----------
    a : ndarray
        Input array, NumPy or CuPy.
    axis : int
        Axis transformed.
    norm : {"ortho", "backward", "forward"}
        Normalisation.
    overwrite_x : bool
        Allow ``scipy.fft`` to overwrite ``a`` (ignored on the GPU).
    inverse : bool
        Inverse transform instead of the forward one.

    Returns
    -------
    ndarray
        Complex array on the input's device.
    """
    if array_module(a) is np:
        f = _sfft.ifft if inverse else _sfft.fft
        return f(a, axis=axis, norm=norm, workers=WORKERS, overwrite_x=overwrite_x)
    f = _cp.fft.ifft if inverse else _cp.fft.fft
    return f(a, axis=axis, norm=norm)


def fftfreq(n: int, d: float, xp: ModuleType = np):
    """Sample frequencies of an FFT of length ``n`` (``xp.fft.fftfreq``).

    Parameters
    ----------
    n : int
        Transform length.
    d : float
        Sample spacing (e.g. metres); the frequencies are in its inverse unit (cycles per metre).
    xp : module
        ``numpy`` or ``cupy``: where the array is made.

    Returns
    -------
    ndarray
        (n,) frequencies in unshifted FFT order.
    """
    return xp.fft.fftfreq(n, d)
