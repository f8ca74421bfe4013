"""A recorded session opened for analysis: its streams, ``meta.json``, clocks and log."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from chimerapy.archive.clock_offsets import ClockSeries, clock_series
from chimerapy.archive.discover import find_streams
from chimerapy.archive.errors import ArchiveError
from chimerapy.archive.session_log import LogRecord, read_log
from chimerapy.archive.stream import Stream

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["Sample", "Session", "open_session"]


@dataclass(frozen=True)
class Sample:
    """The latest item of a stream at some time: its index, its time and its value."""

    stream: Stream
    index: int
    time: float
    value: Any


def open_session(path: str | Path) -> Session:
    """Open the session folder ``path`` (or its ``meta.json``) for reading.

    Cheap: files are read when a stream's times or values are first asked for. Opens sessions
    cut short by a crash (torn files, no stop time, unfinished ``.part`` transfers) and those
    of every earlier version of ChimeraPy; what had to be worked around is in ``notes`` (of
    the session and of each stream).

    Raises:
        ArchiveError: ``path`` is not a folder.
    """
    folder = Path(path)
    if folder.name == "meta.json":
        folder = folder.parent
    if not folder.is_dir():
        raise ArchiveError(f"{folder} is not a session folder: pass <logdir>/<session>")
    return Session(folder)


class Session:
    """A session folder (see :func:`open_session`).

    Attributes:
        path: the folder.
        meta: ``meta.json`` as a dict ({} when missing or unreadable).
        streams: every recorded stream, by Worker, node and name.
        notes: what the loader had to work around at the session level.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.notes: list[str] = []
        self.meta = self._read_meta()
        self.streams: list[Stream] = find_streams(self.path)

    def _read_meta(self) -> dict[str, Any]:
        for candidate in (self.path / "meta.json", self.path / "meta.json.tmp", self.path / "meta.json.part"):
            if not candidate.exists():
                continue
            try:
                meta = json.loads(candidate.read_text(encoding="utf-8"))
            except (OSError, ValueError, RecursionError) as error:
                self.notes.append(f"{candidate.name} is unreadable ({error})")
                continue
            if candidate.name != "meta.json":
                self.notes.append(f"meta.json is missing; read {candidate.name} instead")
            if isinstance(meta, dict):
                return meta
        self.notes.append("no readable meta.json: times come from the streams alone")
        return {}

    @property
    def id(self) -> str:
        """The session's id (its folder name unless meta.json says otherwise)."""
        return str(self.meta.get("session") or self.path.name)

    @property
    def workers(self) -> list[str]:
        """Worker names, from meta.json and the folders."""
        named = set(self.meta.get("workers") or {}) | {s.worker for s in self.streams if s.worker}
        return sorted(named)

    @property
    def start(self) -> float:
        """When the nodes were started (Manager time); the first stream time if meta.json lacks it."""
        value = self.meta.get("start_time")
        if isinstance(value, (int, float)):
            return float(value)
        starts = [s.start for s in self.streams if s.count]
        return min(starts) if starts else math.nan

    @property
    def end(self) -> float:
        """When the nodes were stopped; the last stream time for a session cut short."""
        value = self.meta.get("stop_time")
        if isinstance(value, (int, float)):
            return float(value)
        ends = [s.end for s in self.streams if s.count]
        return max(ends) if ends else math.nan

    @property
    def complete(self) -> bool:
        """Whether meta.json says the session stopped (a crash leaves no stop time)."""
        return isinstance(self.meta.get("stop_time"), (int, float))

    def stream(self, node: str, name: str | None = None, *, worker: str | None = None) -> Stream:
        """The stream ``name`` of ``node`` (``stream("node/name")`` also works).

        Raises:
            ArchiveError: no such stream (the message lists the streams there are).
        """
        if name is None:
            node, _, name = node.partition("/")
        found = [s for s in self.streams if s.node == node and s.name == name
                 and (worker is None or s.worker == worker)]
        if len(found) == 1:
            return found[0]
        known = ", ".join(s.key for s in self.streams) or "none"
        if not found:
            raise ArchiveError(f"session {self.id} has no stream {node}/{name}; it has: {known}")
        raise ArchiveError(f"{node}/{name} was recorded by several Workers; pass worker=")

    @cached_property
    def clock_offsets(self) -> dict[str, ClockSeries]:
        """Each Worker's clock offset series (see :mod:`chimerapy.archive.clock_offsets`)."""
        return clock_series(self.meta)

    def log(self) -> list[LogRecord]:
        """The records of ``chimerapy.log`` with Manager times."""
        day_of = self.meta.get("created") or self.meta.get("start_time")
        return read_log(self.path / "chimerapy.log", float(day_of) if day_of else None)

    def at(self, t: float, *, values: bool = True) -> dict[str, Sample | None]:
        """The latest item of every stream at Manager time ``t``, by ``"node/name"``.

        A stream with nothing saved yet at ``t`` maps to None. ``values=False`` skips reading
        the values (frames, images) and gives only indices and times.
        """
        result: dict[str, Sample | None] = {}
        for stream in self.streams:
            index = stream.index_at(t)
            if index < 0:
                result[stream.key] = None
                continue
            value = stream.value(index) if values else None
            result[stream.key] = Sample(stream, index, float(stream.times[index]), value)
        return result

    def align(self, streams: list[str | Stream], *, times: Any = None, rate: float | None = None) -> Any:
        """Put numeric streams on one time base (an as-of join): a ``pandas.DataFrame``.

        Each row is a time of the base; each column holds the latest value of one numeric
        column of one stream at that time (NaN before its first item). Columns are named
        ``node/name/column`` (tables and JSON fields), ``node/name/ch<k>`` (audio samples).

        Args:
            streams: the streams, as objects or ``"node/name"``.
            times: the time base (Manager times); default: a grid at ``rate`` Hz over the
                session, or the first stream's own times when no rate is given.
            rate: the grid's rate in Hz.
        """
        from chimerapy.archive.align import align_streams

        chosen = [s if isinstance(s, Stream) else self.stream(s) for s in streams]
        if times is None and rate is not None:
            times = np.arange(self.start, self.end, 1.0 / rate)
        return align_streams(chosen, times)

    def close(self) -> None:
        """Close every stream's open files."""
        for stream in self.streams:
            stream.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Session {self.path} streams={len(self.streams)}>"
