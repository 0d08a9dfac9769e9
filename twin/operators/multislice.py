"""Multislice propagation through a thick object (seed 002 Eqs. 1–2).

The wave entering slice l is multiplied by the slice's transmission O_l and propagated by Δz to
the next slice: ψ_{l+1} = P_Δz(ψ_l · O_l); the exit wave leaves the last slice unpropagated.
For a fixed object the map from incident wave to exit wave is linear (``fwd``/``adj``); the
gradient with respect to each slice is what reconstruction needs (:func:`slice_gradients`).
"""

from __future__ import annotations

from twin.operators.propagation import Propagator
from twin.core.xp import array_module


class Multislice:
    """Incident wave (..., ny, nx) → exit wave through ``slices`` (L, ny, nx) or
    (..., L, ny, nx).

    Parameters
    ----------
    slices : ndarray
        Slice transmissions O_1 … O_L, (L, ny, nx) or (..., L, ny, nx), complex64.
    propagator : Propagator
        Free-space propagation over the slice spacing Δz on the (ny, nx) grid.
    """

    def __init__(self, slices, propagator: Propagator):
        self.slices = slices
        self.prop = propagator

    @property
    def n_slices(self) -> int:
        """L: the number of slices."""
        return self.slices.shape[-3]

    def fwd(self, wave):
        """Exit wave ψ_L·O_L of incident ``wave``: ψ_{l+1} = P_Δz(ψ_l · O_l). Forward of the
        pair :meth:`fwd` / :meth:`adj`, linear in the wave.

        Parameters
        ----------
        wave : ndarray
            Incident wave(s) (..., ny, nx), complex64.

        Returns
        -------
        ndarray
            The exit wave, the broadcast shape of ``wave`` and a slice.
        """
        psi = wave
        for l in range(self.n_slices):
            psi = psi * self.slices[..., l, :, :]
            if l < self.n_slices - 1:
                psi = self.prop.fwd(psi)
        return psi

    def adj(self, exit_wave):
        """Adjoint of :meth:`fwd`: χ ← conj(O_l)·P_Δzᴴ(χ) from the last slice to the first.

        Parameters
        ----------
        exit_wave : ndarray
            Wave(s) at the exit (..., ny, nx), complex64.

        Returns
        -------
        ndarray
            Wave(s) at the entrance, the broadcast shape of ``exit_wave`` and a slice.
        """
        xp = array_module(exit_wave)
        psi = exit_wave
        for l in reversed(range(self.n_slices)):
            if l < self.n_slices - 1:
                psi = self.prop.adj(psi)
            psi = psi * xp.conj(self.slices[..., l, :, :])
        return psi

    def forward_waves(self, wave):
        """The wave entering each slice and the exit wave (:meth:`fwd`'s).

        Parameters
        ----------
        wave : ndarray
            Incident wave(s) (..., ny, nx), complex64.

        Returns
        -------
        waves : list of ndarray
            L arrays: ψ_l, the wave entering slice l (ψ_1 is ``wave`` itself).
        exit : ndarray
            The exit wave.
        """
        waves = []
        psi = wave
        for l in range(self.n_slices):
            waves.append(psi)
            psi = psi * self.slices[..., l, :, :]
            if l < self.n_slices - 1:
                psi = self.prop.fwd(psi, overwrite=True)        # the product is a temporary
        return waves, psi


    def gradients(self, waves, exit_residual):
        """Back-propagate a residual at the exit: (per-slice gradients, entrance gradient).

        ``waves`` are the incident waves of :meth:`forward_waves`. The gradient with respect to
        slice l (∂/∂O_l* of ½‖exit − target‖²) is conj(ψ_l)·χ_l, shaped like the wave; the
        entrance gradient is :meth:`adj` of the residual (the probe's gradient).

        Parameters
        ----------
        waves : list of ndarray
            The L incident waves ψ_l of :meth:`forward_waves`.
        exit_residual : ndarray
            Residual at the exit, exit − target (..., ny, nx), complex64.

        Returns
        -------
        grads : list of ndarray
            L gradients conj(ψ_l)·χ_l, each shaped like the wave.
        entrance : ndarray
            The back-propagated residual at the entrance, :meth:`adj` of ``exit_residual``.
        """
        xp = array_module(exit_residual)
        grads = [None] * self.n_slices
        chi = exit_residual
        for l in reversed(range(self.n_slices)):
            if l < self.n_slices - 1:
                chi = self.prop.adj(chi, overwrite=True)        # a product made below
            grads[l] = xp.conj(waves[l]) * chi
            chi = chi * xp.conj(self.slices[..., l, :, :])
        return grads, chi


def slice_gradients(ms: Multislice, wave, exit_residual):
    """∂/∂O_l* of ½‖exit(O) − target‖² given the residual at the exit (one term per slice).

    Parameters
    ----------
    ms : Multislice
        The operator (slices and propagator).
    wave : ndarray
        Incident wave(s) (..., ny, nx), complex64.
    exit_residual : ndarray
        Residual at the exit, exit − target, shaped like the exit wave.

    Returns
    -------
    list of ndarray
        L arrays shaped like the incident wave: conj(ψ_l) · (back-propagated residual at
        slice l).
    """
    waves, _ = ms.forward_waves(wave)
    return ms.gradients(waves, exit_residual)[0]
