"""Acquisition: how the beam is moved over the sample and how the frames are counted.

- :mod:`~twin.acquisition.scan`: fly and step scan trajectories (:func:`~.scan.snake_fly_scan`,
  :func:`~.scan.step_scan`), several beams' offsets, the PandA box's position capture
  (:func:`~.scan.panda_capture`).
- :mod:`~twin.acquisition.detector`: photon-counting detector presets (``detectors.toml``), the
  closed forms of counting and the detector response; re-exports the counting model.
- :mod:`~twin.acquisition.counting`: the detector model of a simulation
  (:func:`~.counting.count_frames`: response, Poisson arrivals, dead time photon by photon,
  binning, counter depth and its 8-bit float code).
- :mod:`~twin.acquisition.pcap`: the rows a PandA box's position capture streams (the
  input of the emulator in :mod:`twin.services.panda`).

The modules are imported on use: ``from twin.acquisition import detector``.
"""

__all__ = ["counting", "detector", "pcap", "scan"]
