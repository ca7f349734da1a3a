"""Errors raised by the data layer.

Each one says what went wrong and how to fix it: which file failed its checksum and which hash
was expected, or every way of providing a dataset that could not be found.
"""

from __future__ import annotations

from pathlib import Path


class DatasetNotFoundError(RuntimeError):
    """No source of a dataset is available (not on disk, and it could not be downloaded)."""


class ChecksumError(RuntimeError):
    """A data file exists but its content does not match the published checksum.

    Attributes:
        path: the file that failed.
        expected: the MD5 it should have.
        actual: the MD5 it has.
    """

    def __init__(self, path: str | Path, expected: str, actual: str, hint: str = "") -> None:
        self.path = Path(path)
        self.expected = expected
        self.actual = actual
        message = (
            f"checksum mismatch for {self.path}: expected MD5 {expected}, got {actual}. "
            "The file is corrupt, truncated or a different version; delete it and provide it again."
        )
        super().__init__(f"{message} {hint}".strip())
