"""twin: a digital twin of fast X-ray ptychography and ptycho-tomography.

The package follows the photons: :mod:`twin.materials` and the sample, :mod:`twin.optics`
(beam and zone plate), :mod:`twin.scan`, :mod:`twin.detector`, :mod:`twin.dose`, then
:mod:`twin.forecast` which joins them into an acquisition plan. :mod:`twin.scenario` is the
typed schema of a scenario file and :mod:`twin.sweep` evaluates grids of scenarios on Dask.
"""

__version__ = "0.1.0"
