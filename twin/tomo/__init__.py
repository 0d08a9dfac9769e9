"""Tomography: from aligned projections to a volume (CONTRACTS §5 geometry).

- :mod:`~twin.tomo.reconstruct`: FBP, SIRT, SART and TV-regularised reconstruction
  (:func:`~.reconstruct.fbp`, :func:`~.reconstruct.tv_reconstruct`), the choice between them
  (:func:`~.reconstruct.choose_algorithm`), projection alignment
  (:func:`~.reconstruct.align_projections`).
- :mod:`~twin.tomo.angles`: reduced-angle tomography, quality against the number of angles.

The modules are imported on use: ``from twin.tomo import reconstruct``.
"""

__all__ = ["angles", "reconstruct"]
