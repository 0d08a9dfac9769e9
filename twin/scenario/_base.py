"""The strict base of every scenario table and the value types the tables share.

:class:`_Strict` rejects unknown keys, NaN/inf, quoted numbers and (frozen) later changes;
:data:`MaterialName` and :data:`MediumName` accept only materials twin knows;
:func:`format_validation_error` turns a pydantic error into one paragraph naming each bad
field by its dotted path.
"""

from __future__ import annotations

import types
import typing
from typing import Annotated, Any

from pydantic import (AfterValidator, BaseModel, ConfigDict, Field, ValidationError,
                      field_validator)

from twin.sample import materials as _materials

__all__ = ["PosFloat", "NonNegFloat", "Fraction", "MaterialName", "MediumName",
           "format_validation_error"]

PosFloat = Annotated[float, Field(gt=0)]
NonNegFloat = Annotated[float, Field(ge=0)]
Fraction = Annotated[float, Field(gt=0, le=1)]


def _text_for_number(annotation, value) -> bool:
    """Whether ``value`` is text (or a bool) where ``annotation`` wants numbers: pydantic's lax
    mode would read the string "8.0" as 8.0, and a scenario should say what it means."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is Annotated:
        return _text_for_number(args[0], value)
    if origin in (typing.Union, types.UnionType):
        arms = [a for a in args if a is not type(None)]
        return bool(arms) and all(_text_for_number(a, value) for a in arms)
    if origin in (tuple, list) and isinstance(value, (list, tuple)):
        items = [a for a in args if a is not Ellipsis] or [Any]
        return any(_text_for_number(items[min(i, len(items) - 1)], v)
                   for i, v in enumerate(value))
    return annotation in (int, float) and isinstance(value, (str, bool))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False,
                              validate_default=True, use_attribute_docstrings=True)

    @field_validator("*", mode="before")
    @classmethod
    def _numbers_are_numbers(cls, value, info):
        if _text_for_number(cls.model_fields[info.field_name].annotation, value):
            raise ValueError(f"not a number: write numbers without quotes (e.g. "
                             f"{info.field_name} = 8.0, not \"8.0\")")
        return value


def _known_material(name: str) -> str:
    if name.strip().lower() not in _materials.library() and not _materials.is_compound(name):
        raise ValueError(
            "allowed: a chemical formula such as 'C6H10O2', an xraylib NIST compound name, or "
            f"one of the named materials {sorted({m.name for m in _materials.library().values()})}")
    return name


MaterialName = Annotated[str, AfterValidator(_known_material)]


def _known_medium(name: str) -> str:
    if name.strip().lower() == "vacuum":
        return name
    try:
        return _known_material(name)
    except ValueError as exc:
        raise ValueError(f'{exc}, or "vacuum"') from None


MediumName = Annotated[str, AfterValidator(_known_medium)]
"""A material name, or "vacuum" (δ = β = 0)."""


def _same_medium(a: str, b: str) -> bool:
    """Whether two medium names are the same material (names, aliases and case ignored)."""
    a, b = a.strip().lower(), b.strip().lower()
    if a == b:
        return True
    lib = _materials.library()
    return a in lib and b in lib and lib[a] == lib[b]


def _drop_defaults(data: dict, model, names) -> dict:
    """``data`` less the fields ``names`` of ``model`` whose value is their default: fields
    added after calibrations were shipped leave the scenario's dump (and so the calibration
    keys of twin.workflows.simres) unchanged until a scenario sets them."""
    for name in names:
        if name in data and getattr(model, name) == type(model).model_fields[name].default:
            del data[name]
    return data


def format_validation_error(exc: ValidationError, source: str) -> str:
    """One paragraph naming each bad field (dotted path), its value and what is allowed.

    Parameters
    ----------
    exc : pydantic.ValidationError
        The error of validating a scenario (or a table of one).
    source : str
        Where the scenario came from (a file name, ``"<scenario>"``): the paragraph's start.

    Returns
    -------
    str
        ``"<source>: invalid scenario: <problem>; <problem>."``, one problem per error: an
        unknown key, a missing field, a bad value (``field 'beam.energy_kev' = -1: ...``) or a
        table's check across its fields.
    """
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            parts.append(f"unknown key '{loc}' (not a scenario field; check the spelling)")
        elif err["type"] == "missing":
            parts.append(f"missing required field '{loc}'")
        elif loc and not isinstance(err.get("input"), dict):
            parts.append(f"field '{loc}' = {err.get('input')!r}: {msg}")
        elif loc:
            parts.append(f"table [{loc}]: {msg}")
        else:
            parts.append(msg)
    return f"{source}: invalid scenario: " + "; ".join(parts) + "."
