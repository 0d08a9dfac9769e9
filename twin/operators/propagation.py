"""Free-space propagation and the centred far-field transform, each with ``fwd`` and ``adj``.

Conventions: arrays (..., ny, nx), complex64, pixel size ``dx_m`` in metres, propagation
distance ``dz_m`` in metres, wavelength in metres. Transforms use the unitary DFT
(``norm="ortho"``) so Parseval's theorem holds exactly.

* Angular spectrum: H = exp(i·2π·dz·(√(1/λ² − fx² − fy²) − 1/λ)), evanescent waves removed
  (H = 0), the constant phase exp(i·2π·dz/λ) dropped.
* Fresnel (paraxial transfer function): H = exp(−iπλ·dz·(fx² + fy²)), the constant phase
  exp(ikz) dropped.
* Far field: the centred DFT F = fftshift ∘ DFT ∘ ifftshift (DC at index (ny//2, nx//2)), as in
  CONTRACTS §3.

Transfer functions are (ny, nx) complex64 in unshifted FFT order (DC at index (0, 0),
frequencies ``fftfreq(n, dx_m)`` in 1/m); ``xp`` is ``numpy`` or ``cupy`` throughout.
"""

from __future__ import annotations

import numpy as np

from twin.core.xp import array_module, fft2, ifft2


def _freq2(shape, dx_m, xp):
    fy = xp.fft.fftfreq(shape[-2], dx_m)
    fx = xp.fft.fftfreq(shape[-1], dx_m)
    return fy[:, None] ** 2 + fx[None, :] ** 2


def angular_spectrum_kernel(shape, dx_m: float, dz_m: float, wavelength_m: float, xp=np):
    """Transfer function exp(i·2π·dz·(√(1/λ² − f²) − 1/λ)) of the angular-spectrum propagator:
    zero for evanescent frequencies (f ≥ 1/λ), the common phase 2π·dz/λ removed.

    Parameters
    ----------
    shape : tuple of int
        Field shape; its last two entries (ny, nx) are used.
    dx_m : float
        Pixel size, metres.
    dz_m : float
        Propagation distance, metres (negative: back-propagation).
    wavelength_m : float
        X-ray wavelength λ, metres.
    xp : module
        ``numpy`` or ``cupy``: where the kernel is made.

    Returns
    -------
    ndarray
        (ny, nx) complex64, unshifted frequency order.
    """
    arg = 1.0 / wavelength_m ** 2 - _freq2(shape, dx_m, xp)
    prop = arg > 0
    kz = 2 * np.pi * dz_m * xp.sqrt(xp.where(prop, arg, 0.0))
    # remove the common phase 2π·dz/λ, which carries no information and costs precision
    h = xp.exp(1j * (kz - 2 * np.pi * dz_m / wavelength_m)) * prop
    return h.astype(xp.complex64)


def fresnel_kernel(shape, dx_m: float, dz_m: float, wavelength_m: float, xp=np):
    """Paraxial (Fresnel) transfer function exp(−iπλ·dz·f²), the constant phase dropped.

    Parameters
    ----------
    shape : tuple of int
        Field shape; its last two entries (ny, nx) are used.
    dx_m : float
        Pixel size, metres.
    dz_m : float
        Propagation distance, metres (negative: back-propagation).
    wavelength_m : float
        X-ray wavelength λ, metres.
    xp : module
        ``numpy`` or ``cupy``: where the kernel is made.

    Returns
    -------
    ndarray
        (ny, nx) complex64, unshifted frequency order.
    """
    return xp.exp(-1j * np.pi * wavelength_m * dz_m * _freq2(shape, dx_m, xp)).astype(
        xp.complex64)


def apply_kernel(u, kernel, overwrite: bool = False):
    """Propagate field(s) ``u``: IDFT(DFT(u) · kernel), unitary DFTs (``norm="ortho"``) of the
    last two axes. Forward of the pair :func:`apply_kernel` / :func:`apply_kernel_adj`.

    Parameters
    ----------
    u : ndarray
        Field(s) (..., ny, nx), complex64 in twin; the result has ``u``'s dtype.
    kernel : ndarray
        (ny, nx) complex64 transfer function in unshifted FFT order
        (:func:`angular_spectrum_kernel`, :func:`fresnel_kernel`).
    overwrite : bool
        ``u`` may be used as work space and is then lost (only where ``u`` is complex64 like
        ``kernel``); the result is the same bits, without the two temporary arrays (a third
        faster on large CPU fields).

    Returns
    -------
    ndarray
        (..., ny, nx), ``u``'s dtype.
    """
    if overwrite and u.dtype == kernel.dtype:
        f = fft2(u, overwrite_x=True)
        f *= kernel
        return ifft2(f, overwrite_x=True)
    return ifft2(fft2(u) * kernel).astype(u.dtype, copy=False)


def apply_kernel_adj(u, kernel, overwrite: bool = False):
    """Adjoint of :func:`apply_kernel`: IDFT(DFT(u) · conj(kernel)), unitary DFTs of the last
    two axes (the conjugate of either kernel is that kernel for −dz).

    Parameters
    ----------
    u : ndarray
        Field(s) (..., ny, nx), complex64 in twin; the result has ``u``'s dtype.
    kernel : ndarray
        (ny, nx) complex64 transfer function in unshifted FFT order
        (:func:`angular_spectrum_kernel`, :func:`fresnel_kernel`).
    overwrite : bool
        ``u`` may be used as work space and is then lost (only where ``u`` is complex64 like
        ``kernel``); the result is the same bits, without the two temporary arrays (a third
        faster on large CPU fields).

    Returns
    -------
    ndarray
        (..., ny, nx), ``u``'s dtype.
    """
    xp = array_module(u)
    if overwrite and u.dtype == kernel.dtype:
        f = fft2(u, overwrite_x=True)
        f *= kernel.conj()
        return ifft2(f, overwrite_x=True)
    return ifft2(fft2(u) * xp.conj(kernel)).astype(u.dtype, copy=False)


class Propagator:
    """Free-space propagation over ``dz_m`` for a fixed grid: ``fwd`` and ``adj``."""

    def __init__(self, shape, dx_m: float, dz_m: float, wavelength_m: float,
                 method: str = "angular_spectrum", xp=np):
        make = {"angular_spectrum": angular_spectrum_kernel, "fresnel": fresnel_kernel}[method]
        self.kernel = make(shape[-2:], dx_m, dz_m, wavelength_m, xp)

    def fwd(self, u, overwrite: bool = False):
        """Propagate ``u`` (..., ny, nx) complex64 over ``dz_m``: :func:`apply_kernel`.

        Parameters
        ----------
        u : ndarray
            Field(s) (..., ny, nx), complex64.
        overwrite : bool
            ``u`` may be used as work space and is then lost (:func:`apply_kernel`).
        """
        return apply_kernel(u, self.kernel, overwrite)

    def adj(self, u, overwrite: bool = False):
        """Adjoint of :meth:`fwd` (the conjugate kernel): :func:`apply_kernel_adj`.

        Parameters
        ----------
        u : ndarray
            Field(s) (..., ny, nx), complex64.
        overwrite : bool
            ``u`` may be used as work space and is then lost (:func:`apply_kernel_adj`).
        """
        return apply_kernel_adj(u, self.kernel, overwrite)


def farfield_fwd(u):
    """Centred unitary 2D DFT of the last two axes, fftshift ∘ DFT ∘ ifftshift
    (``norm="ortho"``): the input's centre pixel (ny//2, nx//2) is the origin and the output's
    DC is at (ny//2, nx//2). Forward of the pair :func:`farfield_fwd` / :func:`farfield_adj`.

    Parameters
    ----------
    u : ndarray
        Wave(s) (..., ny, nx), complex64 (NumPy or CuPy).

    Returns
    -------
    ndarray
        (..., ny, nx), complex64 for complex64 input.
    """
    xp = array_module(u)
    return xp.fft.fftshift(fft2(xp.fft.ifftshift(u, axes=(-2, -1))), axes=(-2, -1))


def farfield_adj(u):
    """Adjoint (= inverse) of :func:`farfield_fwd`: fftshift ∘ IDFT ∘ ifftshift, unitary.

    Parameters
    ----------
    u : ndarray
        Wave(s) (..., ny, nx), complex64 (NumPy or CuPy).

    Returns
    -------
    ndarray
        (..., ny, nx), complex64 for complex64 input.
    """
    xp = array_module(u)
    return xp.fft.fftshift(ifft2(xp.fft.ifftshift(u, axes=(-2, -1))), axes=(-2, -1))


def farfield_pixel_m(wavelength_m: float, distance_m: float, n_pixels: int,
                     pixel_size_m: float) -> float:
    """Object-plane pixel λz/(N·p) of a far-field frame of N detector pixels of size p.

    Parameters
    ----------
    wavelength_m, distance_m : float
        X-ray wavelength and sample–detector distance, metres.
    n_pixels : int
        Frame side in pixels.
    pixel_size_m : float
        Detector pixel size, metres (effective: after binning, for binned frames).
    """
    return wavelength_m * distance_m / (n_pixels * pixel_size_m)
