"""Errors the CLI turns into one clear line and an exit code."""

from __future__ import annotations


class LabError(Exception):
    """A problem the user can fix; printed as one line without a traceback."""

    exit_code = 2

    def __init__(self, message: str, exit_code: int | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code
