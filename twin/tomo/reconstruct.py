"""Tomographic reconstruction in the geometry of CONTRACTS §5 (scikit-image's ``radon``).

Sinograms are (n_angles, rows, cols) with angles in degrees; for every row z,
``data[:, z, :] == radon(volume[z], theta, circle=True).T``. Volumes are (rows, cols, cols).

* :func:`fbp` — filtered back-projection by direct Fourier gridding ("gridrec", Dowd et al.
  1999; Marone & Stampanoni 2012): each projection's 1D FFT is a central slice of the slice's
  2D FFT (Fourier slice theorem); the polar samples, weighted by the ramp |ρ|·Δρ·Δθ and a
  filter window, are spread onto an oversampled Cartesian grid with a Kaiser–Bessel kernel (one
  sparse matrix for all rows), inverse-FFT'd, cropped and divided by the kernel's transform.
* :func:`sart`, :func:`sirt` — algebraic reconstruction with the projector pair of
  :class:`twin.operators.radon.Radon` (one cached sparse matrix, applied to all slices at once;
  NumPy/SciPy or CuPy/cuSPARSE); :func:`tv_reconstruct` adds total-variation regularisation
  (gradient descent on a smoothed TV), for few angles and missing wedges.
* :func:`choose_algorithm` — FBP when the angles sample the object fully, else TV with
  positivity (what ``twin tomo`` does by default, and says so).
* :func:`find_center` — the rotation axis by the sharpest reconstruction of a slice.
* :func:`align_projections` — joint iterative reconstruction and reprojection (Gürsoy et al.,
  Sci. Rep. 7, 11818, 2017): reconstruct, reproject, register each projection to its
  reprojection, shift, repeat; registration (:func:`register_stack`) and shifting
  (:func:`shift_stack`) are batched over the stack, and the shifts are reported in the
  volume's gauge (its free translation removed).

tomopy (gridrec) and astra-toolbox (FBP_CUDA/FBP on the CPU) are used by :func:`fbp` when
``backend`` names them and they are importable.

This module gathers the public names; they live in :mod:`twin.tomo.fbp`,
:mod:`twin.tomo.iterative`, :mod:`twin.tomo.align` and :mod:`twin.tomo.choice`.
"""


from __future__ import annotations

from twin.tomo.align import (_gauge_modes, _remove_gauge, align_projections,  # noqa: F401
                             find_center, register_stack, shift_stack)
from twin.tomo.choice import AlgorithmChoice, choose_algorithm
from twin.tomo.fbp import FILTERS, _gridding_matrix, fbp  # noqa: F401
from twin.tomo.iterative import reproject, sart, sirt, tv_reconstruct

__all__ = ["FILTERS", "AlgorithmChoice", "align_projections", "choose_algorithm", "fbp",
           "find_center", "register_stack", "reproject", "sart", "shift_stack", "sirt",
           "tv_reconstruct"]
