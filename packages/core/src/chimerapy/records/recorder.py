"""The Recorder: validates ``save_*`` calls in the caller and writes them in one thread.

Each ``save_*`` call checks its input cheaply, takes ownership of the data (a copy for arrays,
the serialised bytes for JSON and text) and puts it on an unbounded queue; it never waits on
disk. One writer thread per Recorder encodes and writes every record, flushes every
``flush_interval`` seconds and on :meth:`Recorder.close`. Nothing is dropped to keep up: a
growing backlog shows in :meth:`Recorder.stats` and is logged as a warning.

Errors:

* bad input raises :class:`~chimerapy.errors.RecordError` in the caller, naming the record and
  the fix; the record keeps its format and stays usable, and the other records are untouched.
* a failure in the writer thread (encoder, disk) closes that record only and reaches
  ``on_error`` as a ``RecordError`` naming it (with the original exception as ``__cause__``);
  later saves to that record raise ``RecordError``, the other records go on.
"""

from __future__ import annotations

import atexit
import logging
import math
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from chimerapy.errors import RecordError, StateError
from chimerapy.records.array import ArrayFormat
from chimerapy.records.audio import AudioFormat
from chimerapy.records.image import ImageFormat
from chimerapy.records.json_lines import JsonFormat
from chimerapy.records.kind import Accepted, RecordFormat, RecordWriter
from chimerapy.records.naming import check_name, record_error
from chimerapy.records.tabular import TabularFormat
from chimerapy.records.text import TextFormat
from chimerapy.records.video import VideoFormat

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["Recorder"]

logger = logging.getLogger(__name__)

#: The backlog at which the first warning is logged; each later warning waits for it to double.
BACKLOG_WARNING_BYTES = 64 * 1024 * 1024
BACKLOG_WARNING_ITEMS = 10_000
_STOP = object()


@dataclass(eq=False)
class _Record:
    """One record's format and counters; counters are written by one thread each."""

    format: RecordFormat
    queued: int = 0  # caller thread
    rejected: int = 0  # caller thread
    written: int = 0  # writer thread
    dropped: int = 0  # writer thread: items left in the queue when the record failed
    bytes: int = 0  # writer thread, at each flush
    backlog_bytes: int = 0  # both, under the Recorder's lock
    failure: RecordError | None = None  # writer thread
    writer: RecordWriter | None = field(default=None, repr=False)  # writer thread


class Recorder:
    """Records videos, audio, tables, images, JSON and text into one directory.

    Thread-safe: ``save_*`` may be called from any thread. Arrays are copied, so the caller may
    reuse its buffers at once. Use it as a context manager or call :meth:`close`; an unclosed
    Recorder is closed at interpreter exit.

    Args:
        directory: where the files go; created (with its parents) by the first write. A file a
            record would write must not exist yet.
        clock: returns Manager-aligned UNIX seconds; used when a save gets no ``timestamp``.
        on_error: called in the writer thread with a :class:`RecordError` when a record fails
            there; must not block (it may call :meth:`close`, which then returns at once).
            Without it the failure is logged.
        flush_interval: seconds between flushes; a killed process loses about this much, plus
            up to one second of video (the fragment in progress).
    """

    def __init__(
        self,
        directory: Path,
        *,
        clock: Callable[[], float] = time.time,
        on_error: Callable[[RecordError], None] | None = None,
        flush_interval: float = 0.5,
    ) -> None:
        if not flush_interval > 0:
            raise ValueError(f"flush_interval must be positive, got {flush_interval!r}")
        self.directory = Path(directory)
        self._clock = clock
        self._on_error = on_error
        self._flush_interval = float(flush_interval)
        self._lock = threading.Lock()
        self._records: dict[str, _Record] = {}
        self._claimed: dict[str, str] = {}  # casefolded file name -> record name
        self._files: list[Path] = []
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._closing = False
        self._closed = False
        self._backlog_bytes = 0
        self._backlog_items = 0
        self._warn_level = 1.0

    # -- the save_* calls ------------------------------------------------------------------

    def save_video(
        self, name: str, frame: np.ndarray, fps: float, timestamp: float | None = None, *,
        timing: str = "frames",
    ) -> None:
        """Queue one video frame: ``uint8`` ``(H, W, 3)`` BGR or ``(H, W)`` gray; copied.

        Writes ``name.mp4`` and ``name.timestamps.csv`` (see :mod:`chimerapy.records.video`).
        ``timing``: ``"frames"`` (every frame at ``i / fps``), ``"cfr"`` (``fps`` frames per
        second of wall time) or ``"vfr"`` (every frame at its own time).

        Raises:
            RecordError: a frame that is not uint8, or whose shape differs from the record's
                first frame; an fps that changes.
        """
        self._submit(VideoFormat, name, timestamp, frame, fps, timing)

    def save_audio(
        self,
        name: str,
        samples: np.ndarray,
        rate: int,
        channels: int,
        timestamp: float | None = None,
    ) -> None:
        """Queue one block of ``int16`` or ``float32`` samples of shape ``(n,)`` or ``(n, channels)``.

        ``timestamp`` is the aligned time of the block's first sample; without it, the time of
        the call. Writes ``name.wav``, ``name.audio.json`` and ``name.blocks.csv`` (see
        :mod:`chimerapy.records.audio`). Copied.

        Raises:
            RecordError: another dtype or shape, or a rate, channel count or dtype that changes.
        """
        self._submit(AudioFormat, name, timestamp, samples, rate, channels)

    def save_tabular(self, name: str, row: Any, timestamp: float | None = None) -> None:
        """Queue one row (a ``dict``, ``pandas.Series`` or every row of a ``pandas.DataFrame``).

        Writes ``name.csv`` with a first column ``timestamp`` (see
        :mod:`chimerapy.records.tabular`).

        Raises:
            RecordError: columns that differ from the first row's (the message lists the new and
                missing ones), a column named ``timestamp``, or a cell that is not a scalar.
        """
        self._submit(TabularFormat, name, timestamp, row)

    def save_image(self, name: str, image: np.ndarray, timestamp: float | None = None) -> None:
        """Queue one image (``uint8`` gray, BGR or BGRA, or ``uint16`` gray) as the next PNG.

        Writes ``name/0.png``, ``name/1.png``, ... and ``name/timestamps.csv`` (see
        :mod:`chimerapy.records.image`). Copied.
        """
        self._submit(ImageFormat, name, timestamp, image)

    def save_json(self, name: str, obj: Any, timestamp: float | None = None) -> None:
        """Serialise ``obj`` now and queue it as one line of ``name.jsonl``.

        Raises:
            RecordError: an object ``json`` cannot serialise.
        """
        self._submit(JsonFormat, name, timestamp, obj)

    def save_text(self, name: str, text: str, timestamp: float | None = None) -> None:
        """Queue ``text`` to be appended, as given, to ``name.txt``.

        ``name.timestamps.csv`` gets the byte offset and time of each piece (see
        :mod:`chimerapy.records.text`).
        """
        self._submit(TextFormat, name, timestamp, text)

    def save_array(self, name: str, array: np.ndarray, timestamp: float | None = None) -> None:
        """Queue one numpy array (any shape; not ``object`` dtype); copied.

        Writes ``name.000000.npy`` ... (arrays of one dtype and shape stacked) and
        ``name.arrays.csv`` (see :mod:`chimerapy.records.array`).

        Raises:
            RecordError: for something that is not a numpy array, or an ``object`` array.
        """
        self._submit(ArrayFormat, name, timestamp, array)

    def _submit(
        self, kind: type[RecordFormat], name: str, timestamp: float | None, *args: Any
    ) -> None:
        """Validate in the caller, then queue; the only path from a ``save_*`` to the thread."""
        name = check_name(name)
        with self._lock:
            if self._closing:
                raise StateError(
                    f"record {name!r}: the Recorder is closed; save before close() "
                    "or create a new Recorder"
                )
            record = self._records.get(name)
            try:
                when = self._timestamp(name, timestamp)
                if record is None:
                    self._check_new(kind, name)
                    fmt = kind(name)
                    accepted = fmt.accept(*args)
                    record = self._register(fmt)
                else:
                    self._check_usable(record, kind)
                    accepted = record.format.accept(*args)
            except RecordError:
                if record is not None:
                    record.rejected += 1
                raise
            self._enqueue(record, when, accepted)

    def _timestamp(self, name: str, timestamp: float | None) -> float:
        if timestamp is None:
            return float(self._clock())
        try:
            value = float(timestamp)
        except (TypeError, ValueError):
            raise record_error(name, f"timestamp must be a number, got {timestamp!r}") from None
        if not math.isfinite(value):
            raise record_error(name, f"timestamp must be finite, got {timestamp!r}")
        return value

    def _check_new(self, kind: type[RecordFormat], name: str) -> None:
        """A new record's files must clash with no other record's and must not exist yet."""
        for file_name in kind.file_names(name):
            owner = self._claimed.get(file_name.casefold())
            if owner is not None:
                raise record_error(
                    name,
                    f"its file {file_name!r} is also written by record {owner!r}; "
                    "choose another name",
                )
            if (self.directory / file_name).exists():
                raise record_error(
                    name,
                    f"{self.directory / file_name} exists already; a Recorder does not overwrite: "
                    "use a new directory or another name",
                )

    def _register(self, fmt: RecordFormat) -> _Record:
        record = _Record(fmt)
        self._records[fmt.name] = record
        for file_name in fmt.file_names(fmt.name):
            self._claimed[file_name.casefold()] = fmt.name
        return record

    def _check_usable(self, record: _Record, kind: type[RecordFormat]) -> None:
        fmt = record.format
        if type(fmt) is not kind:
            raise fmt.error(
                f"it is a {fmt.kind} record (saved with {fmt.method}); a name holds one kind: "
                f"use another name for the {kind.kind} data"
            )
        if record.failure is not None:
            raise fmt.error(
                f"the record was closed after a writer error ({record.failure}); "
                "save under another name"
            )

    def _enqueue(self, record: _Record, when: float, accepted: Accepted) -> None:
        """Queue one accepted call and warn when the backlog doubles; holds the lock."""
        record.queued += accepted.items
        record.backlog_bytes += accepted.nbytes
        self._backlog_bytes += accepted.nbytes
        self._backlog_items += accepted.items
        self._queue.put((record, when, accepted))
        if self._thread is None:
            self._start()
        level = max(
            self._backlog_bytes / BACKLOG_WARNING_BYTES,
            self._backlog_items / BACKLOG_WARNING_ITEMS,
        )
        if level >= self._warn_level:
            self._warn_level *= 2
            backlog = {
                name: r.queued - r.written - r.dropped
                for name, r in self._records.items()
                if r.queued - r.written - r.dropped
            }
            logger.warning(
                "Recorder %s is falling behind: %d items (%.1f MiB) wait to be written %s; "
                "saving less or smaller data, or a faster disk, would help",
                self.directory,
                self._backlog_items,
                self._backlog_bytes / 2**20,
                backlog,
            )

    def _start(self) -> None:
        self._thread = threading.Thread(
            target=self._run, name=f"chimerapy-recorder:{self.directory.name}", daemon=True
        )
        self._thread.start()
        atexit.register(self.close)

    # -- the writer thread -----------------------------------------------------------------

    def _run(self) -> None:
        next_flush = time.monotonic() + self._flush_interval
        while True:
            try:
                entry = self._queue.get(timeout=max(0.0, next_flush - time.monotonic()))
            except queue.Empty:
                entry = None
            if entry is _STOP:
                break
            if entry is not None:
                self._write(*entry)
            if time.monotonic() >= next_flush:
                self._flush_all()
                next_flush = time.monotonic() + self._flush_interval
        self._flush_all()
        for record in self._snapshot():
            if record.writer is not None and record.failure is None:
                self._guard(record, "closing", record.writer.close)
                self._update_bytes(record)

    def _write(self, record: _Record, when: float, accepted: Accepted) -> None:
        def open_writer() -> None:
            record.writer = record.format.open_writer(self.directory, self._add_file)

        if record.failure is None and record.writer is None:
            self._guard(record, "opening its files", open_writer)
        if record.failure is None and record.writer is not None:
            writer = record.writer
            self._guard(record, "writing", lambda: writer.write(when, accepted.payload))
        with self._lock:
            if record.failure is None:
                record.written += accepted.items
            else:
                record.dropped += accepted.items
            record.backlog_bytes -= accepted.nbytes
            self._backlog_bytes -= accepted.nbytes
            self._backlog_items -= accepted.items
            if self._warn_level > 1 and self._backlog_items < 0.5 * BACKLOG_WARNING_ITEMS and (
                self._backlog_bytes < 0.5 * BACKLOG_WARNING_BYTES
            ):
                self._warn_level = 1.0

    def _snapshot(self) -> list[_Record]:
        with self._lock:
            return list(self._records.values())

    def _flush_all(self) -> None:
        for record in self._snapshot():
            if record.writer is not None and record.failure is None:
                self._guard(record, "flushing", record.writer.flush)
                self._update_bytes(record)

    def _update_bytes(self, record: _Record) -> None:
        if record.writer is not None:
            try:
                record.bytes = record.writer.bytes_on_disk()
            except OSError:
                pass  # a file removed behind our back: keep the last size

    def _guard(self, record: _Record, action: str, call: Callable[[], None]) -> None:
        """Run ``call``; on failure close the record and report a ``RecordError`` naming it."""
        try:
            call()
        except Exception as exc:  # noqa: BLE001 - any writer failure is the record's failure
            error = record.format.error(
                f"{action} failed in {self.directory}: {type(exc).__name__}: {exc}; "
                "this record is closed, the other records go on"
            )
            error.__cause__ = exc
            record.failure = error
            if record.writer is not None:
                try:
                    record.writer.close()
                except Exception:
                    logger.debug("closing failed record %r", record.format.name, exc_info=True)
            self._report(error)

    def _report(self, error: RecordError) -> None:
        if self._on_error is None:
            logger.error("%s", error, exc_info=error.__cause__)
            return
        try:
            self._on_error(error)
        except Exception:
            logger.exception("on_error raised while reporting %s", error)

    def _add_file(self, path: Path) -> None:
        with self._lock:
            self._files.append(path)

    # -- lifecycle and introspection -------------------------------------------------------

    def close(self, timeout: float = 10.0) -> None:
        """Write everything queued, finalise every file and stop the writer thread.

        Blocks until the queue is drained or ``timeout`` seconds passed; then, if the thread is
        still busy, logs a warning and returns (the thread finishes in the background; call
        ``close`` again to wait more). Idempotent; later ``save_*`` calls raise ``StateError``.
        """
        with self._lock:
            if self._closed:
                return
            if not self._closing:
                self._closing = True
                if self._thread is not None:
                    self._queue.put(_STOP)
            thread = self._thread
        if thread is threading.current_thread():
            return  # called from on_error: the thread finishes once the callback returns
        if thread is not None:
            thread.join(timeout)
            if thread.is_alive():
                logger.warning(
                    "Recorder %s: %d items (%.1f MiB) still being written after %.1f s",
                    self.directory,
                    self._backlog_items,
                    self._backlog_bytes / 2**20,
                    timeout,
                )
                return
        with self._lock:
            self._closed = True
        atexit.unregister(self.close)

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` has finished: every file is final."""
        return self._closed

    def stats(self) -> dict[str, dict[str, Any]]:
        """Counters per record name; non-blocking.

        Each value holds ``kind``; ``queued`` and ``written`` items (a DataFrame counts its rows);
        ``bytes`` on disk as of the last flush; ``backlog`` (items waiting); ``backlog_bytes``;
        ``errors`` (calls rejected for bad input, plus 1 if the writer failed); ``dropped``
        (items still queued when the record failed); ``failed`` (the error message or ``None``).
        """
        with self._lock:
            return {
                name: {
                    "kind": record.format.kind,
                    "queued": record.queued,
                    "written": record.written,
                    "bytes": record.bytes,
                    "backlog": record.queued - record.written - record.dropped,
                    "backlog_bytes": record.backlog_bytes,
                    "errors": record.rejected + (record.failure is not None),
                    "dropped": record.dropped,
                    "failed": None if record.failure is None else str(record.failure),
                }
                for name, record in self._records.items()
            }

    def files(self) -> list[Path]:
        """Every file written so far, in the order they were created."""
        with self._lock:
            return list(self._files)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
