"""A session summarised for one timeline (the dashboard's Review): per stream what to fetch and where
each item lies in time, as JSON-ready data.

:func:`session_overview` gives every stream its ``kind``, ``count``, ``start``, ``end``, ``files``
(paths relative to the session folder) and ``notes``, and by kind:

* video: ``media`` (the MP4), ``fps`` and ``times`` (each frame's Manager time: frame ``i`` is at
  presentation time ``i / fps`` in the MP4, so a player maps a session time to a frame and a frame
  to a position in the file);
* audio: ``media`` (the WAV), ``rate``, ``channels``, ``blocks`` (``[first sample, time]`` per
  saved block: sample ``j`` of a block is at ``time + (j - first) / rate``) and ``series``: the
  peak of each channel (a fraction of full scale) over at most ``points`` intervals;
* tabular: ``series`` of its numeric columns: up to ``points`` rows as they are, else the lowest
  and highest value of each of ``points // 2`` runs of rows, in the order they came (spikes stay);
* json, text, array: ``markers`` (``{"time", "label"}``, a label of at most :data:`LABEL_CHARS`),
  at most ``markers`` of them spread evenly over the stream, ``markers_total`` saying how many
  there are;
* image: ``images`` (``{"time", "file"}``), thinned the same way.

A ``series`` is ``{"times": [...], "columns": {name: [...]}}`` with ``null`` where a value is
missing. A stream that cannot be read gets an ``error`` instead of its data; the others are still
summarised. Every time is Manager time (UNIX seconds).
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

import numpy as np

from chimerapy.archive.array import ArrayStream
from chimerapy.archive.audio import AudioStream
from chimerapy.archive.errors import ArchiveError
from chimerapy.archive.files import read_csv
from chimerapy.archive.image import ImageStream
from chimerapy.archive.json_lines import JsonStream
from chimerapy.archive.session import Session
from chimerapy.archive.stream import Stream
from chimerapy.archive.tabular import TabularStream
from chimerapy.archive.text import TextStream
from chimerapy.archive.video import VideoStream

__all__ = ["LABEL_CHARS", "MAX_MARKERS", "MAX_POINTS", "envelope", "session_overview", "spread"]

log = logging.getLogger(__name__)

#: Rows of a series by default (a plot a few thousand pixels wide shows no more).
MAX_POINTS = 2000
#: Markers (or images) of one stream by default.
MAX_MARKERS = 2000
#: The longest label of a marker, in characters.
LABEL_CHARS = 160
_FULL_SCALE = {"int16": 32768.0, "int32": 2147483648.0}


def session_overview(session: Session, *, points: int = MAX_POINTS, markers: int = MAX_MARKERS) -> dict[str, Any]:
    """Every stream of ``session`` summarised for a timeline (see the module docstring).

    Reads each stream's times and, for numbers and sound, its values; frames and images are not
    decoded. ``start`` and ``end`` span the session and every stream in it.

    Args:
        points: the most rows of a series (at least 4).
        markers: the most markers or images of one stream (at least 1).
    """
    points, markers = max(4, points), max(1, markers)
    streams = [_stream_overview(stream, session.path, points, markers) for stream in session.streams]
    bounds = [session.start, session.end] + [value for item in streams for value in (item["start"], item["end"])]
    finite = [value for value in bounds if value is not None and math.isfinite(value)]
    return {
        "session": session.id,
        "start": min(finite) if finite else None,
        "end": max(finite) if finite else None,
        "started": _number(session.start),
        "stopped": _number(session.end),
        "notes": list(session.notes),
        "streams": streams,
    }


def _stream_overview(stream: Stream, root: Path, points: int, markers: int) -> dict[str, Any]:
    item: dict[str, Any] = {
        "key": stream.key, "worker": stream.worker, "node": stream.node, "name": stream.name,
        "kind": stream.kind, "count": 0, "start": None, "end": None,
        "files": [_relative(path, root) for path in stream.files],
    }
    try:
        item.update(count=stream.count, start=_number(stream.start), end=_number(stream.end))
        item.update(_details(stream, root, points, markers))
    except (ArchiveError, OSError, ValueError) as error:  # one unreadable stream, not the whole session
        log.warning("stream %s of %s cannot be summarised: %s", stream.key, root, error)
        item["error"] = f"{type(error).__name__}: {error}"
    item["notes"] = list(stream.notes)
    return item


def _details(stream: Stream, root: Path, points: int, markers: int) -> dict[str, Any]:
    if isinstance(stream, VideoStream):
        mp4 = stream.file("mp4")
        return {"media": _relative(mp4, root) if mp4 else None, "fps": stream.fps if mp4 and stream.count else None,
                "times": _times(stream.times)}
    if isinstance(stream, AudioStream):
        return _audio(stream, root, points)
    if isinstance(stream, TabularStream):
        return _tabular(stream, points)
    if isinstance(stream, ImageStream):
        chosen = spread(stream.count, markers)
        times = stream.times
        return {"images": [{"time": float(times[i]), "file": _relative(stream.path(int(i)), root)} for i in chosen],
                "markers_total": stream.count}
    if isinstance(stream, (JsonStream, TextStream, ArrayStream)):
        chosen = spread(stream.count, markers)
        times = stream.times
        return {"markers": [{"time": float(times[i]), "label": _label(stream, int(i))} for i in chosen],
                "markers_total": stream.count}
    return {}


def _audio(stream: AudioStream, root: Path, points: int) -> dict[str, Any]:
    samples = stream.samples()
    wav = stream.file("wav")
    data = samples.data
    scale = _FULL_SCALE.get(data.dtype.name, 1.0)
    runs = min(points, len(data))
    columns: dict[str, list[float | None]] = {}
    times: list[float] = []
    if runs:  # run by run: a long recording is never copied whole out of its memory map
        edges = np.linspace(0, len(data), runs + 1).astype(np.int64)
        peaks = np.empty((runs, data.shape[1]))
        for run in range(runs):
            part = data[edges[run] : edges[run + 1]]
            peaks[run] = np.maximum(part.max(axis=0).astype(np.float64), -part.min(axis=0).astype(np.float64)) / scale
        times = _times(samples.time_of(edges[:-1]))
        columns = {f"ch{channel}": _values(peaks[:, channel]) for channel in range(data.shape[1])}
    return {
        "media": _relative(wav, root) if wav else None, "rate": samples.rate, "channels": data.shape[1],
        "blocks": [[int(index), float(time)] for index, time in zip(samples.block_index, samples.block_times)],
        "series": {"times": times, "columns": columns},
    }


def _tabular(stream: TabularStream, points: int) -> dict[str, Any]:
    path = stream.file("csv")
    assert path is not None
    table = read_csv(path)
    count = stream.count
    rows = table.rows[:count]
    names = [name for name in table.header if name != "timestamp"]
    numeric = {}
    for name in names:
        column = _numeric([row[table.header.index(name)] for row in rows])
        if column is not None:
            numeric[name] = column
    times, columns = envelope(stream.times, numeric, points)
    return {"series": {"times": _times(times), "columns": {name: _values(column) for name, column in columns.items()}},
            "columns_left_out": [name for name in names if name not in numeric]}


def envelope(times: np.ndarray, columns: dict[str, np.ndarray], points: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """``times`` and ``columns`` cut to at most ``points`` rows for a plot.

    Up to ``points`` rows come back unchanged; more are split into ``points // 2`` runs of about
    equal length, each giving two rows at its first and last time: the lowest and the highest
    value of each column in the order they occurred (NaN where a run holds no number).
    """
    count = len(times)
    if count <= points:
        return times, columns
    runs = points // 2
    edges = np.linspace(0, count, runs + 1).astype(np.int64)
    firsts, lasts = edges[:-1], edges[1:] - 1
    out_times = np.empty(2 * runs)
    out_times[0::2], out_times[1::2] = times[firsts], times[lasts]
    out: dict[str, np.ndarray] = {}
    for name, column in columns.items():
        result = np.full(2 * runs, np.nan)
        for run, (first, last) in enumerate(zip(firsts, lasts)):
            part = column[first : last + 1]
            if not np.isfinite(part).any():
                continue
            low, high = int(np.nanargmin(part)), int(np.nanargmax(part))
            pair = (part[low], part[high]) if low <= high else (part[high], part[low])
            result[2 * run], result[2 * run + 1] = pair
        out[name] = result
    return out_times, out


def _numeric(cells: list[str]) -> np.ndarray | None:
    """The cells as float64 (NaN for empty ones), or None unless every other cell is a number."""
    values = np.full(len(cells), np.nan)
    for row, cell in enumerate(cells):
        if cell == "":
            continue
        try:
            values[row] = float(cell)
        except ValueError:
            return None
    return values if np.isfinite(values).any() else None


def spread(count: int, most: int) -> np.ndarray:
    """Indices of at most ``most`` of ``count`` items, evenly spread, the first and last included."""
    if count <= most:
        return np.arange(count)
    return np.unique(np.linspace(0, count - 1, most).round().astype(np.int64))


def _label(stream: Stream, index: int) -> str:
    if isinstance(stream, ArrayStream):
        return f"array {index}"
    value = stream.value(index)
    text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"), default=str)
    text = " ".join(text.split())
    return text if len(text) <= LABEL_CHARS else text[: LABEL_CHARS - 1] + "…"


def _relative(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()


def _number(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def _times(values: np.ndarray) -> list[float]:
    return [float(value) for value in np.round(values, 6)]


def _values(values: np.ndarray) -> list[float | None]:
    return [float(value) if math.isfinite(value) else None for value in values.tolist()]
