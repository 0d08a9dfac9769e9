"""The beam: zone-plate optics and the illumination they make.

- :mod:`~twin.beam.optics`: closed forms of a Fresnel zone plate (focal length, depth of
  focus, beam diameter at a defocus) for the forecast and the probe model.
- :mod:`~twin.beam.probe`: the zone plate's probe (:func:`~.probe.zone_plate_probe`), its
  partially coherent modes (:func:`~.probe.probe_modes`) and coded apertures for several beams.

The modules are imported on use: ``from twin.beam import probe``.
"""

__all__ = ["optics", "probe"]
