"""Free-space propagation and the centred far-field transform, each with ``fwd`` and ``adj``.

Conventions: arrays (..., ny, nx), complex64, pixel size ``dx_m`` in metres, propagation
distance ``dz_m`` in metres, wavelength in metres. Transforms use the unitary DFT
(``norm="ortho"``) so Parseval's theorem holds exactly.

* Angular spectrum: H = exp(i·2π·dz·√(1/λ² − fx² − fy²)), evanescent waves removed.
* Fresnel (paraxial transfer function): H = exp(−iπλ·dz·(fx² + fy²)), the constant phase
  exp(ikz) dropped.
* Far field: the centred DFT F = fftshift ∘ DFT ∘ ifftshift (DC at index (ny//2, nx//2)), as in
  CONTRACTS §3.
"""

from __future__ import annotations

import numpy as np

from twin.core.xp import array_module, fft2, ifft2


def _freq2(shape, dx_m, xp):
    fy = xp.fft.fftfreq(shape[-2], dx_m)
    fx = xp.fft.fftfreq(shape[-1], dx_m)
    return fy[:, None] ** 2 + fx[None, :] ** 2


def angular_spectrum_kernel(shape, dx_m: float, dz_m: float, wavelength_m: float, xp=np):
    """Transfer function of the angular-spectrum propagator (unshifted frequency order)."""
    arg = 1.0 / wavelength_m ** 2 - _freq2(shape, dx_m, xp)
    prop = arg > 0
    kz = 2 * np.pi * dz_m * xp.sqrt(xp.where(prop, arg, 0.0))
    # remove the common phase 2π·dz/λ, which carries no information and costs precision
    h = xp.exp(1j * (kz - 2 * np.pi * dz_m / wavelength_m)) * prop
    return h.astype(xp.complex64)


def fresnel_kernel(shape, dx_m: float, dz_m: float, wavelength_m: float, xp=np):
    """Paraxial (Fresnel) transfer function exp(−iπλ·dz·f²)."""
    return xp.exp(-1j * np.pi * wavelength_m * dz_m * _freq2(shape, dx_m, xp)).astype(
        xp.complex64)


def apply_kernel(u, kernel, overwrite: bool = False):
    """Propagate field(s) ``u`` (..., ny, nx) with a transfer function.

    ``overwrite``: ``u`` (complex64) may be used as work space and is then lost; the result is
    the same bits, without the two temporary arrays (a third faster on large CPU fields).
    """
    if overwrite and u.dtype == kernel.dtype:
        f = fft2(u, overwrite_x=True)
        f *= kernel
        return ifft2(f, overwrite_x=True)
    return ifft2(fft2(u) * kernel).astype(u.dtype, copy=False)


def apply_kernel_adj(u, kernel, overwrite: bool = False):
    """Adjoint of :func:`apply_kernel` (the conjugate kernel); ``overwrite`` as there."""
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
        return apply_kernel(u, self.kernel, overwrite)

    def adj(self, u, overwrite: bool = False):
        return apply_kernel_adj(u, self.kernel, overwrite)


def farfield_fwd(u):
    """Centred unitary 2D DFT of the last two axes: DC moves to (ny//2, nx//2)."""
    xp = array_module(u)
    return xp.fft.fftshift(fft2(xp.fft.ifftshift(u, axes=(-2, -1))), axes=(-2, -1))


def farfield_adj(u):
    """Adjoint (= inverse) of :func:`farfield_fwd`."""
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
