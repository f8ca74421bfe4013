"""Array streams: ``name.arrays.csv`` (file, row and time of each array) and its ``.npy`` stacks."""

from __future__ import annotations

from functools import cached_property
from typing import Any

import numpy as np

from chimerapy.archive.errors import ArchiveError
from chimerapy.archive.files import CsvTable, time_column
from chimerapy.archive.stream import Stream

__all__ = ["ArrayStream"]


class ArrayStream(Stream):
    """Recorded numpy arrays: ``array(i)`` as saved, ``array_at(t)``; stacks are memory-mapped."""

    kind = "array"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._stack: tuple[str, np.ndarray] | None = None  # the last stack file opened

    @cached_property
    def _table(self) -> CsvTable:
        return self._read_csv("index")

    def _load_times(self) -> np.ndarray:
        return time_column(self._table)

    def array(self, index: int) -> np.ndarray:
        """Array ``index``, as saved (a copy).

        Raises:
            ArchiveError: its ``.npy`` file is missing or holds fewer arrays than indexed.
        """
        file, row = self._table.rows[self._check_index(index)][:2]
        if self._stack is None or self._stack[0] != file:
            path = self.folder / file
            if not path.exists() and path.with_name(file + ".part").exists():
                path = path.with_name(file + ".part")
            try:
                self._stack = (file, np.load(path, mmap_mode="r"))
            except (OSError, ValueError) as error:
                raise ArchiveError(f"stream {self.key!r}: {path} cannot be read: {error}") from error
        stack = self._stack[1]
        if int(row) >= len(stack):
            raise ArchiveError(f"stream {self.key!r}: array {index} never reached {file}")
        return np.array(stack[int(row)])

    def array_at(self, t: float) -> np.ndarray:
        """The latest array saved at or before Manager time ``t``."""
        return self.array(self._require_index(self.index_at(t), t))

    def value(self, index: int) -> np.ndarray:
        return self.array(index)

    def close(self) -> None:
        self._stack = None
