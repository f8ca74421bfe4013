"""Numeric streams on one time base: the as-of join behind :meth:`Session.align`."""

from __future__ import annotations

from typing import Any

import numpy as np

from chimerapy.archive.audio import AudioStream
from chimerapy.archive.errors import ArchiveError
from chimerapy.archive.files import require_pandas
from chimerapy.archive.json_lines import JsonStream
from chimerapy.archive.stream import Stream
from chimerapy.archive.tabular import TabularStream

__all__ = ["align_streams", "numeric_columns"]


def numeric_columns(stream: Stream) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """A numeric stream's item times and its numeric columns (float64), by column name.

    Raises:
        ArchiveError: a stream that holds no numbers (video, image, text).
    """
    if isinstance(stream, AudioStream):
        samples = stream.samples()
        data = np.asarray(samples.data, dtype=np.float64)
        return samples.times(), {f"ch{k}": data[:, k] for k in range(data.shape[1])}
    if isinstance(stream, (TabularStream, JsonStream)):
        frame = stream.table()
        columns = {
            str(name): frame[name].to_numpy(dtype=np.float64)
            for name in frame.columns
            if name != "timestamp" and frame[name].dtype.kind in "biuf"
        }
        return stream.times, columns
    raise ArchiveError(
        f"stream {stream.key!r} is {stream.kind}: only tabular, json and audio streams are numeric"
    )


def align_streams(streams: list[Stream], times: Any = None) -> Any:
    """The as-of join of ``streams`` on ``times`` (default: the first stream's times)."""
    pandas = require_pandas()
    if not streams:
        raise ArchiveError("align needs at least one stream")
    base = np.asarray(streams[0].times if times is None else times, dtype=np.float64)
    columns: dict[str, np.ndarray] = {"timestamp": base}
    for stream in streams:
        item_times, values = numeric_columns(stream)
        index = np.searchsorted(item_times, base, side="right") - 1
        valid = index >= 0
        for name, column in values.items():
            aligned = np.full(len(base), np.nan)
            aligned[valid] = column[index[valid]]
            columns[f"{stream.key}/{name}"] = aligned
    return pandas.DataFrame(columns)
