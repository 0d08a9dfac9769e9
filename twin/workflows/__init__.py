"""Workflows: the library's stages joined into what the command line runs.

- :mod:`~twin.workflows.simulate`: ``twin simulate`` (scenario → CXI, :func:`~.simulate.plan`,
  :func:`~.simulate.frames`, :func:`~.simulate.simulate`).
- :mod:`~twin.workflows.experiment`: a 3D experiment, one Dask task per projection.
- :mod:`~twin.workflows.forecast`: time, dose, data volume, count rates and resolution of a
  scenario (``twin forecast``).
- :mod:`~twin.workflows.simres`, :mod:`~twin.workflows.calibrate`: the resolution the twin
  measures on its own simulated data, and the explicit calibration step.
- :mod:`~twin.workflows.sweep`, :mod:`~twin.workflows.planner`: parameter sweeps and inverse
  planning against a beamtime budget.
- :mod:`~twin.workflows.ptychotomo`: the ptycho-tomography chain.
- :mod:`~twin.workflows.pipeline`, :mod:`~twin.workflows.rundir`: ``twin run``'s declared
  stages over a run directory.
- :mod:`~twin.workflows.panda`: the rows ``twin panda`` streams.
- :mod:`~twin.workflows.scenario_tools`: scenario templates, checks and the schema's docs.
- :mod:`~twin.workflows.cluster`: Dask, a local cluster or a scheduler's address.

The modules are imported on use: ``from twin.workflows import simulate``.
"""

__all__ = ["calibrate", "cluster", "experiment", "forecast", "panda", "pipeline", "planner",
           "ptychotomo", "rundir", "scenario_tools", "simres", "simulate", "sweep"]
