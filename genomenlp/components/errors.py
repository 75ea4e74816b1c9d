"""User-facing errors: one line that names the file, the record and what is wrong."""

from __future__ import annotations


class InputError(Exception):
    """Bad user input (a file, a record or an argument), reported as one line without a traceback.

    Args:
        source: The file, URL or argument the problem is in.
        problem: What is wrong and, where possible, how to fix it.
        record: The record (id or number) or line the problem is at, when known.
    """

    def __init__(self, source: str, problem: str, record: str | None = None) -> None:
        self.source = str(source)
        self.problem = problem
        self.record = record
        where = f"{self.source}: {record}" if record else self.source
        super().__init__(f"{where}: {problem}")


def describe_validation_error(error) -> str:
    """The first problem of a pydantic ``ValidationError`` as ``field: message``."""
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "settings"
    message = first["msg"].removeprefix("Value error, ")
    return f"{where}: {message}"
