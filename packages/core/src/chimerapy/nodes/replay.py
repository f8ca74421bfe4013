"""``core.replay``: plays recorded streams of a session into a live pipeline, original times kept.

Each item of each chosen stream (a video frame, an audio block, a table row, a JSON object, a
text piece, an image, an array) becomes one chunk, sent in the order of the recorded times and
at their recorded pace (or ``speed`` times faster, or as fast as the consumers take them).
Every chunk carries:

=============  ======================================================================
``timestamp``  the item's recorded Manager time, exactly as it was recorded
``stream``     the stream it comes from, ``"node/name"`` (``core.recorder`` files it under that)
=============  ======================================================================

and, by kind, the records the live sources send, so that the nodes downstream work on it as
they do live (``ml.face_detect`` on ``frame``, ``ml.vad`` on ``samples``):

========  ===========================================================================
video     ``frame`` (uint8 BGR, ``"image"`` content), ``frame_index`` (its index in the stream)
image     ``frame`` (``"image"`` content, as saved: gray, BGR, BGRA or uint16 gray)
audio     ``samples`` (``(n, channels)`` as saved), ``rate``, ``channels``, ``sample_index``
tabular   one record per column (cells as written: int, float, bool, str, or None when empty)
json      ``data`` (the object)
text      ``text`` (the piece, as saved)
array     ``array``
========  ===========================================================================

Pacing: the first item goes out when the node starts; item ``i`` then goes out
``(t_i - t_0) / speed`` seconds later. A consumer slower than that delays the items after it
(the edges are lossless by default): their times stay the recorded ones. When every item has
been sent the node idles until it is stopped.
"""

from __future__ import annotations

import heapq
import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ..archive import (
    ArchiveError,
    ArrayStream,
    AudioStream,
    ImageStream,
    JsonStream,
    Stream,
    TabularStream,
    TextStream,
    VideoStream,
    open_session,
)
from ..data_chunk import DataChunk
from ..node.node import Node

__all__ = ["Replay", "choose_streams", "stream_items"]

_IDLE = 0.05  # seconds a finished replay waits per step


class Replay(Node):
    """Plays chosen streams of a recorded session into the pipeline at their recorded pace.

    Args:
        name: the node's name.
        session: the session folder (or its ``meta.json``) on the Worker that runs the node.
        streams: the streams to play, as ``"node/name"`` (or ``"worker/node/name"``); ``None``:
            every stream of the session.
        speed: ``1.0`` plays at the recorded pace, ``2.0`` twice as fast, ``0`` as fast as the
            consumers take the chunks.

    Raises:
        ArchiveError: in ``prep``, for a missing session folder or an unknown stream (the
            message lists the session's streams).
    """

    kind = "source"

    def __init__(
        self,
        name: str = "replay",
        *,
        session: str,
        streams: list[str] | None = None,
        speed: float = 1.0,
    ) -> None:
        super().__init__(name)
        what = f"core.replay {name!r}"
        if not isinstance(session, (str, Path)) or not str(session).strip():
            raise ValueError(f"{what}: session must be the path of a session folder, got {session!r}")
        if streams is not None and (
            isinstance(streams, str) or not all(isinstance(s, str) and s for s in streams)
        ):
            raise ValueError(f"{what}: streams must be a list of 'node/name' strings, got {streams!r}")
        if isinstance(speed, bool) or not isinstance(speed, (int, float)) or not (
            math.isfinite(speed) and speed >= 0
        ):
            raise ValueError(f"{what}: speed must be a number >= 0 (0: as fast as possible), got {speed!r}")
        self.session = str(session)
        self.streams = None if streams is None else list(streams)
        self.speed = float(speed)

    # -- node ------------------------------------------------------------------------------------

    def prep(self) -> None:
        chosen = choose_streams(Path(self.session).expanduser(), self.streams, what=f"core.replay {self.name!r}")
        self._sources: list[tuple[Stream, Iterator[float], Iterator[dict[str, Any]]]] = []
        self._queue: list[tuple[float, int, int, dict[str, Any]]] = []  # (time, stream, n, records)
        self._queued = 0
        for number, stream in enumerate(chosen):
            self._sources.append((stream, iter(stream.times.tolist()), stream_items(stream)))
            self._advance(number)
        self._origin: tuple[float, float] | None = None  # (monotonic, recorded time) of item 0
        self.sent = 0
        self._finished = False
        self.logger.info(
            "replaying %s from %s at %s",
            ", ".join(s.key for s in chosen),
            self.session,
            f"{self.speed:g}x" if self.speed else "full speed",
        )

    def step(self) -> DataChunk | None:
        if not self._queue:
            if not self._finished:
                self._finished = True
                self.logger.info("replay finished: %d chunks sent", self.sent)
            time.sleep(_IDLE)
            return None
        recorded = self._queue[0][0]
        if self.speed and not self._wait_until(recorded):
            return None
        recorded, number, _, records = heapq.heappop(self._queue)
        self._advance(number)
        stream = self._sources[number][0]
        chunk = DataChunk()
        for name, value in records.items():
            chunk.add(name, value, "image" if name == "frame" else "other")
        chunk.add("timestamp", recorded)
        chunk.add("stream", stream.key)
        self.sent += 1
        return chunk

    def teardown(self) -> None:
        for _, _, items in getattr(self, "_sources", []):
            close = getattr(items, "close", None)
            if close is not None:
                close()
        self._sources = []

    # -- internals -------------------------------------------------------------------------------

    def _advance(self, number: int) -> None:
        """Queue the next item of stream ``number``, if it has one."""
        _, times, items = self._sources[number]
        recorded, records = next(times, None), next(items, None)
        if recorded is not None and records is not None:
            self._queued += 1  # ties (equal times in one stream) keep the file order
            heapq.heappush(self._queue, (float(recorded), number, self._queued, records))

    def _wait_until(self, recorded: float) -> bool:
        """Sleep until the item recorded at ``recorded`` is due; False if told to stop first."""
        if self._origin is None:
            self._origin = (time.monotonic(), recorded)
        due = self._origin[0] + (recorded - self._origin[1]) / self.speed
        while (remaining := due - time.monotonic()) > 0:
            if not self.running:
                return False
            time.sleep(min(remaining, _IDLE))
        return True


def choose_streams(session: Path, wanted: list[str] | None, *, what: str = "core.replay") -> list[Stream]:
    """The streams of the session folder ``session`` named in ``wanted`` (``None``: all).

    Raises:
        ArchiveError: for a missing folder, an empty session or an unknown stream name.
    """
    try:
        streams = open_session(session).streams
    except ArchiveError as error:
        raise ArchiveError(f"{what}: {error} (on the Worker that runs the node)") from None
    if not streams:
        raise ArchiveError(f"{what}: {session} holds no recorded stream")
    if wanted is None:
        return streams
    by_name: dict[str, Stream] = {}
    for stream in streams:
        by_name.setdefault(stream.key, stream)
        by_name[f"{stream.worker}/{stream.key}"] = stream
    unknown = [name for name in wanted if name not in by_name]
    if unknown:
        listing = ", ".join(sorted({s.key for s in streams}))
        raise ArchiveError(f"{what}: {session} has no stream {', '.join(map(repr, unknown))}; its streams: {listing}")
    return list({id(by_name[name]): by_name[name] for name in wanted}.values())


def stream_items(stream: Stream) -> Iterator[dict[str, Any]]:
    """The records of every item of ``stream``, in order (see the module docstring)."""
    if isinstance(stream, VideoStream):
        for index, frame in stream.decoded_frames():
            yield {"frame": frame.to_ndarray(format="bgr24"), "frame_index": index}
    elif isinstance(stream, AudioStream):
        samples = stream.samples()
        starts = [int(i) for i in samples.block_index]
        for number, start in enumerate(starts):
            stop = starts[number + 1] if number + 1 < len(starts) else len(samples.data)
            yield {"samples": np.array(samples.data[start:stop]), "rate": samples.rate,
                   "channels": stream.channels, "sample_index": start}
    else:
        for index in range(stream.count):
            if isinstance(stream, ImageStream):
                yield {"frame": stream.image(index)}
            elif isinstance(stream, TabularStream):
                yield {column: cell for column, cell in stream.value(index).items() if column != "timestamp"}
            elif isinstance(stream, JsonStream):
                yield {"data": stream.value(index)}
            elif isinstance(stream, TextStream):
                yield {"text": stream.value(index)}
            elif isinstance(stream, ArrayStream):
                yield {"array": stream.array(index)}
