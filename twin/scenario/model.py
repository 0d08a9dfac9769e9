"""The whole scenario (:class:`Scenario`: its tables, the checks across them, the
``[sweep]``) and its fields named by dotted path (:func:`field_path_exists`)."""

from __future__ import annotations

import functools
from typing import Annotated, Any

from pydantic import (BaseModel, Field, TypeAdapter, ValidationError, field_validator,
                      model_validator)

from twin.core.errors import TwinInputError
from twin.scenario._base import _Strict, _text_for_number, format_validation_error
from twin.scenario.acquisition import Beam, Detector, Optics, Scan
from twin.scenario.processing import (Beamtime, Reconstruction, Resolution, Run, Simulation,
                                      Tomography)
from twin.scenario.sample import Sample

__all__ = ["Scenario", "SweepValue", "field_path_exists"]

SweepValue = float | int | str | bool


class Scenario(_Strict):
    name: str = "scenario"
    """Name of the scenario (reports, file names)."""
    description: str = ""
    """One line on what the scenario is."""
    seed: Annotated[int, Field(ge=0)] = 0
    """Random seed: same scenario and seed give the same bytes."""
    sample: Sample
    beam: Beam
    optics: Optics
    scan: Scan
    detector: Detector
    tomography: Tomography = Tomography()
    reconstruction: Reconstruction = Reconstruction()
    resolution: Resolution = Resolution()
    run: Run = Run()
    simulation: Simulation = Simulation()
    beamtime: Beamtime = Beamtime()
    sweep: dict[str, Annotated[list[SweepValue], Field(min_length=1)]] = {}
    """Grid of field values to sweep: dotted field path = list of values."""

    @field_validator("sweep")
    @classmethod
    def _sweep_paths(cls, value):
        for path in value:
            if path.startswith("sweep") or not _path_exists(path):
                raise ValueError(f"sweep key {path!r} is not a scenario field; use a dotted "
                                 f"path such as 'beam.flux_photons_per_s'")
            annotation, adapter = _field_adapter(path)
            for v in value[path]:                  # each value against its field's own schema
                problem = ("is not a number" if _text_for_number(annotation, v) else None)
                if problem is None:
                    try:
                        adapter.validate_python(v)
                    except ValidationError as exc:
                        problem = "; ".join(e["msg"].removeprefix("Value error, ")
                                            for e in exc.errors())
                if problem:
                    raise ValueError(f"sweep value {v!r} of {path!r}: {problem} (the value "
                                     f"must be valid for {path} itself)")
        return value

    @model_validator(mode="after")
    def _detector_can_do_it(self):
        det = self.detector.resolved()
        if self.scan.frame_rate_hz > det.max_frame_rate_hz:
            raise ValueError(
                f"scan.frame_rate_hz = {self.scan.frame_rate_hz:g} exceeds the "
                f"{det.preset} {det.mode} mode's maximum of {det.max_frame_rate_hz:g} Hz")
        if det.readout_dead_time_s > 0 and self.scan.exposure_s is not None:
            longest = 1.0 / self.scan.frame_rate_hz - det.readout_dead_time_s
            if self.scan.exposure_s > longest:
                raise ValueError(
                    f"scan.exposure_s = {self.scan.exposure_s:g} leaves no time for the "
                    f"{det.readout_dead_time_s:g} s readout gap of the "
                    f"{det.preset} {det.mode} mode; at most {longest:g} s at this frame rate")
        if self.exposure_s <= 0:
            raise ValueError("the frame period is shorter than the detector's readout time")
        return self

    @property
    def exposure_s(self) -> float:
        if self.scan.exposure_s is not None:
            return self.scan.exposure_s
        det = self.detector.resolved()
        dead = det.readout_dead_time_s     # the mode's duty cycle (detectors.toml)
        return 1.0 / self.scan.frame_rate_hz - dead

    @property
    def is_3d(self) -> bool:
        return self.tomography.n_projections != 0

    def with_values(self, values: dict[str, Any], keep_sweep: bool = False) -> "Scenario":
        """A new, validated scenario with dotted-path fields replaced.

        Parameters
        ----------
        values : dict of str to value
            New values by dotted path (``{"beam.flux_photons_per_s": 1e9}``).
        keep_sweep : bool
            Keep the ``[sweep]`` table (default: removed).

        Returns
        -------
        Scenario
            The scenario with those values, validated again as a whole.

        Raises
        ------
        TwinInputError
            A value the field (or a check across fields) refuses.
        """
        data = self.model_dump(exclude_unset=True)  # a fresh dict: safe to modify
        if not keep_sweep:
            data.pop("sweep", None)
        for path, v in values.items():
            node = data
            parts = path.split(".")
            for p in parts[:-1]:
                node = node.setdefault(p, {})
            node[parts[-1]] = v
        try:
            return Scenario.model_validate(data)
        except ValidationError as exc:
            where = ", ".join(f"{k} = {v!r}" for k, v in values.items())
            raise TwinInputError("scenario", values, "invalid",
                                 message=format_validation_error(exc, f"with {where}")) from None


def field_path_exists(path: str) -> bool:
    """Whether ``path`` names a scenario field that holds a value (not a table).

    Parameters
    ----------
    path : str
        Dotted path, as in ``[sweep]``: ``"beam.flux_photons_per_s"``.

    Returns
    -------
    bool
        True for a value field; False for a table, an unknown name or a path through a value.
    """
    return _path_exists(path)


@functools.lru_cache(maxsize=None)
def _field_adapter(path: str) -> tuple[Any, TypeAdapter]:
    """(annotation, validator) of the scenario field at a dotted path: its type and its
    constraints (bounds, allowed values), without the checks across fields."""
    model: Any = Scenario
    parts = path.split(".")
    for part in parts[:-1]:
        model = model.model_fields[part].annotation
    field = model.model_fields[parts[-1]]
    typ = (Annotated[(field.annotation, *field.metadata)] if field.metadata
           else field.annotation)
    return field.annotation, TypeAdapter(typ)


def _path_exists(path: str) -> bool:
    model: Any = Scenario
    for part in path.split("."):
        fields = getattr(model, "model_fields", None)
        if fields is None or part not in fields:
            return False
        ann = fields[part].annotation
        model = ann if isinstance(ann, type) and issubclass(ann, BaseModel) else None
    return model is None
