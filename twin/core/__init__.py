"""Core: what every layer above uses and that knows nothing of the experiment's stages.

- :mod:`~twin.core.constants`: physical constants (CODATA 2018) and the wavelength of a
  photon energy.
- :mod:`~twin.core.errors`: :class:`~.errors.TwinInputError`, bad input (exit status 2).
- :mod:`~twin.core.formatting`: labels and units for people (tables, reports, command line).
- :mod:`~twin.core.xp`: the array backend, NumPy or CuPy, and its FFTs.
- :mod:`~twin.core.scatter`: gather and scatter-add on flat indices.
- :mod:`~twin.core.kernels`, :mod:`~twin.core.simkernels`: fused numba CPU kernels of the
  reconstruction and of the simulation's forward model.

The modules are imported on use: ``from twin.core.xp import get_xp``.
"""

__all__ = ["constants", "errors", "formatting", "kernels", "scatter", "simkernels", "xp"]
