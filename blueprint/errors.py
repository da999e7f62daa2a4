"""Errors that reach the user.

:class:`BadInputError` is raised for anything wrong with what the user gave us: a
missing path, a malformed file, an unknown config, a parameter out of range
(:mod:`blueprint.validation` words those). The CLI prints it on one line and exits
with code 2; every other exception is an internal error (exit code 1).
"""

from __future__ import annotations

import os


class BadInputError(ValueError):
    """Bad user input, located as precisely as we can: file, line and field.

    ``field`` names a setting by its config or parameter name (``max_depth``), or a
    field of a file's records (``$.commit.record.text``). A ``ValueError``, so code that
    guards a call with ``except ValueError`` keeps working.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | os.PathLike[str] | None = None,
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.path = None if path is None else os.fspath(path)
        self.line = line
        self.field = field

    def __str__(self) -> str:
        where = ""
        if self.path is not None:
            where = self.path if self.line is None else f"{self.path}:{self.line}"
            where += ": "
        field = f"field '{self.field}': " if self.field else ""
        return f"{where}{field}{self.message}"
