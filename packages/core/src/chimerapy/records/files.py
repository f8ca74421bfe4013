"""File primitives shared by the writers: whole-row appends and an atomic write.

Everything here runs in the Recorder's writer thread and blocks on disk. Appends are kept in
memory until ``flush`` and then handed to the operating system in one ``write``, so a process
killed at any moment leaves whole rows and lines behind (never a number cut in half); a flush
that a full disk cuts short is undone back to the last whole flush. Nothing
is fsynced: the files survive the death of the process, not a power loss.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

__all__ = ["AppendFile", "CsvFile", "write_atomically"]


class AppendFile:
    """A binary file that grows by whole pieces written at :meth:`flush`.

    Args:
        path: the file to create; an existing file is replaced.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o600)
        self._pending: list[bytes] = []
        #: Bytes appended so far, flushed or not.
        self.size = 0
        self._durable = 0  # the file's length after the last complete flush

    def append(self, data: bytes) -> None:
        """Queue ``data`` for the next flush (no I/O)."""
        self._pending.append(data)
        self.size += len(data)

    def flush(self) -> None:
        """Write every pending piece in one system call (more only if the OS writes short).

        If the disk refuses part of it (full), the file is cut back to its last whole piece
        (the pieces before this flush: never a row cut mid-line) and the error is raised.
        """
        if not self._pending:
            return
        view = memoryview(b"".join(self._pending))
        self._pending.clear()
        try:
            while view:
                view = view[os.write(self._fd, view) :]
        except OSError:
            os.ftruncate(self._fd, self._durable)  # shrinking needs no space
            raise
        self._durable = os.lseek(self._fd, 0, os.SEEK_END)

    def close(self) -> None:
        """Flush and close; idempotent."""
        if self._fd >= 0:
            try:
                self.flush()
            finally:
                os.close(self._fd)
                self._fd = -1


class CsvFile:
    """A CSV file (UTF-8) under a fixed header that grows by whole rows at :meth:`flush`.

    Floats are written with ``repr`` so they round-trip exactly.

    Args:
        path: the file to create; an existing file is replaced.
        header: the column names, written as the first line.
    """

    def __init__(self, path: Path, header: Sequence[str]) -> None:
        self.path = path
        self._file = AppendFile(path)
        self._text = io.StringIO()
        self._writer = csv.writer(self._text, lineterminator="\n")
        self.rows = -1
        self.append(header)

    def append(self, row: Iterable[Any]) -> None:
        """Add one row (in memory until :meth:`flush`)."""
        self._writer.writerow(row)
        self.rows += 1

    def flush(self) -> None:
        """Write the rows added since the last flush."""
        text = self._text.getvalue()
        if text:
            self._file.append(text.encode("utf-8"))
            self._text.seek(0)
            self._text.truncate()
        self._file.flush()

    def close(self) -> None:
        """Flush and close; idempotent."""
        self.flush()
        self._file.close()


def write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename.

    A reader, or a process killed half-way, sees either the old file or the new one, never a
    truncated one; a write that fails (a full disk) leaves no temporary file behind.
    """
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open(tmp, "wb") as file:
            file.write(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)  # a full disk must not leave a half-written temporary file
        raise
