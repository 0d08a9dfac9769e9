"""The starting probe modes: the file's illumination (or one beam's) fitted to the number of
modes wanted and scaled to the frames' photons; modes extended by phase ramps and
orthogonalised (an SVD).
"""

from __future__ import annotations

import numpy as np

from twin.core.errors import TwinInputError
from twin.core.xp import to_numpy
from twin.io.datamodel import PtychoData
from twin.recon.frames import statistics

__all__ = ["ILLUMINATION", "fit_modes", "initial_probe", "orthogonalize_modes"]

ILLUMINATION = "/entry_1/instrument_1/source_1/illumination"


def orthogonalize_modes(probe, xp):
    """Orthogonal probe modes with the same incoherent sum, strongest first (an SVD).

    With A the modes as rows, A = U·S·Vᴴ and the new modes are S·Vᴴ: Σ_m |P_m|² is unchanged
    at every pixel.

    Parameters
    ----------
    probe : ndarray (M, n, n) complex
        Probe modes, NumPy or CuPy.
    xp : module
        ``numpy`` or ``cupy`` (``probe``'s).

    Returns
    -------
    ndarray (M, n, n)
        Orthogonal modes of ``probe``'s dtype, by decreasing power; ``probe`` itself when M = 1.
    """
    m = probe.shape[0]
    if m == 1:
        return probe
    a = probe.reshape(m, -1)
    u, s, vh = xp.linalg.svd(a, full_matrices=False)
    return (s[:, None] * vh).reshape(probe.shape).astype(probe.dtype)


def fit_modes(p, modes: int, xp=np) -> np.ndarray:
    """(M', n, n) probe modes cut to the first ``modes``, or extended with weaker modes made
    from the first by phase ramps (0.3 of its amplitude), orthogonalised.

    Extra mode k (k = 1, 2, …) is 0.3·P₀·exp(2πi(k·x + (k mod 2)·y)), x and y the pixel index
    over n; the modes are orthogonalised (:func:`orthogonalize_modes`) only when extended.

    Parameters
    ----------
    p : array_like (M, n, n) complex
        Probe modes.
    modes : int
        Number of modes wanted, M'.
    xp : module
        ``numpy`` or ``cupy``, for the orthogonalisation.

    Returns
    -------
    numpy.ndarray
        (M', n, n) complex64, on the host.
    """
    p = np.asarray(p, np.complex64)[:modes]
    n = p.shape[-1]
    if p.shape[0] < modes:
        base = p[0]
        yy, xx = np.mgrid[:n, :n] / n
        extra = [base * np.exp(2j * np.pi * (k * xx + (k % 2) * yy)) * 0.3
                 for k in range(1, modes - p.shape[0] + 1)]
        p = np.concatenate([p, np.stack(extra)]).astype(np.complex64)
        p = to_numpy(orthogonalize_modes(xp.asarray(p), xp))
    return np.asarray(p, np.complex64)


def initial_probe(data: PtychoData, n: int, u: int, modes: int, xp, illumination=None,
                  photons: float | None = None) -> np.ndarray:
    """The file's illumination (or ``illumination``, one beam's) as ``modes`` modes, scaled to
    ``photons`` (default: the frames' mean). Without one: :func:`twin.recon.auto.prepare`
    gives the data a model first.

    Parameters
    ----------
    data : PtychoData
        The data set.
    n : int
        Probe side, pixels (the frames' side times ``u``).
    u : int
        Upsampling, for the message only.
    modes : int
        Number of probe modes (:func:`fit_modes`).
    xp : module
        ``numpy`` or ``cupy``: where the probe is returned.
    illumination : array_like (M, n, n), optional
        Used instead of ``data.illumination``.
    photons : float, optional
        Σ_m ‖P_m‖², photons per frame; the frames' mean (less the background) when None.

    Returns
    -------
    ndarray (modes, n, n)
        complex64 probe modes on ``xp``.

    Raises
    ------
    ValueError
        When there is no illumination at all.
    TwinInputError
        The illumination dataset when it is not (M, n, n) or holds NaN or inf.
    """
    mean_photons = statistics(data).mean_photons if photons is None else photons
    ill = data.illumination if illumination is None else illumination
    if ill is None:
        raise ValueError("no starting probe: the data have no illumination (twin.recon."
                         "reconstruct, or twin.recon.auto.prepare, makes a model)")
    p = np.asarray(ill, dtype=np.complex64)
    if p.ndim != 3 or p.shape[-2:] != (n, n):
        raise TwinInputError(ILLUMINATION, p.shape,
                             f"must be (M, {n}, {n}) for {data.frames.shape[-1]}-pixel "
                             f"frames at upsampling {u}")
    if not np.all(np.isfinite(p)):
        raise TwinInputError(ILLUMINATION, "NaN/inf", "the probe must be finite")
    p = fit_modes(p, modes, xp)
    p = p * np.sqrt(mean_photons / np.sum(np.abs(p) ** 2))
    return xp.asarray(p.astype(np.complex64))
