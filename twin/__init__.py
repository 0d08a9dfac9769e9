"""twin: a digital twin of fast X-ray ptychography and ptycho-tomography.

The package follows the photons, one subpackage per stage, each usable from Python with plain
arrays in and out: :mod:`twin.sample` (materials, phantoms, dose) → :mod:`twin.beam` (zone
plate, probe) → :mod:`twin.acquisition` (scan, position capture, detector) → :mod:`twin.io`
(CXI and other files) → :mod:`twin.recon` (ptychographic reconstruction) → :mod:`twin.tomo`
(tomography) → :mod:`twin.analysis` (metrics, costs). Beneath them :mod:`twin.core` (constants,
errors, array backend, kernels) and :mod:`twin.operators` (propagation, ptychography, Radon,
each with its adjoint).

:mod:`twin.scenario` is the typed schema of a scenario file and :mod:`twin.geometry` the
scenario resolved once into SI units (:class:`twin.geometry.Geometry`). Above them
:mod:`twin.workflows` joins the stages (simulate, forecast, sweeps, planning, the
ptycho-tomography chain, ``twin run``), :mod:`twin.services` serves them to other programs
(the PandA box emulator) and :mod:`twin.report` draws the figures and the report;
:mod:`twin.cli` is the command line. No module imports a layer above its own
(``tests/test_layers.py``).
"""

__version__ = "0.1.0"
