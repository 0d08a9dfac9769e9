"""Errors that the command line reports as bad input (exit status 2)."""

from __future__ import annotations


class TwinInputError(ValueError):
    """Invalid user input: a scenario field, a file or an option.

    The message names the offending field or path, the value and what is allowed; ``message``
    replaces the composed text where the caller has already written one.
    """

    def __init__(self, field: str, value: object, allowed: str, message: str | None = None):
        self.field = field
        self.value = value
        self.allowed = allowed
        super().__init__(message or f"{field}: got {value!r}; {allowed}")
