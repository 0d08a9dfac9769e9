"""The scenario schema: one typed source of truth for every parameter of an experiment.

A scenario is a TOML file whose tables mirror the path of the photons: ``[sample]``,
``[beam]``, ``[optics]``, ``[scan]``, ``[detector]``, ``[tomography]``, ``[reconstruction]``,
``[resolution]``, then ``[beamtime]`` (overheads and feasibility limits) and an optional
``[sweep]``. Units are in the field names. Unknown keys, wrong types, NaN/inf and out-of-range
values are rejected when the file is loaded, with the field's dotted path in the message.

Modules, one per group of tables, in the order of the file:

* :mod:`twin.scenario.sample` - ``[sample]``: :class:`Sample` and its phantoms'
  :class:`FibreBundle`, :class:`IntegratedCircuit`, :class:`SiemensStar`;
* :mod:`twin.scenario.acquisition` - :class:`Beam`, :class:`Optics`, :class:`Scan`,
  :class:`Detector`;
* :mod:`twin.scenario.processing` - :class:`Tomography` (with :func:`crowther_projections`),
  :class:`Reconstruction`, :class:`Resolution`, :class:`Simulation`, :class:`Run`,
  :class:`Beamtime`;
* :mod:`twin.scenario.model` - :class:`Scenario`, the whole file and the checks across its
  tables, and :func:`field_path_exists` for dotted paths;
* :mod:`twin.scenario.loading` - :func:`load` and :func:`loads`, refusing bad input with
  :func:`format_validation_error`'s paragraph.

Beneath them :mod:`twin.scenario._base` holds the strict base model and the shared value types
(:data:`PosFloat`, :data:`MaterialName`, ...). Every name is re-exported here:
``from twin.scenario import Scenario``.
"""

from pydantic import BaseModel  # noqa: F401  (``twin.scenario.BaseModel``: tests walk the tables)

from twin.scenario._base import (Fraction, MaterialName, MediumName, NonNegFloat, PosFloat,
                                 format_validation_error)
from twin.scenario.acquisition import Beam, Detector, Optics, Scan
from twin.scenario.loading import load, loads
from twin.scenario.model import Scenario, SweepValue, field_path_exists
from twin.scenario.processing import (Beamtime, Reconstruction, Resolution, Run, Simulation,
                                      Tomography, crowther_projections)
from twin.scenario.sample import FibreBundle, IntegratedCircuit, Sample, SiemensStar

__all__ = [
    "Beam", "Beamtime", "Detector", "FibreBundle", "Fraction", "IntegratedCircuit",
    "MaterialName", "MediumName", "NonNegFloat", "Optics", "PosFloat", "Reconstruction",
    "Resolution", "Run", "Sample", "Scan", "Scenario", "SiemensStar", "Simulation",
    "SweepValue", "Tomography", "crowther_projections", "field_path_exists",
    "format_validation_error", "load", "loads",
]
