"""Errors a user can cause. The CLI prints them on one line and exits with status 2."""

from __future__ import annotations


class DeftuneError(Exception):
    """A user-facing error that names where the problem is: file, line (or row/record) and field."""

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None, field: str | None = None):
        self.message, self.file, self.line, self.field = message, file, line, field
        super().__init__(self.__str__())

    def __str__(self) -> str:
        where = ":".join(str(p) for p in (self.file, self.line, self.field) if p is not None)
        return f"{where}: {self.message}" if where else self.message


class DataError(DeftuneError):
    """A dataset file or record is malformed."""


class ConfigError(DeftuneError):
    """The configuration or a command-line override is invalid."""


class ModelError(DeftuneError):
    """A model spec cannot be resolved or loaded."""


class RunError(DeftuneError):
    """A run directory cannot be used as asked (e.g. it would overwrite earlier results)."""
