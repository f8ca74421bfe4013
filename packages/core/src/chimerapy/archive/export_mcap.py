"""A session as one MCAP file that Foxglove opens: every stream and the log on one timeline.

Messages are JSON with a JSON Schema per channel; every log time is Manager time in
nanoseconds since the UNIX epoch. Topics are ``/<worker>/<node>/<name>``:

* video: each frame as ``foxglove.CompressedImage`` (JPEG, re-encoded from the MP4);
  images likewise (their PNG bytes as saved);
* tabular: one message per row (``timestamp`` and the columns);
* json: ``{"timestamp", "data"}`` per object; text: ``{"timestamp", "text"}`` per piece;
* audio: one message per block with its RMS and peak level per channel (Foxglove has no
  audio panel; the samples stay in the WAV);
* ``/log``: the session log as ``foxglove.Log``.

Needs the ``mcap`` package (the ``mcap`` extra).
"""

from __future__ import annotations

import base64
import heapq
import json
import math
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from chimerapy.archive.array import ArrayStream
from chimerapy.archive.audio import AudioStream
from chimerapy.archive.errors import ArchiveError
from chimerapy.archive.files import private_file
from chimerapy.archive.image import ImageStream
from chimerapy.archive.json_lines import JsonStream
from chimerapy.archive.session import Session
from chimerapy.archive.stream import Stream
from chimerapy.archive.tabular import TabularStream
from chimerapy.archive.text import TextStream
from chimerapy.archive.video import VideoStream

__all__ = ["COMPRESSED_IMAGE_SCHEMA", "LOG_SCHEMA", "export_mcap"]

_TIME = {
    "type": "object",
    "properties": {"sec": {"type": "integer", "minimum": 0},
                   "nsec": {"type": "integer", "minimum": 0, "maximum": 999_999_999}},
}
#: The ``foxglove.CompressedImage`` message as JSON: bytes are base64 text.
COMPRESSED_IMAGE_SCHEMA = {
    "title": "foxglove.CompressedImage",
    "type": "object",
    "properties": {
        "timestamp": _TIME,
        "frame_id": {"type": "string"},
        "data": {"type": "string", "contentEncoding": "base64"},
        "format": {"type": "string"},
    },
}
#: The ``foxglove.Log`` message: level 1 debug, 2 info, 3 warning, 4 error, 5 fatal.
LOG_SCHEMA = {
    "title": "foxglove.Log",
    "type": "object",
    "properties": {
        "timestamp": _TIME,
        "level": {"type": "integer", "enum": [0, 1, 2, 3, 4, 5]},
        "message": {"type": "string"},
        "name": {"type": "string"},
        "file": {"type": "string"},
        "line": {"type": "integer", "minimum": 0},
    },
}
_LEVELS = {"DEBUG": 1, "INFO": 2, "WARNING": 3, "ERROR": 4, "CRITICAL": 5}
_JPEG_QUALITY = 85

# (time, order, channel key, payload): ``order`` keeps equal times in a stable order.
Message = tuple[float, int, str, dict[str, Any]]


def export_mcap(session: Session, path: Path) -> Path:
    """Write ``session`` to the MCAP file ``path`` (created 0600); returns ``path``.

    Raises:
        ArchiveError: the ``mcap`` package is not installed.
    """
    try:
        from mcap.writer import CompressionType, Writer
    except ImportError:
        raise ArchiveError("MCAP export needs the mcap package: pip install 'chimerapy-core[mcap]'") from None
    path = Path(path)
    temporary = path.with_name(f".{path.name}.tmp")
    sources: list[Iterator[Message]] = []
    channels: dict[str, tuple[str, dict[str, Any]]] = {}
    for order, stream in enumerate(session.streams):
        topic = "/" + "/".join(p for p in (stream.worker, stream.node, stream.name) if p)
        schema, messages = _messages(stream, order, topic)
        channels[topic] = (schema["title"], schema)
        sources.append(messages)
    records = session.log()
    if records:
        channels["/log"] = ("foxglove.Log", LOG_SCHEMA)
        sources.append(iter([(r.time, len(sources), "/log", {
            "timestamp": _stamp(r.time), "level": _LEVELS.get(r.level, 0), "message": r.message,
            "name": r.source, "file": "", "line": 0}) for r in records]))
    with private_file(temporary) as file:
        writer = Writer(file, compression=CompressionType.ZSTD)
        writer.start(profile="", library="chimerapy")
        ids = {}
        for topic, (name, schema) in channels.items():
            schema_id = writer.register_schema(name=name, encoding="jsonschema",
                                               data=json.dumps(schema).encode("utf-8"))
            ids[topic] = writer.register_channel(topic=topic, message_encoding="json", schema_id=schema_id)
        sequence: dict[str, int] = {}
        for when, _, topic, payload in heapq.merge(*sources, key=lambda m: (m[0], m[1])):
            nanoseconds = round(when * 1e9)
            sequence[topic] = sequence.get(topic, 0) + 1
            writer.add_message(ids[topic], log_time=nanoseconds, publish_time=nanoseconds,
                               data=json.dumps(payload, allow_nan=False, default=str).encode("utf-8"),
                               sequence=sequence[topic])
        writer.finish()
    os.replace(temporary, path)
    return path


def _stamp(t: float) -> dict[str, int]:
    nanoseconds = round(t * 1e9)
    return {"sec": nanoseconds // 1_000_000_000, "nsec": nanoseconds % 1_000_000_000}


def _messages(stream: Stream, order: int, topic: str) -> tuple[dict[str, Any], Iterator[Message]]:
    times = stream.times
    if isinstance(stream, VideoStream):
        return COMPRESSED_IMAGE_SCHEMA, _video_messages(stream, order, topic)
    if isinstance(stream, ImageStream):
        def images() -> Iterator[Message]:
            for i, t in enumerate(times):
                data = base64.b64encode(stream.path(i).read_bytes()).decode("ascii")
                yield float(t), order, topic, {"timestamp": _stamp(float(t)), "frame_id": stream.key,
                                               "data": data, "format": "png"}
        return COMPRESSED_IMAGE_SCHEMA, images()
    if isinstance(stream, TabularStream):
        columns = stream.columns
        schema = {"title": f"chimerapy.table.{stream.node}.{stream.name}", "type": "object",
                  "properties": {c: {} for c in columns}}
        rows = (stream.value(i) for i in range(stream.count))
        return schema, ((float(t), order, topic, _json_safe(row)) for t, row in zip(times, rows))
    if isinstance(stream, JsonStream):
        schema = {"title": "chimerapy.json", "type": "object",
                  "properties": {"timestamp": {"type": "number"}, "data": {}}}
        return schema, ((float(r["timestamp"]), order, topic, _json_safe(r)) for r in stream.records())
    if isinstance(stream, TextStream):
        schema = {"title": "chimerapy.text", "type": "object",
                  "properties": {"timestamp": {"type": "number"}, "text": {"type": "string"}}}
        return schema, ((float(t), order, topic, {"timestamp": float(t), "text": text})
                        for t, text in zip(times, stream.texts()))
    if isinstance(stream, AudioStream):
        schema = {"title": "chimerapy.audio_level", "type": "object",
                  "properties": {"timestamp": {"type": "number"}, "first_sample": {"type": "integer"},
                                 "rms": {"type": "array", "items": {"type": "number"}},
                                 "peak": {"type": "array", "items": {"type": "number"}}}}
        return schema, _audio_messages(stream, order, topic)
    if isinstance(stream, ArrayStream):
        schema = {"title": "chimerapy.array", "type": "object",
                  "properties": {"timestamp": {"type": "number"}, "dtype": {"type": "string"},
                                 "shape": {"type": "array", "items": {"type": "integer"}}, "data": {}}}

        def arrays() -> Iterator[Message]:
            for i, t in enumerate(times):
                array = stream.array(i)
                yield float(t), order, topic, {"timestamp": float(t), "dtype": str(array.dtype),
                                               "shape": list(array.shape), "data": _json_safe(array.tolist())}
        return schema, arrays()
    raise ArchiveError(f"stream {stream.key!r}: no MCAP form for kind {stream.kind!r}")


def _video_messages(stream: VideoStream, order: int, topic: str) -> Iterator[Message]:
    import simplejpeg

    times = stream.times
    for index, frame in stream.decoded_frames():
        if frame.format.name == "yuv420p":
            y, u, v = (_plane(p) for p in frame.planes)
            data = simplejpeg.encode_jpeg_yuv_planes(y, u, v, quality=_JPEG_QUALITY)
        else:
            data = simplejpeg.encode_jpeg(frame.to_ndarray(format="bgr24"), _JPEG_QUALITY, colorspace="BGR")
        t = float(times[index])
        yield t, order, topic, {"timestamp": _stamp(t), "frame_id": stream.key,
                                "data": base64.b64encode(data).decode("ascii"), "format": "jpeg"}


def _plane(plane: Any) -> np.ndarray:
    rows = np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)
    return np.ascontiguousarray(rows[:, : plane.width])


def _audio_messages(stream: AudioStream, order: int, topic: str) -> Iterator[Message]:
    samples = stream.samples()
    scale = 32768.0 if samples.data.dtype == np.int16 else 1.0
    bounds = [*samples.block_index.tolist(), len(samples.data)]
    for k, t in enumerate(samples.block_times):
        block = np.asarray(samples.data[bounds[k]:bounds[k + 1]], dtype=np.float64) / scale
        rms = np.sqrt((block**2).mean(axis=0)) if len(block) else np.zeros(samples.data.shape[1])
        peak = np.abs(block).max(axis=0) if len(block) else np.zeros(samples.data.shape[1])
        yield float(t), order, topic, {"timestamp": float(t), "first_sample": bounds[k],
                                       "rms": rms.tolist(), "peak": peak.tolist()}


def _json_safe(value: Any) -> Any:
    """NaN and infinities become None (JSON has no such numbers)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value
