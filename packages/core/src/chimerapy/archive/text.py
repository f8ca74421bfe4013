"""Text streams: ``name.txt`` and ``name.timestamps.csv`` (byte offset and time of each piece)."""

from __future__ import annotations

from functools import cached_property
from typing import Any

import numpy as np

from chimerapy.archive.files import require_pandas, time_column
from chimerapy.archive.stream import Stream

__all__ = ["TextStream"]


class TextStream(Stream):
    """Recorded text: ``texts()`` lists each saved string, ``text()`` is the whole file."""

    kind = "text"

    @cached_property
    def _pieces(self) -> tuple[np.ndarray, list[str]]:
        index, text_path = self.file("timestamps"), self.file("txt")
        data = text_path.read_bytes() if text_path is not None else b""
        if index is None:
            self.notes.append("no timestamps file: the text cannot be placed in time")
            return np.empty(0), []
        table = self._read_csv("timestamps")
        times = time_column(table, "timestamp")
        offsets = [int(row[0]) for row in table.rows[: len(times)]]
        keep = sum(1 for offset in offsets if offset < len(data))
        if keep < len(offsets):
            self.notes.append(f"{len(offsets) - keep} pieces never reached {self.name}.txt; left out")
        bounds = offsets[:keep] + [len(data)]
        pieces = [
            data[bounds[i] : bounds[i + 1]].decode("utf-8", errors="replace") for i in range(keep)
        ]
        return times[:keep], pieces

    def _load_times(self) -> np.ndarray:
        return self._pieces[0]

    def texts(self) -> list[str]:
        """Each saved string, in order."""
        return list(self._pieces[1])

    def text(self) -> str:
        """The whole text."""
        return "".join(self._pieces[1])

    def value(self, index: int) -> str:
        return self._pieces[1][self._check_index(index)]

    def table(self) -> Any:
        """A ``pandas.DataFrame`` with ``timestamp`` and ``text`` columns."""
        pandas = require_pandas()
        times, pieces = self._pieces
        return pandas.DataFrame({"timestamp": times, "text": pieces})
