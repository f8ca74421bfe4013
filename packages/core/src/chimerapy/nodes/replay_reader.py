"""What ``core.replay`` reads of a session: each recorded stream's times and its items in order.

A minimal reader, limited to playing streams back: it finds the streams of a session folder
(``<session>/<worker>/<node>/`` or ``<session>/<node>/``) by their files (see
:mod:`chimerapy.records`) and yields each stream's items, in order, as the records ``core.replay``
sends. Torn last lines (a session cut short by a crash) are left out; a video's frames stop at the
shorter of its MP4 and its timestamps.
"""

from __future__ import annotations

import csv
import json
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np

__all__ = ["RecordedStream", "find_streams", "parse_cell"]

_WAV_DTYPES: dict[tuple[int, int], np.dtype] = {(1, 16): np.dtype("<i2"), (3, 32): np.dtype("<f4")}
_PNG_LAYOUTS = {"gray": "gray", "gray16be": "gray16le", "rgba": "bgra", "ya8": "gray"}


@dataclass(frozen=True)
class RecordedStream:
    """One recorded stream: the record ``name`` of ``node`` (on ``worker``) of kind ``kind``.

    Attributes:
        kind: ``video``, ``image``, ``audio``, ``tabular``, ``json``, ``text`` or ``array``.
        folder: the node's folder.
    """

    worker: str
    node: str
    name: str
    kind: str
    folder: Path

    @property
    def key(self) -> str:
        """``"node/name"``."""
        return f"{self.node}/{self.name}"

    def times(self) -> np.ndarray:
        """The Manager-aligned time of every item (float64), in file order."""
        return np.array([time for time, _ in self._index()], dtype=np.float64)

    def items(self) -> Iterator[dict[str, Any]]:
        """The records of every item, in order (see :mod:`chimerapy.nodes.replay`)."""
        return getattr(self, f"_{self.kind}_items")()

    # -- per kind --------------------------------------------------------------------------------

    def _index(self) -> list[tuple[float, list[str]]]:
        """``(time, row)`` of every complete row of the stream's index file."""
        index_file, time_column = {
            "video": (f"{self.name}.timestamps.csv", 1),
            "text": (f"{self.name}.timestamps.csv", 1),
            "image": (f"{self.name}/timestamps.csv", 1),
            "audio": (f"{self.name}.blocks.csv", 1),
            "tabular": (f"{self.name}.csv", 0),
            "array": (f"{self.name}.arrays.csv", 2),
        }.get(self.kind, ("", 0))
        if self.kind == "json":
            return [(line["timestamp"], []) for line in self._json_lines()]
        rows = []
        for row in _csv_rows(self.folder / index_file)[1:]:
            try:
                rows.append((float(row[time_column]), row))
            except (IndexError, ValueError):
                break  # a torn last row
        return rows

    def _video_items(self) -> Iterator[dict[str, Any]]:
        count = len(self._index())
        with av.open(str(self.folder / f"{self.name}.mp4")) as container:
            for index, frame in enumerate(container.decode(video=0)):
                if index >= count:
                    return
                yield {"frame": frame.to_ndarray(format="bgr24"), "frame_index": index}

    def _image_items(self) -> Iterator[dict[str, Any]]:
        for _, row in self._index():
            with av.open(str(self.folder / self.name / row[0])) as container:
                frame = next(container.decode(video=0))
                layout = _PNG_LAYOUTS.get(frame.format.name, "bgr24")
                yield {"frame": frame.to_ndarray(format=layout)}

    def _audio_items(self) -> Iterator[dict[str, Any]]:
        rate, channels, samples = _read_wav(self.folder / f"{self.name}.wav")
        starts = [int(row[0]) for _, row in self._index()]
        for number, start in enumerate(starts):
            stop = starts[number + 1] if number + 1 < len(starts) else len(samples)
            if start >= len(samples):
                return
            yield {"samples": samples[start:stop], "rate": rate, "channels": channels, "sample_index": start}

    def _tabular_items(self) -> Iterator[dict[str, Any]]:
        header = _csv_rows(self.folder / f"{self.name}.csv")[0]
        for _, row in self._index():
            yield {column: parse_cell(cell) for column, cell in zip(header[1:], row[1:], strict=False)}

    def _json_items(self) -> Iterator[dict[str, Any]]:
        for line in self._json_lines():
            yield {"data": line["data"]}

    def _text_items(self) -> Iterator[dict[str, Any]]:
        data = (self.folder / f"{self.name}.txt").read_bytes()
        offsets = [int(row[0]) for _, row in self._index()]
        for number, start in enumerate(offsets):
            stop = offsets[number + 1] if number + 1 < len(offsets) else len(data)
            yield {"text": data[start:stop].decode("utf-8", errors="replace")}

    def _array_items(self) -> Iterator[dict[str, Any]]:
        loaded: dict[str, np.ndarray] = {}
        for _, row in self._index():
            stack = loaded.get(row[0])
            if stack is None:
                loaded.clear()  # one file at a time
                stack = loaded[row[0]] = np.load(self.folder / row[0], mmap_mode="r")
            if int(row[1]) >= len(stack):
                return
            yield {"array": np.array(stack[int(row[1])])}

    def _json_lines(self) -> list[dict[str, Any]]:
        lines = []
        for text in (self.folder / f"{self.name}.jsonl").read_text(encoding="utf-8").splitlines():
            try:
                line = json.loads(text)
                lines.append({"timestamp": float(line["timestamp"]), "data": line["data"]})
            except (ValueError, KeyError, TypeError):
                break  # a torn last line
        return lines


def find_streams(session: Path) -> list[RecordedStream]:
    """Every stream under the session folder ``session``, sorted by Worker, node and name."""
    streams: list[RecordedStream] = []
    for first in _folders(session):
        streams += _node_streams(first, worker="")
        for second in _folders(first):
            streams += _node_streams(second, worker=first.name)
    return sorted(streams, key=lambda s: (s.worker, s.node, s.name))


def parse_cell(cell: str) -> Any:
    """A CSV cell as the recorder wrote it: ``""`` is None, then int, float, bool, else str."""
    if cell == "":
        return None
    for kind in (int, float):
        try:
            return kind(cell)
        except ValueError:
            pass
    if cell in ("True", "False"):
        return cell == "True"
    return cell


def _folders(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _node_streams(folder: Path, *, worker: str) -> list[RecordedStream]:
    found: dict[str, str] = {}
    names = {p.name for p in folder.iterdir() if p.is_file()}
    for file_name in sorted(names):
        for suffix, kind in ((".mp4", "video"), (".blocks.csv", "audio"), (".jsonl", "json"),
                             (".txt", "text"), (".arrays.csv", "array")):
            if file_name.endswith(suffix):
                found.setdefault(file_name[: -len(suffix)], kind)
    for file_name in sorted(names):
        stem = file_name[: -len(".csv")]
        if file_name.endswith(".csv") and stem not in found and not any(
            stem.endswith(s) for s in (".timestamps", ".blocks", ".arrays")
        ):
            header = _csv_rows(folder / file_name, first_only=True)
            if header and header[0][:1] == ["timestamp"]:
                found[stem] = "tabular"
    for sub in _folders(folder):
        if (sub / "timestamps.csv").is_file():
            found.setdefault(sub.name, "image")
    return [RecordedStream(worker, folder.name, name, kind, folder) for name, kind in found.items()]


def _csv_rows(path: Path, *, first_only: bool = False) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as file:
        if first_only:
            return [next(csv.reader(file), [])]
        return list(csv.reader(file))


def _read_wav(path: Path) -> tuple[int, int, np.ndarray]:
    """``(rate, channels, samples (n, channels))`` of a WAV the recorder wrote (memory-mapped)."""
    with path.open("rb") as file:
        head = file.read(12)
        if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            raise ValueError(f"{path} is not a WAV file")
        fmt = None
        while True:
            chunk = file.read(8)
            if len(chunk) < 8:
                raise ValueError(f"{path} has no data chunk")
            kind, length = struct.unpack("<4sI", chunk)
            if kind == b"data":
                break
            body = file.read(length + (length & 1))
            if kind == b"fmt ":
                tag, channels, rate = struct.unpack("<HHI", body[:8])
                fmt = (tag, channels, rate, struct.unpack("<H", body[14:16])[0])
        offset = file.tell()
    if fmt is None or (fmt[0], fmt[3]) not in _WAV_DTYPES:
        raise ValueError(f"{path}: not a sample format ChimeraPy writes")
    tag, channels, rate, bits = fmt
    dtype = _WAV_DTYPES[(tag, bits)]
    frames = (path.stat().st_size - offset) // (dtype.itemsize * channels)
    if not frames:
        return rate, channels, np.empty((0, channels), dtype)
    return rate, channels, np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=(frames, channels))
