"""A session as one XDF file, as LabRecorder would have written it.

Every stream becomes an XDF stream named ``node/name`` (its Worker is the ``hostname``):

* tabular: the numeric columns as ``double64`` channels (labelled), other columns as a
  second ``string`` stream ``node/name/text`` of JSON objects;
* audio: ``float32`` or ``int16`` channels at the nominal rate, a time stamp on each block's
  first sample (the others follow at the rate);
* json and text: ``string`` marker streams;
* video: ``int32`` frame indices, the MP4's path (relative to the XDF) in ``desc/file``;
  images likewise, as ``string`` file paths;
* the session log: a ``string`` stream ``chimerapy.log``.

Time stamps are in each Worker's own clock, with ClockOffset chunks that bring them to the
Manager's. XDF readers fit one line through a stream's clock offsets (pyxdf does), while the
Worker applied its estimates live, each until the next. So the offsets are written as the
least-squares line through the Worker's estimates, and the time stamps as the Worker clock
readings that this line maps exactly to the archive's times: pyxdf's synchronisation gives the
loader's times, and ``synchronize_clocks=False`` gives the Workers' clocks (within the spread of
the estimates about the line, a fraction of a millisecond on a LAN).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from chimerapy.archive import xdf
from chimerapy.archive.array import ArrayStream
from chimerapy.archive.audio import AudioStream
from chimerapy.archive.clock_offsets import ClockSeries
from chimerapy.archive.files import private_file
from chimerapy.archive.image import ImageStream
from chimerapy.archive.json_lines import JsonStream
from chimerapy.archive.session import Session
from chimerapy.archive.stream import Stream
from chimerapy.archive.tabular import TabularStream
from chimerapy.archive.text import TextStream
from chimerapy.archive.video import VideoStream

__all__ = ["export_xdf"]

log = logging.getLogger(__name__)

#: Samples per Samples chunk for frame-index and table streams.
CHUNK_SAMPLES = 4096


def export_xdf(session: Session, path: Path) -> Path:
    """Write ``session`` to the XDF file ``path`` (created 0600); returns ``path``."""
    path = Path(path)
    temporary = path.with_name(f".{path.name}.tmp")
    with private_file(temporary) as file:
        file.write(xdf.MAGIC)
        file.write(xdf.file_header(datetime=session.meta.get("created", ""), session=session.id))
        stream_id = 0
        for stream in session.streams:
            for header, body in _xdf_streams(stream, path.parent):
                stream_id += 1
                _write_stream(file, stream_id, header, body, session.clock_offsets.get(stream.worker))
        records = session.log()
        if records:
            stream_id += 1
            header = {"name": "chimerapy.log", "type": "Markers", "channel_count": 1,
                      "nominal_srate": 0, "channel_format": "string",
                      "desc": {"session": session.id}}
            _write_stream(file, stream_id, header,
                          ("string", np.array([r.time for r in records]),
                           [f"{r.level} [{r.source}] {r.message}" for r in records]), None)
    os.replace(temporary, path)
    return path


# A stream's samples: ("numeric", times, values (n, ch), format) or ("string", times, texts)
# or ("audio", block times, block index, samples, format).
Body = tuple[Any, ...]


def _xdf_streams(stream: Stream, folder: Path) -> Iterator[tuple[dict[str, Any], Body]]:
    base: dict[str, Any] = {"name": stream.key, "hostname": stream.worker, "source_id": f"{stream.worker}/{stream.key}"}
    desc: dict[str, Any] = {"worker": stream.worker, "node": stream.node, "record": stream.name,
                            "kind": stream.kind}
    times = stream.times
    if isinstance(stream, VideoStream):
        mp4 = stream.file("mp4")
        desc["file"] = os.path.relpath(mp4, folder) if mp4 else ""
        desc["channels"] = [("channel", {"label": "frame_index"})]
        yield ({**base, "type": "VideoFrames", "channel_count": 1, "nominal_srate": 0,
                "channel_format": "int32", "desc": desc},
               ("numeric", times, np.arange(len(times), dtype=np.int32), "int32"))
    elif isinstance(stream, AudioStream):
        samples = stream.samples()
        fmt = "int16" if samples.data.dtype == np.int16 else "float32"
        desc["channels"] = [("channel", {"label": f"ch{k}"}) for k in range(stream.channels)]
        yield ({**base, "type": "Audio", "channel_count": stream.channels, "nominal_srate": stream.rate,
                "channel_format": fmt, "desc": desc},
               ("audio", samples.block_times, samples.block_index, samples.data, fmt))
    elif isinstance(stream, TabularStream):
        frame = stream.table()
        numeric = [c for c in frame.columns if c != "timestamp" and frame[c].dtype.kind in "biuf"]
        other = [c for c in frame.columns if c != "timestamp" and c not in numeric]
        if numeric:
            values = frame[numeric].to_numpy(dtype=np.float64)
            yield ({**base, "type": "Tabular", "channel_count": len(numeric), "nominal_srate": 0,
                    "channel_format": "double64",
                    "desc": {**desc, "channels": [("channel", {"label": str(c)}) for c in numeric]}},
                   ("numeric", times, values, "double64"))
        if other or not numeric:
            rows = frame[other].to_dict(orient="records")
            texts = [json.dumps(row, default=str) for row in rows]
            yield ({**base, "name": f"{stream.key}/text", "type": "Markers", "channel_count": 1,
                    "nominal_srate": 0, "channel_format": "string", "desc": desc},
                   ("string", times, texts))
    elif isinstance(stream, ArrayStream):
        arrays = [stream.array(i) for i in range(stream.count)]
        shapes = {(a.shape, a.dtype.kind) for a in arrays}
        if len(shapes) == 1 and next(iter(shapes))[1] in "biuf" and arrays[0].size:
            values = np.stack([a.reshape(-1) for a in arrays]).astype(np.float64)
            desc["channels"] = [("channel", {"label": str(k)}) for k in range(values.shape[1])]
            desc["shape"] = " ".join(str(n) for n in arrays[0].shape)  # each sample: the array flattened
            yield ({**base, "type": "Array", "channel_count": values.shape[1], "nominal_srate": 0,
                    "channel_format": "double64", "desc": desc}, ("numeric", times, values, "double64"))
        elif arrays:  # shapes or dtypes that change: one JSON marker per array
            texts = [json.dumps(a.tolist(), default=str) for a in arrays]
            yield ({**base, "type": "Markers", "channel_count": 1, "nominal_srate": 0,
                    "channel_format": "string", "desc": desc}, ("string", times, texts))
    elif isinstance(stream, (JsonStream, TextStream, ImageStream)):
        if isinstance(stream, JsonStream):
            texts = [json.dumps(record["data"]) for record in stream.records()]
        elif isinstance(stream, TextStream):
            texts = stream.texts()
        else:
            texts = [os.path.relpath(stream.path(i), folder) for i in range(stream.count)]
        kind = "ImageFiles" if isinstance(stream, ImageStream) else "Markers"
        yield ({**base, "type": kind, "channel_count": 1, "nominal_srate": 0,
                "channel_format": "string", "desc": desc}, ("string", times, texts))


def _write_stream(file: BinaryIO, stream_id: int, header: dict[str, Any], body: Body,
                  clock: ClockSeries | None) -> None:
    file.write(xdf.stream_header(stream_id, **header))

    line = _offset_line(clock) if clock is not None else None

    def local(times: np.ndarray) -> np.ndarray:
        if line is None:
            return times
        intercept, slope = line
        return (times - intercept) / (1.0 + slope)

    kind = body[0]
    if kind == "numeric":
        _, times, values, fmt = body
        stamps = local(np.asarray(times, dtype=np.float64))
        values = np.asarray(values).reshape(len(stamps), -1)
        file.writelines(
            xdf.numeric_samples(stream_id, stamps[start:start + CHUNK_SAMPLES],
                                values[start:start + CHUNK_SAMPLES], fmt)
            for start in range(0, len(stamps), CHUNK_SAMPLES)
        )
        count = len(stamps)
        first, last = (stamps[0], stamps[-1]) if count else (0.0, 0.0)
    elif kind == "audio":
        _, block_times, block_index, data, fmt = body
        stamps = local(np.asarray(block_times, dtype=np.float64))
        bounds = list(block_index) + [len(data)]
        for k, stamp in enumerate(stamps):
            block = np.asarray(data[bounds[k]:bounds[k + 1]])
            file.write(xdf.numeric_samples(stream_id, None, block, fmt, first_time=float(stamp)))
        count = len(data)
        rate = float(header["nominal_srate"])
        first = float(stamps[0]) if len(stamps) else 0.0
        last = float(stamps[-1]) + (len(data) - 1 - int(block_index[-1])) / rate if len(stamps) else 0.0
    else:
        _, times, texts = body
        stamps = local(np.asarray(times, dtype=np.float64))
        file.writelines(
            xdf.string_samples(stream_id, stamps[start:start + CHUNK_SAMPLES].tolist(),
                               texts[start:start + CHUNK_SAMPLES])
            for start in range(0, len(stamps), CHUNK_SAMPLES)
        )
        count = len(stamps)
        first, last = (stamps[0], stamps[-1]) if count else (0.0, 0.0)
    if clock is not None and line is not None:
        intercept, slope = line
        file.writelines(  # at each estimate's Manager time, read on the line's Worker clock: in order
            xdf.clock_offset(stream_id, float(when), float(intercept + slope * when))
            for when in local(clock.times)
        )
    file.write(xdf.stream_footer(stream_id, first_timestamp=float(first), last_timestamp=float(last),
                                 sample_count=int(count)))


def _offset_line(clock: ClockSeries) -> tuple[float, float] | None:
    """``(intercept, slope)`` of the least-squares line offset = intercept + slope * worker clock
    through ``clock``'s estimates (flat through the only one; None when there is none)."""
    if not len(clock.offsets):
        return None
    worker_times = clock.times - clock.offsets
    if len(np.unique(worker_times)) < 2:
        return float(clock.offsets[-1]), 0.0
    centre = float(worker_times.mean())  # fitted about the middle: epoch seconds lose precision squared
    slope, at_centre = np.polyfit(worker_times - centre, clock.offsets, 1)
    return float(at_centre - slope * centre), float(slope)
