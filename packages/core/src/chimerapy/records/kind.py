"""The two halves of a record kind: a caller-side format and a writer-thread writer.

Each kind of record (video, audio, tabular, image, JSON, text) is one module holding a
:class:`RecordFormat` subclass and a :class:`RecordWriter` subclass:

* the **format** lives in the calling thread. Its ``accept`` validates one ``save_*`` call
  cheaply, locks the record's format in on the first valid call (frame shape, sample rate,
  columns ...) and returns an :class:`Accepted` payload that the caller no longer owns. It never
  touches the disk and leaves its state unchanged when it raises.
* the **writer** lives in the Recorder's single writer thread. It owns the record's files, is
  created on the record's first item, and blocks on disk and encoders as long as it needs.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from chimerapy.errors import RecordError
from chimerapy.private import make_folders
from chimerapy.records.naming import record_error

__all__ = ["Accepted", "RecordFormat", "RecordWriter"]


@dataclass(frozen=True)
class Accepted:
    """One validated call, ready for the writer thread.

    Attributes:
        payload: the data the writer needs; owned by the Recorder from now on (copied if needed).
        items: how many items the call counts for in the stats (rows of a DataFrame, else 1).
        nbytes: approximate memory the payload holds while it waits in the queue.
    """

    payload: Any
    items: int = 1
    nbytes: int = 0


class RecordFormat(ABC):
    """Caller-side half of a record kind: validation and the record's locked-in format.

    Args:
        name: the record's name (already checked by :func:`~chimerapy.records.naming.check_name`).
    """

    #: The kind's name as the user sees it, e.g. ``"video"``.
    kind: ClassVar[str]
    #: The ``Recorder`` method that saves this kind, for error messages.
    method: ClassVar[str]

    def __init__(self, name: str) -> None:
        self.name = name

    @staticmethod
    @abstractmethod
    def file_names(name: str) -> tuple[str, ...]:
        """The paths, relative to the Recorder's directory, that a record ``name`` writes."""

    @abstractmethod
    def accept(self, *args: Any) -> Accepted:
        """Validate one call's arguments and take ownership of its data.

        Raises:
            RecordError: naming the record and the fix; the format is left unchanged.
        """

    @abstractmethod
    def open_writer(self, directory: Path, on_file: Callable[[Path], None]) -> RecordWriter:
        """Create the writer; called once, in the writer thread, before the first item."""

    def error(self, message: str) -> RecordError:
        """A :class:`RecordError` naming this record."""
        return record_error(self.name, message)


class RecordWriter(ABC):
    """Writer-thread half of a record kind: owns and writes the record's files.

    Only the Recorder's writer thread calls it. Subclasses create files through :meth:`_created`
    so that :meth:`chimerapy.records.Recorder.files` lists them.

    Args:
        directory: the Recorder's directory (created if missing).
        name: the record's name.
        on_file: called with each file's path when the writer creates it.
    """

    def __init__(self, directory: Path, name: str, on_file: Callable[[Path], None]) -> None:
        make_folders(directory)  # private (0700) at every level it creates
        self.directory = directory
        self.name = name
        self._on_file = on_file
        self._paths: list[Path] = []

    def _created(self, path: Path) -> Path:
        """Register a file the writer has just created; returns ``path``."""
        self._paths.append(path)
        self._on_file(path)
        return path

    @abstractmethod
    def write(self, timestamp: float, payload: Any) -> None:
        """Write one accepted payload saved at aligned time ``timestamp`` (may stay buffered)."""

    @abstractmethod
    def flush(self) -> None:
        """Make everything written so far readable from disk, even if the process is killed."""

    @abstractmethod
    def close(self) -> None:
        """Finalise the files; called once, also after a failure (then best effort)."""

    def bytes_on_disk(self) -> int:
        """Size of the record's files as of the last flush."""
        return sum(path.stat().st_size for path in self._paths if path.exists())
