"""A recorded stream: one record of one node, with a Manager-aligned time per item.

Every kind (video, audio, tabular, image, json, text) shares this interface: ``times`` (one
float64 Manager time per frame, block, row, image, object or piece), ``count``, ``start``,
``end``, ``value(i)`` and ``value_at(t)``. Files are read on first use and cached.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from functools import cached_property
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from chimerapy.archive.errors import ArchiveError
from chimerapy.archive.files import CsvTable, read_csv

__all__ = ["Stream"]


class Stream(ABC):
    """One recorded stream of a session.

    Attributes:
        worker: the Worker that recorded it ("" when the folder has no Worker level).
        node: the node that saved it.
        name: the record name given to ``save_*``.
        folder: the node's folder in the session.
        notes: what the loader had to work around (torn tails, unfinished transfers, missing
            files), filled as files are read.
    """

    kind: ClassVar[str]

    def __init__(self, *, worker: str, node: str, name: str, folder: Path, files: dict[str, Path]) -> None:
        self.worker = worker
        self.node = node
        self.name = name
        self.folder = Path(folder)
        self._files = files
        self.notes: list[str] = []

    @property
    def key(self) -> str:
        """``"node/name"``: how :meth:`Session.stream` and :meth:`Session.at` name it."""
        return f"{self.node}/{self.name}"

    def file(self, role: str) -> Path | None:
        """The path of one of the stream's files (a ``.part`` when the transfer never finished)."""
        return self._files.get(role)

    @property
    def files(self) -> list[Path]:
        """Every file of the stream that exists."""
        return list(self._files.values())

    @cached_property
    def times(self) -> np.ndarray:
        """Manager-aligned times (UNIX seconds, float64, read-only), one per item."""
        values = np.ascontiguousarray(self._load_times(), dtype=np.float64)
        values.setflags(write=False)
        return values

    def _read_csv(self, key: str) -> CsvTable:
        """The stream's CSV file ``key``, noting a torn last line; the file must exist."""
        path = self.file(key)
        assert path is not None, f"{self.key} has no {key} file"
        table = read_csv(path)
        self._note_torn(path, table.torn)
        return table

    def _note_torn(self, path: Path, torn: bool) -> None:
        """Note (once) that ``path`` ended in a torn line, which the reader dropped."""
        note = f"{path.name} ends in a torn line (dropped)"
        if torn and note not in self.notes:
            self.notes.append(note)

    @abstractmethod
    def _load_times(self) -> np.ndarray:
        """Read the times from disk (called once)."""

    @property
    def count(self) -> int:
        """How many items (frames, blocks, rows, images, objects, pieces) the stream holds."""
        return len(self.times)

    @property
    def start(self) -> float:
        """The first item's time (NaN for an empty stream)."""
        return float(self.times[0]) if self.count else math.nan

    @property
    def end(self) -> float:
        """The last item's time (NaN for an empty stream)."""
        return float(self.times[-1]) if self.count else math.nan

    def index_at(self, t: float) -> int:
        """The index of the latest item saved at or before Manager time ``t``; -1 if none."""
        return int(np.searchsorted(self.times, t, side="right")) - 1

    @abstractmethod
    def value(self, index: int) -> Any:
        """Item ``index`` (negative counts from the end)."""

    def value_at(self, t: float) -> Any:
        """The latest item at Manager time ``t``.

        Raises:
            ArchiveError: nothing was saved at or before ``t``.
        """
        return self.value(self._require_index(self.index_at(t), t))

    def _require_index(self, index: int, t: float) -> int:
        if index < 0:
            raise ArchiveError(
                f"stream {self.key!r}: nothing saved at or before t={t!r}; "
                f"its first item is at {self.start!r}"
            )
        return index

    def _check_index(self, index: int) -> int:
        count = self.count
        if not -count <= index < count:
            raise ArchiveError(
                f"stream {self.key!r} has {count} items; index {index} is out of range"
            )
        return index % count

    def close(self) -> None:
        """Release open files (video decoders); the stream stays usable."""

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} {self.worker}/{self.key} {self.kind} count={self.count}>"
        )
