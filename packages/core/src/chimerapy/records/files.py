"""Small file primitives shared by the writers: an appending CSV file and an atomic write.

Everything here runs in the Recorder's writer thread and blocks on disk.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

__all__ = ["CsvFile", "write_atomically"]


class CsvFile:
    """A CSV file opened for appending rows under a fixed header.

    Rows sit in a user-space buffer until :meth:`flush`; after a flush they survive the death of
    the process (not a power loss: nothing is fsynced). Floats are written with ``repr`` so they
    round-trip exactly.

    Args:
        path: the file to create; an existing file is replaced.
        header: the column names, written as the first line.
    """

    def __init__(self, path: Path, header: Sequence[str]) -> None:
        self.path = path
        self._file = open(path, "w", newline="", encoding="utf-8")  # noqa: SIM115 - owned
        self._writer = csv.writer(self._file, lineterminator="\n")
        self._writer.writerow(header)
        self.rows = 0

    def append(self, row: Iterable[Any]) -> None:
        """Append one row (buffered)."""
        self._writer.writerow(row)
        self.rows += 1

    def flush(self) -> None:
        """Hand the buffered rows to the operating system."""
        self._file.flush()

    def close(self) -> None:
        """Flush and close; idempotent."""
        if not self._file.closed:
            self._file.close()


def write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename.

    A reader, or a process killed half-way, sees either the old file or the new one, never a
    truncated one.
    """
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as file:
        file.write(data)
    os.replace(tmp, path)
