"""The XDF container (version 1.0), written from its specification: pure byte builders.

An XDF file is the magic ``XDF:`` then chunks. A chunk is a variable-length integer (one byte
holding 1, 4 or 8, then the value in that many little-endian bytes) giving the length of what
follows, a ``uint16`` tag, and the content:

====  ============  ================================================================
tag   chunk         content
====  ============  ================================================================
1     FileHeader    XML ``<info><version>1.0</version>...</info>``
2     StreamHeader  ``uint32`` stream id, XML ``<info>`` (name, type, channel_count,
                    nominal_srate, channel_format, ... ``<desc>``)
3     Samples       stream id, varlen sample count, then per sample: a byte 8 and a
                    ``double`` time stamp (or a byte 0: one period after the previous
                    sample), then the values (numbers little-endian; strings as a
                    varlen length and UTF-8 bytes per channel)
4     ClockOffset   stream id, ``double`` collection time, ``double`` offset value
6     StreamFooter  stream id, XML (first and last time stamp, sample count)
====  ============  ================================================================

Time stamps are in the recording computer's clock; the clock offsets (added to them) bring
them to the reference clock, which is what pyxdf does when it synchronises clocks.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Any
from xml.sax.saxutils import escape

import numpy as np

__all__ = [
    "CHANNEL_FORMATS",
    "MAGIC",
    "chunk",
    "clock_offset",
    "file_header",
    "numeric_samples",
    "stream_footer",
    "stream_header",
    "string_samples",
    "varlen",
]

MAGIC = b"XDF:"
#: XDF channel formats and their little-endian numpy types.
CHANNEL_FORMATS = {
    "float32": np.dtype("<f4"),
    "double64": np.dtype("<f8"),
    "int8": np.dtype("i1"),
    "int16": np.dtype("<i2"),
    "int32": np.dtype("<i4"),
    "int64": np.dtype("<i8"),
}
_FILE_HEADER, _STREAM_HEADER, _SAMPLES, _CLOCK_OFFSET, _STREAM_FOOTER = 1, 2, 3, 4, 6


def varlen(value: int) -> bytes:
    """An XDF variable-length integer."""
    if value < 1 << 8:
        return struct.pack("<BB", 1, value)
    if value < 1 << 32:
        return struct.pack("<BI", 4, value)
    return struct.pack("<BQ", 8, value)


def chunk(tag: int, content: bytes) -> bytes:
    """One chunk: its length (tag included), its tag and its content."""
    return varlen(len(content) + 2) + struct.pack("<H", tag) + content


def _xml(element: str, fields: dict[str, Any]) -> str:
    parts = []
    for key, value in fields.items():
        if isinstance(value, dict):
            parts.append(_xml(key, value))
        elif isinstance(value, list):
            parts.append(f"<{key}>" + "".join(_xml(k, v) for k, v in value) + f"</{key}>")
        else:
            parts.append(f"<{key}>{escape(str(value))}</{key}>")
    return f"<{element}>" + "".join(parts) + f"</{element}>"


def file_header(**fields: Any) -> bytes:
    """The FileHeader chunk (``version`` 1.0 plus ``fields``)."""
    text = '<?xml version="1.0"?>' + _xml("info", {"version": "1.0", **fields})
    return chunk(_FILE_HEADER, text.encode("utf-8"))


def stream_header(stream_id: int, *, name: str, type: str, channel_count: int, nominal_srate: float,
                  channel_format: str, desc: dict[str, Any] | None = None, **fields: Any) -> bytes:
    """A StreamHeader chunk; ``desc`` nests (dicts are elements, lists of pairs repeat them)."""
    info = {"name": name, "type": type, "channel_count": channel_count,
            "nominal_srate": nominal_srate, "channel_format": channel_format, **fields,
            "desc": desc or {}}
    text = '<?xml version="1.0"?>' + _xml("info", info)
    return chunk(_STREAM_HEADER, struct.pack("<I", stream_id) + text.encode("utf-8"))


def numeric_samples(stream_id: int, times: np.ndarray | None, values: np.ndarray, channel_format: str,
                    *, first_time: float | None = None) -> bytes:
    """A Samples chunk of ``values`` ``(n, channels)``.

    ``times`` gives every sample its time stamp; or, with ``times=None``, only the first
    sample gets ``first_time`` and the others follow at the nominal rate.
    """
    dtype = CHANNEL_FORMATS[channel_format]
    values = np.asarray(values).reshape(len(values), -1)
    channels = values.shape[1]
    count = len(values)
    if times is not None:
        layout = np.dtype([("flag", "u1"), ("time", "<f8"), ("values", dtype, (channels,))])
        table = np.empty(count, layout)
        table["flag"], table["time"], table["values"] = 8, times, values
        body = table.tobytes()
    else:
        layout = np.dtype([("flag", "u1"), ("values", dtype, (channels,))])
        table = np.empty(count, layout)
        table["flag"], table["values"] = 0, values
        body = table.tobytes()
        if count and first_time is not None:
            head = struct.pack("<Bd", 8, first_time) + values[0].astype(dtype).tobytes()
            body = head + body[layout.itemsize:]
    return chunk(_SAMPLES, struct.pack("<I", stream_id) + varlen(count) + body)


def string_samples(stream_id: int, times: Sequence[float], values: Sequence[str]) -> bytes:
    """A Samples chunk of one-channel string samples, each with its time stamp."""
    parts = [struct.pack("<I", stream_id), varlen(len(values))]
    for when, value in zip(times, values):
        data = value.encode("utf-8")
        parts.append(struct.pack("<Bd", 8, when) + varlen(len(data)) + data)
    return chunk(_SAMPLES, b"".join(parts))


def clock_offset(stream_id: int, collection_time: float, offset: float) -> bytes:
    """A ClockOffset chunk: at ``collection_time`` (the stream's clock) add ``offset``."""
    return chunk(_CLOCK_OFFSET, struct.pack("<Idd", stream_id, collection_time, offset))


def stream_footer(stream_id: int, *, first_timestamp: float, last_timestamp: float, sample_count: int) -> bytes:
    """A StreamFooter chunk."""
    text = '<?xml version="1.0"?>' + _xml("info", {
        "first_timestamp": repr(first_timestamp), "last_timestamp": repr(last_timestamp),
        "sample_count": sample_count})
    return chunk(_STREAM_FOOTER, struct.pack("<I", stream_id) + text.encode("utf-8"))
