"""The detector-side step of every engine: the far field's correction from the measured
amplitudes (the modulus constraint, or LSQML's Poisson gradient), with upsampling and a
background in the model.

**Upsampling** (Batey et al. 2014): with binned frames the probe window holds u× more pixels
than a frame; the model intensity is binned u×u before it is compared with the data, and the
amplitude correction of each binned pixel applies to its u² sub-pixels.
"""

from __future__ import annotations

import numpy as np

from twin.core import kernels
from twin.recon.options import Algorithm, NoiseModel, Options


def bin_sum(a, u: int):
    """Sum u×u blocks of the last two axes.

    Parameters
    ----------
    a : ndarray (..., n, n)
        NumPy or CuPy; n a multiple of ``u``.
    u : int
        Block side.

    Returns
    -------
    ndarray (..., n/u, n/u)
        Block sums (``a`` itself when u = 1).
    """
    if u == 1:
        return a
    out = a[..., 0::u, 0::u].copy()
    for i in range(u):
        for j in range(u):
            if i or j:
                out += a[..., i::u, j::u]
    return out


def unbin(a, u: int, xp):
    """Repeat each pixel u×u times (the adjoint of :func:`bin_sum` up to a factor).

    Parameters
    ----------
    a : ndarray (..., m, m)
        NumPy or CuPy.
    u : int
        Repetitions along each of the last two axes.
    xp : module
        ``a``'s array module.

    Returns
    -------
    ndarray (..., u·m, u·m)
        ``a`` itself when u = 1.
    """
    if u == 1:
        return a
    return xp.repeat(xp.repeat(a, u, axis=-2), u, axis=-1)


def far_correction(st, far, amp_meas, opts: Options):
    """Turn far-field waves ``far`` (B, M, n, n) into the far-field correction ΔΨ in place
    (Ψ' − Ψ for the modulus constraint; the Poisson gradient for LSQML) and return the batch's
    cost Σ mask·(√Î − √I)². ``st``: the :class:`~twin.recon.state.State`.

    ΔΨ = Ψ·(ratio − 1)·mask with ratio √I/(√Î + 10⁻⁶) (Gaussian / PIE) or
    (I + 10⁻³)/(Î + 10⁻³) (LSQML with the Poisson noise model), Î = Σ_m |Ψ_m|² binned u×u.
    With a background, :func:`far_correction_bg`.

    Parameters
    ----------
    st : State
        Supplies the array module, mask, upsampling ``u`` and background.
    far : ndarray (B, M, n, n) complex64
        Far fields of every mode, plain FFT order; overwritten with ΔΨ.
    amp_meas : ndarray (B, n/u, n/u) float32
        Measured amplitudes √I, plain FFT order.
    opts : Options
        ``algorithm`` and ``noise_model`` choose the ratio.

    Returns
    -------
    float
        The batch's cost Σ mask·(√Î − √I)².
    """
    xp = st.xp
    poisson = opts.algorithm == Algorithm.LSQML and opts.noise_model == NoiseModel.POISSON
    if st.bg is not None:
        return far_correction_bg(st, far, amp_meas, poisson)
    if (xp is np and kernels.AVAILABLE and far.dtype == np.complex64
            and far.flags.c_contiguous):
        cost = np.empty(len(far))                                       # fused CPU pass
        kernels.modulus_update(far.view(np.float32), np.asarray(amp_meas, np.float32),
                               st.mask_kernel, poisson, st.u, cost)
        return float(cost.sum())
    sq = xp.square(far.view(xp.float32))
    model = (sq[..., 0::2] + sq[..., 1::2]).sum(axis=1)               # (B, n, n) Σ_m |Ψ|²
    model = bin_sum(model, st.u)
    model_amp = xp.sqrt(model)
    diff = model_amp - amp_meas
    if not st.all_valid:
        diff *= st.mask
    cost = float(xp.vdot(diff.ravel(), diff.ravel()))
    if poisson:
        ratio = (amp_meas * amp_meas + 1e-3) / (model + 1e-3)          # I/Î: Poisson ML gradient
    else:
        model_amp += 1e-6
        ratio = xp.divide(amp_meas, model_amp, out=model_amp)          # √I/√Î: Gaussian / PIE
    ratio -= 1                                                          # ΔΨ = Ψ·(ratio − 1)
    if not st.all_valid:
        ratio *= st.mask                                                # unmeasured: no change
    far *= unbin(ratio, st.u, xp)[:, None]
    return cost


def far_correction_bg(st, far, amp_meas, poisson: bool):
    """:func:`far_correction` with a background b: the model intensity Î = Σ_m |Ψ_m|² + b.
    Cost Σ mask·(√Î − √I)²; the Gaussian/PIE update projects onto Σ|Ψ'|² = max(I − b, 0)
    (Ψ' = Ψ·√(max(I − b, 0) / Σ|Ψ|²)); Poisson: ΔΨ = Ψ·(I/Î − 1).

    The ratios are regularised: √(max(I − b, 0)/(Σ|Ψ|² + 10⁻⁶)) and (I + 10⁻³)/(Î + 10⁻³).

    Parameters
    ----------
    st : State
        Supplies the array module, mask, upsampling and background ``bg`` (counts per pixel).
    far : ndarray (B, M, n, n) complex64
        Far fields, plain FFT order; overwritten with ΔΨ.
    amp_meas : ndarray (B, n/u, n/u) float32
        Measured amplitudes √I.
    poisson : bool
        The Poisson gradient instead of the projection.

    Returns
    -------
    float
        The batch's cost.
    """
    xp = st.xp
    sq = xp.square(far.view(xp.float32))
    model = bin_sum((sq[..., 0::2] + sq[..., 1::2]).sum(axis=1), st.u)   # (B, n, n) Σ_m |Ψ|²
    total = model + st.bg
    meas = amp_meas * amp_meas
    diff = (xp.sqrt(total) - amp_meas) * st.mask
    cost = float(xp.vdot(diff.ravel(), diff.ravel()))
    if poisson:
        ratio = (meas + 1e-3) / (total + 1e-3)
    else:
        ratio = xp.sqrt(xp.maximum(meas - st.bg, 0) / (model + 1e-6))
    ratio -= 1
    ratio *= st.mask                                                    # unmeasured: no change
    far *= unbin(ratio.astype(xp.float32), st.u, xp)[:, None]
    return cost
