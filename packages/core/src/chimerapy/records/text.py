"""Text records: a text file appended as given, plus where each piece starts.

Files of a record ``name``:

* ``name.txt``: every saved string, UTF-8, concatenated exactly as given (no newline is added:
  include ``"\\n"`` to write lines).
* ``name.timestamps.csv``: ``byte_offset,timestamp``, one row per save: the byte offset in
  ``name.txt`` at which that string starts, and its aligned time. The piece ``i`` is the bytes
  from its offset to the next row's offset (or the end of the file).

This module also holds :class:`AppendWriter`, the writer that appends encoded bytes to one file,
which JSON records share.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from chimerapy.records.files import AppendFile, CsvFile
from chimerapy.records.kind import Accepted, RecordFormat, RecordWriter

__all__ = ["AppendWriter", "TextFormat"]


class TextFormat(RecordFormat):
    """Checks and encodes strings in the caller."""

    kind = "text"
    method = "save_text"

    @staticmethod
    def file_names(name: str) -> tuple[str, ...]:
        return (f"{name}.txt", f"{name}.timestamps.csv")

    def accept(self, text: Any) -> Accepted:
        """Check ``text``; returns its UTF-8 bytes."""
        if not isinstance(text, str):
            raise self.error(
                f"text must be a str, not {type(text).__name__}; decode bytes first "
                "(data.decode('utf-8')) or use save_json for other objects"
            )
        try:
            data = text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise self.error(f"the text cannot be encoded as UTF-8 ({exc})") from exc
        return Accepted(data, nbytes=len(data))

    def open_writer(self, directory: Path, on_file: Callable[[Path], None]) -> AppendWriter:
        return AppendWriter(
            directory / f"{self.name}.txt",
            self.name,
            on_file,
            index=directory / f"{self.name}.timestamps.csv",
        )


class AppendWriter(RecordWriter):
    """Appends bytes to one file, optionally indexing each piece's offset and timestamp.

    Args:
        path: the file to create and append to.
        name: the record's name.
        on_file: called with each file's path when it is created.
        frame: turns ``(timestamp, payload)`` into the bytes to append; by default the payload.
        index: if given, a CSV ``byte_offset,timestamp`` with one row per write.
    """

    def __init__(
        self,
        path: Path,
        name: str,
        on_file: Callable[[Path], None],
        frame: Callable[[float, bytes], bytes] | None = None,
        *,
        index: Path | None = None,
    ) -> None:
        super().__init__(path.parent, name, on_file)
        self._file = AppendFile(self._created(path))
        self._frame = frame
        self._index = CsvFile(self._created(index), ("byte_offset", "timestamp")) if index else None

    def write(self, timestamp: float, payload: Any) -> None:
        data = self._frame(timestamp, payload) if self._frame else payload
        if self._index is not None:
            self._index.append((self._file.size, timestamp))
        self._file.append(data)

    def flush(self) -> None:
        self._file.flush()
        if self._index is not None:
            self._index.flush()

    def close(self) -> None:
        try:
            self._file.close()
        finally:
            if self._index is not None:
                self._index.close()
