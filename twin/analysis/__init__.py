"""Analysis: what a reconstruction is worth, and what an acquisition costs.

- :mod:`~twin.analysis.metrics`: image quality against a ground truth (PCC, SSIM, MS-SSIM),
  segmentation (Otsu, Dice); it re-exports the names of the next two.
- :mod:`~twin.analysis.alignment`: what phase retrieval cannot fix, removed before any metric
  (sub-pixel shift, phase offset and ramp), phase unwrapping.
- :mod:`~twin.analysis.resolution`: FRC/FSC with the half-bit and 1/7 thresholds and their
  crossings; the resolution of a Siemens star.
- :mod:`~twin.analysis.biop`: the FIRE number as the BIOP ImageJ FRC plugin computes it.
- :mod:`~twin.analysis.truth`: a reconstruction compared with the ground truth a simulation
  kept, on the scanned region.
- :mod:`~twin.analysis.score`: ``twin score``: anyone's reconstruction against the twin's truth.
- :mod:`~twin.analysis.registration`: where the truth's scanned region lies in a
  reconstruction (the ambiguities, phase-gradient cross-correlation), for ``score``.
- :mod:`~twin.analysis.costs`: core-hours and GPU-hours of simulating and reconstructing.
- :mod:`~twin.analysis.laws`: resolution against fluence, d(F): the simulated calibration's
  law, its fit, turnover and cliff.
- :mod:`~twin.analysis.volume`: the 3D resolution law read from simulated sub-volumes.

The modules are imported on use: ``from twin.analysis import metrics``.
"""

__all__ = ["alignment", "biop", "costs", "laws", "metrics", "registration", "resolution", "score",
           "truth", "volume"]
