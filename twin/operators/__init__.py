"""Operators: the physics of propagation and measurement, each with its adjoint.

- :mod:`~twin.operators.propagation`: free-space (angular-spectrum, Fresnel) propagation and
  the centred far-field transform, ``fwd`` and ``adj``.
- :mod:`~twin.operators.multislice`: multislice propagation through a thick object.
- :mod:`~twin.operators.ptychography`: the far-field ptychography operator with probe modes
  (:class:`~.ptychography.FarFieldPtychography`), the forward model of every engine.
- :mod:`~twin.operators.windows`: its object side, probe windows on the object grid
  (:class:`~.windows.ObjectWindows`: positions, patches and their adjoint).
- :mod:`~twin.operators.farfield`: the detector-side forward model on a fine grid
  (:class:`~.farfield.FineFarField`) that the simulation runs.
- :mod:`~twin.operators.radon`: parallel-beam projection and back-projection
  (:class:`~.radon.Radon`).

The modules are imported on use: ``from twin.operators import ptychography``.
"""

__all__ = ["farfield", "multislice", "propagation", "ptychography", "radon", "windows"]
