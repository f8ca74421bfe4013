"""``core.recorder``: records every record of every input into the session archive, by content.

Each input chunk is recorded under a *label*: its ``stream`` record when it holds a string (as
``core.replay`` sends: ``"node/name"``, written with ``.`` for ``/``), else the name of the node
that sent it. Each of its records goes, by what it holds, to (``L`` the label, ``R`` the record):

======================================================  ====================================================
record                                                  recorded as
======================================================  ====================================================
``"image"`` content, uint8 ``(H, W)`` or ``(H, W, 3)``  video ``L.R.mp4`` (``image_format="png"``: PNGs)
other ``"image"`` content (BGRA, uint16 gray)           PNG images ``L.R/``
``samples`` array with an int ``rate`` in the chunk     audio ``L.R.wav`` (int16 or float32 samples)
any other numpy array                                   array stacks ``L.R.000000.npy`` + ``L.R.arrays.csv``
numbers, bools, ``None``, numpy scalars                 one row of the table ``L.csv`` per chunk
strings                                                 text ``L.R.txt`` (pieces indexed, as sent)
dicts, lists, tuples                                    JSON lines ``L.R.jsonl``
bytes                                                   array stacks of uint8
======================================================  ====================================================

Every item keeps the time of the chunk it came from, the producer's time, not the recorder's:
the chunk's ``timestamp`` record when it holds a number (the capture time sources send, and
the original time ``core.replay`` sends), else the time the producer sent the chunk. The
``timestamp`` and ``stream`` records themselves are not recorded again.

The table of a label keeps the columns of its first chunk: a later chunk that lacks one leaves
its cell empty; a scalar record that appears later goes to its own table ``L.R.csv`` (one
column, ``value``). A record that cannot be recorded (an object JSON cannot hold, a video frame
whose size changed) is skipped with one warning per record, and counted; the others go on.
"""

from __future__ import annotations

import math
import re
from typing import Any, Literal

import numpy as np

from ..data_chunk import DataChunk
from ..errors import RecordError
from ..node.node import Node

__all__ = ["StreamRecorder", "chunk_time", "label_of"]

ImageFormat = Literal["video", "png"]
_SCALARS = (bool, int, float, type(None))
_UNSAFE = re.compile(r"[^\w.-]")


class StreamRecorder(Node):
    """Records every record of every connected input into the archive, by content.

    Connect any nodes to it: ``"record everything"`` is one node in a pipeline file. See
    :mod:`chimerapy.nodes.recorder` for where each kind of record goes and which time it keeps.
    Its input edges keep every chunk (in order, never latest-only), so nothing is skipped.

    Args:
        name: the node's name.
        fps: the frame rate written into videos when the chunk carries no ``fps`` record (the
            real time of every frame is in the video's ``.timestamps.csv`` all the same).
        image_format: ``"video"`` (H.264, small) or ``"png"`` (lossless, large) for frames.
    """

    kind = "sink"

    def __init__(
        self, name: str = "recorder", *, fps: float = 30.0, image_format: ImageFormat = "video"
    ) -> None:
        super().__init__(name)
        if isinstance(fps, bool) or not isinstance(fps, (int, float)) or not 0 < fps <= 1000:
            raise ValueError(f"core.recorder {name!r}: fps must be a number in (0, 1000], got {fps!r}")
        if image_format not in ("video", "png"):
            raise ValueError(
                f"core.recorder {name!r}: image_format must be 'video' or 'png', got {image_format!r}"
            )
        self.fps = float(fps)
        self.image_format = image_format

    def prep(self) -> None:
        self._columns: dict[str, tuple[str, ...]] = {}  # label -> the columns of its table
        self._failed: dict[str, int] = {}  # file stem -> items that could not be recorded
        self._last: dict[str | None, int | None] = {}  # producer -> seq of its last recorded chunk
        self.recorded = 0  # chunks

    def main(self) -> None:
        runtime = self._require_runtime("main")
        while self.running:
            for chunk in self.poll_inputs(0.1):
                self.record_chunk(chunk)
                runtime.steps += 1  # one step per chunk, for the rate the Manager shows

    def step(self, data_chunks: dict[str, DataChunk] | None = None) -> None:
        """Record each chunk of ``data_chunks`` not recorded yet (for :mod:`chimerapy.testing`)."""
        for chunk in (data_chunks or {}).values():
            if chunk.seq is None or self._last.get(chunk.producer, -1) != chunk.seq:
                self.record_chunk(chunk)

    def teardown(self) -> None:
        if self._failed:
            self.logger.warning(
                "%d chunks recorded; items that could not be recorded, by record: %s",
                self.recorded,
                self._failed,
            )

    # -- recording -------------------------------------------------------------------------------

    def record_chunk(self, chunk: DataChunk) -> None:
        """Record every record of ``chunk`` (see the module docstring)."""
        label = label_of(chunk)
        when = chunk_time(chunk, default=self.now)
        scalars: dict[str, Any] = {}
        for name, record in chunk.items():
            value = record["value"]
            if (name == "timestamp" and _is_time(value)) or (name == "stream" and isinstance(value, str)):
                continue
            stem = f"{label}.{_safe(name)}"
            if isinstance(value, np.generic) or (isinstance(value, np.ndarray) and value.ndim == 0):
                value = value.item()
            if isinstance(value, _SCALARS):
                scalars[name] = value
            elif isinstance(value, str):
                self._save(stem, self.save_text, stem, value, timestamp=when)
            elif isinstance(value, np.ndarray):
                self._record_array(stem, name, value, record["content-type"], chunk, when)
            elif isinstance(value, (bytes, bytearray, memoryview)):
                array = np.frombuffer(bytes(value), np.uint8)
                self._save(stem, self.save_array, stem, array, timestamp=when)
            else:
                self._save(stem, self.save_json, stem, value, timestamp=when)
        if scalars:
            self._record_scalars(label, scalars, when)
        self._last[chunk.producer] = chunk.seq
        self.recorded += 1

    def _record_array(
        self, stem: str, name: str, value: np.ndarray, content: str, chunk: DataChunk, when: float
    ) -> None:
        if content == "image" and value.ndim == 3 and value.shape[2] == 1:
            value = value[:, :, 0]
        if content == "image" and _is_video_frame(value) and self.image_format == "video":
            fps = _number(chunk, "fps")
            self._save(stem, self.save_video, stem, value, fps if fps and fps > 0 else self.fps, timestamp=when,
                       timing="vfr")  # every frame, at its own time
        elif content == "image" and _is_image(value):
            self._save(stem, self.save_image, stem, value, timestamp=when)
        elif name == "samples" and isinstance(_number(chunk, "rate"), int) and value.dtype in _AUDIO:
            channels = value.shape[1] if value.ndim == 2 else 1
            rate = int(chunk.get("rate")["value"])
            self._save(stem, self.save_audio, stem, value, rate, channels, timestamp=when)
        else:
            self._save(stem, self.save_array, stem, value, timestamp=when)

    def _record_scalars(self, label: str, scalars: dict[str, Any], when: float) -> None:
        columns = self._columns.setdefault(label, tuple(scalars))
        row = {column: scalars.get(column) for column in columns}
        self._save(label, self.save_tabular, _safe(label), row, timestamp=when)
        for name in scalars.keys() - set(columns):  # appeared after the table's first row
            stem = f"{label}.{_safe(name)}"
            self._save(stem, self.save_tabular, stem, {"value": scalars[name]}, timestamp=when)

    def _save(self, stem: str, save: Any, *args: Any, timestamp: float, **options: Any) -> None:
        """Call ``save``; a RecordError is counted and warned about once per record."""
        try:
            save(*args, timestamp=timestamp, **options)
        except RecordError as error:
            count = self._failed.get(stem, 0)
            self._failed[stem] = count + 1
            if not count:
                self.logger.warning("%s; its later items are skipped too (counted)", error)


_AUDIO = (np.dtype("int16"), np.dtype("float32"))


def label_of(chunk: DataChunk) -> str:
    """The label ``chunk`` is recorded under: its ``stream`` string, else its producer."""
    if "stream" in chunk and isinstance(chunk.get("stream")["value"], str):
        return _safe(chunk.get("stream")["value"].replace("/", "."))
    return _safe(chunk.producer or "input")


def chunk_time(chunk: DataChunk, *, default: Any) -> float:
    """The producer's time of ``chunk``: its ``timestamp`` record, else when it was sent.

    ``default`` (a clock) gives the time of a chunk that has neither.
    """
    if "timestamp" in chunk and _is_time(chunk.get("timestamp")["value"]):
        return float(chunk.get("timestamp")["value"])
    if chunk.produced_at is not None:
        return float(chunk.produced_at)
    return float(default())


def _is_time(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool) and (
        math.isfinite(float(value))
    )


def _number(chunk: DataChunk, name: str) -> Any:
    """The value of the record ``name`` if it is a (numpy) number, else None."""
    if name not in chunk:
        return None
    value = chunk.get(name)["value"]
    if isinstance(value, np.generic):
        value = value.item()
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _is_video_frame(value: np.ndarray) -> bool:
    return value.dtype == np.uint8 and (value.ndim == 2 or (value.ndim == 3 and value.shape[2] == 3))


def _is_image(value: np.ndarray) -> bool:
    if value.dtype == np.uint8:
        return value.ndim == 2 or (value.ndim == 3 and value.shape[2] in (3, 4))
    return value.dtype == np.uint16 and value.ndim == 2


def _safe(text: str) -> str:
    """``text`` as a portable file-name part: characters a file name cannot hold become ``_``."""
    return _UNSAFE.sub("_", text).strip(". ") or "_"
