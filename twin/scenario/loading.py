"""Reading a scenario: :func:`load` (a TOML file) and :func:`loads` (TOML text), each
validated into a :class:`~twin.scenario.Scenario` or refused with a :class:`TwinInputError`
that names every bad field."""

from __future__ import annotations

import tomllib
from pathlib import Path

from pydantic import ValidationError

from twin.core.errors import TwinInputError
from twin.scenario._base import format_validation_error
from twin.scenario.model import Scenario

__all__ = ["load", "loads", "format_validation_error"]


def load(path: str | Path) -> Scenario:
    """Read and validate a scenario TOML file.

    Parameters
    ----------
    path : str or pathlib.Path
        The scenario file.

    Returns
    -------
    Scenario
        The validated scenario.

    Raises
    ------
    TwinInputError
        A missing or unreadable file, malformed TOML or any invalid field (each named by its
        dotted path, with its value and what is allowed).
    """
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise TwinInputError("scenario", str(path), "the file does not exist") from None
    except (IsADirectoryError, PermissionError, UnicodeDecodeError) as exc:
        raise TwinInputError("scenario", str(path), f"cannot be read as text ({exc})") from None
    return loads(text, source=str(path))


def loads(text: str, source: str = "<scenario>") -> Scenario:
    """Validate a scenario from TOML text; see :func:`load`.

    Parameters
    ----------
    text : str
        The scenario as TOML.
    source : str
        Where the text came from, for the error messages.

    Returns
    -------
    Scenario
        The validated scenario.

    Raises
    ------
    TwinInputError
        Malformed TOML or any invalid field.
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise TwinInputError("scenario", source, f"is not valid TOML ({exc})") from None
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        raise TwinInputError("scenario", source, "invalid",
                             message=format_validation_error(exc, source)) from None
