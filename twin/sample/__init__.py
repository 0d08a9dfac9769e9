"""The sample: materials, phantoms and the dose they absorb.

- :mod:`~twin.sample.materials`: refractive index and absorption of materials (xraylib).
- :mod:`~twin.sample.phantoms`: phantoms on a voxel grid with real materials (the registry
  behind ``sample.phantom``; :func:`~.phantoms.projected_slabs` for a simulation).
- :mod:`~twin.sample.voxels`: the :class:`~.voxels.Phantom` base class, refractive indices
  and the object transmission.
- :mod:`~twin.sample.fibres`: the hollow-fibre bundle (:class:`~.fibres.FibreBundle`).
- :mod:`~twin.sample.circuit`: the layered integrated circuit
  (:class:`~.circuit.IntegratedCircuit`).
- :mod:`~twin.sample.star`: the Siemens star resolution target.
- :mod:`~twin.sample.dose`: absorbed fraction and radiation dose.

The modules are imported on use: ``from twin.sample import phantoms``.
"""

__all__ = ["circuit", "dose", "fibres", "materials", "phantoms", "star", "voxels"]
