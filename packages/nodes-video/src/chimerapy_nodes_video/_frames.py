"""Frame records on the wire: how video sources build them and how consumers find them.

A video source emits one DataChunk per frame with these records:

* ``frame``: ``uint8`` BGR array ``(H, W, 3)``, ``content_type="image"``;
* ``timestamp``: float, the Manager-aligned capture time (:meth:`chimerapy.Node.now`);
* ``frame_index``: int, 0, 1, 2, ... in the order the source emitted them.

Consumers take the first input chunk that holds a ``frame`` record, whatever its producer's name.

Sources that know their frame size write each frame straight into
:meth:`chimerapy.Node.output_buffer` (:func:`frame_buffer`): on one host it is the shared memory
the consumers read, so the frame is never copied on its way (see :func:`read_into`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from chimerapy import DataChunk, Node

__all__ = ["FrameRef", "as_bgr", "find_frame", "frame_buffer", "frame_chunk", "frame_time", "read_into"]


def frame_chunk(frame: np.ndarray, timestamp: float, index: int, **extra: Any) -> DataChunk:
    """A chunk with the standard frame records, plus ``extra`` records (``content_type="other"``).

    ``frame`` is sent without copying: the caller must not modify it afterwards.
    """
    chunk = DataChunk()
    chunk.add("frame", frame, "image")
    chunk.add("timestamp", float(timestamp))
    chunk.add("frame_index", int(index))
    for name, value in extra.items():
        chunk.add(name, value)
    return chunk


def as_bgr(frame: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``frame`` as 3-channel BGR: gray and BGRA frames are converted, BGR ones returned as they are.

    ``out``: where a conversion writes when it has the frame's size (e.g. a :func:`frame_buffer`).
    """
    dst = out if out is not None and out.shape == (*frame.shape[:2], 3) else None
    if frame.ndim == 2:
        return cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR, dst=dst)
    if frame.shape[2] == 4:
        return cv2.cvtColor(frame, cv2.COLOR_BGRA2BGR, dst=dst)
    return frame


def frame_buffer(node: Node, shape: tuple[int, ...] | None) -> np.ndarray | None:
    """The output buffer for the ``frame`` record of this step (``uint8`` BGR of ``shape``), or
    None while the size is not known."""
    return node.output_buffer("frame", shape, np.uint8) if shape is not None else None


def read_into(capture: cv2.VideoCapture, out: np.ndarray | None) -> tuple[bool, np.ndarray | None]:
    """``capture.read()``, decoding into ``out`` when given (OpenCV makes a new array instead
    when the frame has another size or type)."""
    return capture.read(out) if out is not None else capture.read()


@dataclass(frozen=True)
class FrameRef:
    """A frame found in an input chunk.

    Attributes:
        frame: the array as received (a read-only view: copy it before modifying).
        record: the name of the record that held it.
        timestamp: its capture time (see :func:`frame_time`).
        producer: the name of the node that sent it.
        chunk: the whole chunk.
    """

    frame: np.ndarray
    record: str
    timestamp: float
    producer: str
    chunk: DataChunk


def frame_time(chunk: DataChunk) -> float:
    """The capture time of the frame in ``chunk``: its ``timestamp`` record, else when it was sent,
    else (a chunk built by hand) when it was made."""
    if "timestamp" in chunk:
        return float(chunk.get("timestamp")["value"])
    return float(chunk.time)  # when it was sent, or made (a chunk built by hand)


def find_frame(chunks: Mapping[str, DataChunk], *, any_image: bool = False) -> FrameRef | None:
    """The first chunk of ``chunks`` (producer -> chunk) that holds a frame, or ``None``.

    A frame is the record ``frame``; with ``any_image``, a chunk without one may also offer its
    first record of ``content_type="image"`` that holds an array.
    """
    for wanted_any in (False, True) if any_image else (False,):
        for producer, chunk in chunks.items():
            name = _frame_record(chunk, wanted_any)
            if name is not None:
                frame = chunk.get(name)["value"]
                return FrameRef(frame, name, frame_time(chunk), producer, chunk)
    return None


def _frame_record(chunk: DataChunk, any_image: bool) -> str | None:
    if not any_image:
        return "frame" if "frame" in chunk and isinstance(chunk.get("frame")["value"], np.ndarray) else None
    for name, record in chunk.items():
        if record["content-type"] == "image" and isinstance(record["value"], np.ndarray):
            return name
    return None
