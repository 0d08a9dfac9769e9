"""Tomography: from aligned projections to a volume (CONTRACTS §5 geometry).

- :mod:`~twin.tomo.reconstruct`: the public names of the reconstruction in one place (FBP,
  SIRT, SART, TV, alignment, the choice of algorithm); callers import this module.
- :mod:`~twin.tomo.fbp`: filtered back-projection by Fourier gridding (:func:`~.fbp.fbp`).
- :mod:`~twin.tomo.iterative`: SIRT, SART and TV-regularised reconstruction
  (:func:`~.iterative.tv_reconstruct`), reprojection.
- :mod:`~twin.tomo.align`: projection alignment (:func:`~.align.align_projections`), batched
  registration and shifting, the rotation axis.
- :mod:`~twin.tomo.choice`: FBP or TV (:func:`~.choice.choose_algorithm`).
- :mod:`~twin.tomo.angles`: reduced-angle tomography, quality against the number of angles.

The modules are imported on use: ``from twin.tomo import reconstruct``.
"""

__all__ = ["align", "angles", "choice", "fbp", "iterative", "reconstruct"]
