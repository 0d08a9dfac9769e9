"""Workflows: the library's stages joined into what the command line runs.

- :mod:`~twin.workflows.simulate`: ``twin simulate`` (scenario → CXI, :func:`~.simulate.plan`,
  :func:`~.simulate.frames`, :func:`~.simulate.simulate`), from
  :mod:`~twin.workflows.simplan` (a scenario's plan: grids, geometry, probes, trajectory,
  sample) and :mod:`~twin.workflows.simframes` (the detector frames of a plan, block by block).
- :mod:`~twin.workflows.experiment`: a 3D experiment, one Dask task per projection;
  :mod:`~twin.workflows.experiment_recon`: its master file read, its projections reconstructed
  into a stack.
- :mod:`~twin.workflows.forecast`: time, dose, data volume, count rates and resolution of a
  scenario (``twin forecast``), from :mod:`~twin.workflows.forecast_params` (a scenario as
  typed columns of SI numbers, :class:`~.forecast_params.ForecastInputs`) and
  :mod:`~twin.workflows.forecast_resolution` (the resolution terms, vectorised),
  :mod:`~twin.workflows.forecast_words` (what limits them, in words).
- :mod:`~twin.workflows.simres`, :mod:`~twin.workflows.calibrate`: the resolution the twin
  measures on its own simulated data, and the explicit calibration step;
  :mod:`~twin.workflows.patch`: the patch of the scan a measurement simulates;
  :mod:`~twin.workflows.simvol`: the 3D resolution measured on a simulated sub-volume, from
  :mod:`~twin.workflows.simvol_steps` (its steps, one projection or one volume at a time) and
  :mod:`~twin.workflows.simvol_score` (its scores: shells, along and across the axis, cones).
- :mod:`~twin.workflows.sweep`, :mod:`~twin.workflows.planner`: parameter sweeps and inverse
  planning against a beamtime budget; :mod:`~twin.workflows.sweep_plots`: a sweep's plots.
- :mod:`~twin.workflows.ptychotomo`: the ptycho-tomography chain.
- :mod:`~twin.workflows.pipeline`, :mod:`~twin.workflows.rundir`: ``twin run``'s declared
  stages over a run directory.
- :mod:`~twin.workflows.panda`: the rows ``twin panda`` streams.
- :mod:`~twin.workflows.scenario_tools`: scenario templates, checks and the schema's docs.
- :mod:`~twin.workflows.cluster`: Dask, a local cluster or a scheduler's address.

The modules are imported on use: ``from twin.workflows import simulate``.
"""

__all__ = ["calibrate", "cluster", "experiment", "experiment_recon", "forecast",
           "forecast_params", "forecast_resolution", "forecast_words", "panda", "patch",
           "pipeline", "planner", "ptychotomo", "rundir", "scenario_tools", "simframes",
           "simplan", "simres", "simulate", "simvol", "simvol_score", "simvol_steps", "sweep",
           "sweep_plots"]
