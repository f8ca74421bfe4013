"""How ML nodes find what to work on in their input chunks, and the records their outputs carry.

Video sources send ``frame`` (uint8 BGR, ``content_type="image"``), ``timestamp`` (the capture
time on the Manager's clock) and ``frame_index``; audio sources send ``samples``, ``rate``,
``channels``, ``timestamp`` (the time of the block's first sample) and ``sample_index``. An ML
node takes the first input chunk that holds the record it works on, whatever its producer is
called, and stamps its result with that chunk's ``timestamp`` so that a consumer (``video.overlay``)
matches the result with the data it was computed from.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import chimerapy as cp
import numpy as np

from .errors import ModelInputError

__all__ = ["Found", "capture_time", "check_frame", "find_record", "result_chunk"]

#: What the image nodes take.
FRAME = "a uint8 image of shape (H, W), (H, W, 1) gray, (H, W, 3) BGR or (H, W, 4) BGRA"


@dataclass(frozen=True)
class Found:
    """An input record found in the chunks of a step.

    Attributes:
        producer: the node that sent it.
        chunk: its whole chunk (``seq`` numbers the producer's stream).
        record: the record's name.
        value: the record's value as received (arrays are read-only views: copy to modify).
        timestamp: the chunk's capture time (see :func:`capture_time`).
    """

    producer: str
    chunk: cp.DataChunk
    record: str
    value: Any
    timestamp: float


def capture_time(chunk: cp.DataChunk) -> float:
    """The time the data of ``chunk`` was captured: its ``timestamp`` record, else when it was
    sent, else (a chunk built by hand and never sent) when it was made."""
    if "timestamp" in chunk:
        return float(chunk.get("timestamp")["value"])
    return float(chunk.time)  # when it was sent, or made (a chunk built by hand)


def find_record(
    data_chunks: Mapping[str, cp.DataChunk], record: str, *, array: bool = True
) -> Found | None:
    """The first chunk of ``data_chunks`` (producer -> chunk) holding ``record``, or ``None``.

    With ``array`` (the default) only a record holding a numpy array counts.
    """
    for producer, chunk in data_chunks.items():
        if record in chunk:
            value = chunk.get(record)["value"]
            if not array or isinstance(value, np.ndarray):
                return Found(producer, chunk, record, value, capture_time(chunk))
    return None


def result_chunk(found: Found, records: Mapping[str, Any]) -> cp.DataChunk:
    """A result chunk: ``records``, the input's ``timestamp`` and (if any) ``frame_index``."""
    out = cp.DataChunk()
    for name, value in records.items():
        out.add(name, value)
    out.add("timestamp", found.timestamp)
    if "frame_index" in found.chunk:
        out.add("frame_index", found.chunk.get("frame_index")["value"])
    return out


def check_frame(found: Found, what: str) -> np.ndarray:
    """The frame in ``found`` if it is a uint8 image (see :data:`FRAME`), else ModelInputError."""
    frame = found.value
    if frame.dtype == np.uint8 and (
        frame.ndim == 2 or (frame.ndim == 3 and frame.shape[2] in (1, 3, 4))
    ):
        return frame
    received = f"{frame.dtype} {frame.shape}"
    raise ModelInputError(
        f"{what} expects {FRAME}; record {found.record!r} from {found.producer!r} holds {received}",
        expected=FRAME,
        received=received,
    )
