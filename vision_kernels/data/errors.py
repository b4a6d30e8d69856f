"""The one error a dataset raises for bad data, so callers can tell bad files from bugs."""

from __future__ import annotations

from pathlib import Path


class DataError(ValueError):
    """A dataset file that cannot be used: missing, unreadable, malformed, or inconsistent with
    the files next to it. The message names the file and the problem; `path` is that file (or
    None when no single file is to blame). Any other exception out of a loader is a bug."""

    def __init__(self, message: str, path: str | Path | None = None) -> None:
        super().__init__(message)
        self.path: Path | None = None if path is None else Path(path)

    def __reduce__(self) -> tuple:
        # The default pickles only args (the message): keep the path through DataLoader workers.
        return (type(self), (str(self), self.path))
