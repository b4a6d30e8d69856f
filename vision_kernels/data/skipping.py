"""Dropping the unusable items of a dataset up front, with a record of what was dropped and why."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch.utils.data import Dataset

from vision_kernels.data.errors import DataError


class SkipBad(Dataset):
    """The items of a map-style `dataset` that load, found once at construction.

    Each index is validated by `check(index)` if given, else by `dataset.check(index)` if the
    dataset has one, else by loading `dataset[index]`. A check returns None (good) or a problem
    string; a DataError raised by any of them also means bad data. Any other exception propagates:
    it is a bug, not a bad file, and skipping it would hide it.

    `skipped` lists (file, problem) for the dropped items; the file is the DataError's path, else
    `dataset.source(index)` when the dataset has it, else "index <i>". Other attributes
    (`classes`, `collate_fn`, ...) are forwarded to the wrapped dataset."""

    def __init__(self, dataset: Any, check: Callable[[int], str | None] | None = None) -> None:
        self.dataset = dataset
        if check is None:
            check = getattr(dataset, "check", None)
        self.indices: list[int] = []
        self.skipped: list[tuple[str, str]] = []
        for index in range(len(dataset)):
            path = None
            try:
                problem = check(index) if check is not None else self._load(index)
            except DataError as error:
                problem, path = str(error), error.path
            if problem is None:
                self.indices.append(index)
            else:
                self.skipped.append((self._file(index, path), str(problem)))

    def _load(self, index: int) -> None:
        self.dataset[index]
        return None

    def _file(self, index: int, path: Any) -> str:
        if path is not None:
            return str(path)
        source = getattr(self.dataset, "source", None)
        return str(source(index)) if source is not None else f"index {index}"

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> Any:
        return self.dataset[self.indices[index]]

    def check(self, index: int) -> str | None:
        """The wrapped dataset's check of the index-th kept item (so SkipBad can be wrapped again)."""
        inner = getattr(self.dataset, "check", None)
        if inner is not None:
            return inner(self.indices[index])
        try:
            self[index]
        except DataError as error:
            return str(error)
        return None

    def source(self, index: int) -> str:
        """The file of the index-th kept item, as the wrapped dataset names it."""
        return self._file(self.indices[index], None)

    def __getattr__(self, name: str) -> Any:
        # Only called for names not found normally; guard the ones unpickling looks up before
        # __dict__ is filled, which would otherwise recurse.
        if name.startswith("__") or name == "dataset":
            raise AttributeError(name)
        return getattr(self.dataset, name)
