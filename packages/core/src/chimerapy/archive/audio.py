"""Audio streams: ``name.wav``, ``name.audio.json`` and ``name.blocks.csv``.

``times`` holds one time per saved block (the time of its first sample). :meth:`AudioStream.samples`
returns every sample with what is needed to time each one: sample ``j`` of block ``k`` (which
starts at sample index ``i_k`` and time ``t_k``) was taken at ``t_k + (j - i_k) / rate``.
A WAV cut short by a crash is read up to its last whole sample frame, whatever its header says.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from chimerapy.archive.errors import ArchiveError
from chimerapy.archive.files import numeric_columns
from chimerapy.archive.stream import Stream

__all__ = ["AudioSamples", "AudioStream", "WavLayout", "wav_layout"]

_FORMATS: dict[tuple[int, int], np.dtype[Any]] = {(1, 16): np.dtype("<i2"), (3, 32): np.dtype("<f4"), (1, 32): np.dtype("<i4")}


@dataclass(frozen=True)
class WavLayout:
    """Where a WAV file's samples are and how they are stored."""

    rate: int
    channels: int
    dtype: np.dtype[Any]
    data_offset: int
    frames: int


def wav_layout(path: Path) -> WavLayout:
    """Read a WAV header; ``frames`` counts the whole sample frames actually in the file.

    Raises:
        ArchiveError: not a RIFF/WAVE file, or a sample format the recorder never writes.
    """
    size = path.stat().st_size
    with path.open("rb") as file:
        head = file.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            raise ArchiveError(f"{path} is not a WAV file (no RIFF/WAVE header)")
        fmt: tuple[int, int, int, int] | None = None
        while True:
            chunk = file.read(8)
            if len(chunk) < 8:
                raise ArchiveError(f"{path} has no data chunk")
            kind, length = struct.unpack("<4sI", chunk)
            if kind == b"fmt ":
                body = file.read(length)
                tag, channels, rate = struct.unpack("<HHI", body[:8])
                bits = struct.unpack("<H", body[14:16])[0]
                if tag == 0xFFFE and len(body) >= 26:  # WAVE_FORMAT_EXTENSIBLE: the sub-format
                    tag = struct.unpack("<H", body[24:26])[0]
                fmt = (tag, channels, rate, bits)
            elif kind == b"data":
                break
            else:
                file.seek(length + (length & 1), 1)
        offset = file.tell()
    if fmt is None:
        raise ArchiveError(f"{path} has no fmt chunk before its data")
    tag, channels, rate, bits = fmt
    dtype = _FORMATS.get((tag, bits))
    if dtype is None:
        raise ArchiveError(f"{path}: WAV format {tag} with {bits} bits is not one ChimeraPy writes")
    frames = (size - offset) // (dtype.itemsize * channels)
    return WavLayout(rate, channels, dtype, offset, frames)


@dataclass(frozen=True)
class AudioSamples:
    """The samples of an audio stream and the times of its blocks.

    Attributes:
        data: ``(n, channels)`` samples as saved (``int16`` or ``float32``), memory-mapped.
        rate: samples per second.
        block_index: the first sample index of each block.
        block_times: the Manager time of each block's first sample.
    """

    data: np.ndarray
    rate: int
    block_index: np.ndarray
    block_times: np.ndarray

    def time_of(self, index: Any) -> np.ndarray:
        """The Manager time of each sample index in ``index`` (an int or an array)."""
        indices = np.asarray(index, dtype=np.int64)
        if not len(self.block_index):
            return np.full(indices.shape, np.nan)
        block = np.clip(np.searchsorted(self.block_index, indices, side="right") - 1, 0, None)
        return self.block_times[block] + (indices - self.block_index[block]) / self.rate

    def times(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """The Manager time of every sample in ``[start, stop)`` (float64)."""
        stop = len(self.data) if stop is None else min(stop, len(self.data))
        return self.time_of(np.arange(start, stop))

    def index_at(self, t: float) -> int:
        """The index of the latest sample taken at or before Manager time ``t``; -1 if none."""
        block = int(np.searchsorted(self.block_times, t, side="right")) - 1
        if block < 0:
            return -1
        index = int(self.block_index[block] + np.floor((t - self.block_times[block]) * self.rate))
        return min(index, len(self.data) - 1)


class AudioStream(Stream):
    """A recorded audio stream; ``times`` holds one time per block, ``samples()`` every sample."""

    kind = "audio"

    @cached_property
    def info(self) -> dict[str, Any]:
        """``name.audio.json`` (``start_time``, ``rate``, ``channels``, ``dtype``, ...), or {}."""
        path = self.file("meta")
        if path is None:
            self.notes.append("no .audio.json: rate and channels come from the WAV header")
            return {}
        try:
            return dict(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, RecursionError) as error:
            self.notes.append(f"{path.name} is unreadable ({error}); using the WAV header")
            return {}

    @cached_property
    def layout(self) -> WavLayout:
        """The WAV file's sample format and length."""
        path = self.file("wav")
        if path is None:
            raise ArchiveError(f"stream {self.key!r}: its WAV file is missing from {self.folder}")
        return wav_layout(path)

    @property
    def rate(self) -> int:
        """Samples per second."""
        return self.layout.rate

    @property
    def channels(self) -> int:
        """Samples per frame."""
        return self.layout.channels

    @cached_property
    def _blocks(self) -> tuple[np.ndarray, np.ndarray]:
        frames = self.layout.frames if self.file("wav") is not None else 0
        path = self.file("blocks")
        if path is None:
            start = self.info.get("start_time")
            if start is None or not frames:
                return np.empty(0, np.int64), np.empty(0)
            self.notes.append("no blocks file: one block from the start time")
            return np.zeros(1, np.int64), np.array([float(start)])
        columns, torn = numeric_columns(path, ["sample_index", "timestamp"])
        self._note_torn(path, torn)
        times, index = columns["timestamp"], columns["sample_index"].astype(np.int64)
        keep = index < frames
        if not keep.all():
            self.notes.append(
                f"{int((~keep).sum())} blocks listed in {path.name} never reached the WAV; left out"
            )
        return index[keep], times[keep]

    def _load_times(self) -> np.ndarray:
        return self._blocks[1]

    def samples(self) -> AudioSamples:
        """Every sample (memory-mapped, read-only) and the block times to time each one."""
        layout = self.layout
        path = self.file("wav")
        assert path is not None
        data: np.ndarray
        if layout.frames:
            data = np.memmap(path, dtype=layout.dtype, mode="r", offset=layout.data_offset,
                             shape=(layout.frames, layout.channels))
        else:
            data = np.empty((0, layout.channels), layout.dtype)
        index, times = self._blocks
        return AudioSamples(np.asarray(data), layout.rate, index, times)

    def block(self, index: int) -> np.ndarray:
        """The samples of block ``index``: ``(n, channels)``."""
        index = self._check_index(index)
        blocks = self._blocks[0]
        stop = int(blocks[index + 1]) if index + 1 < len(blocks) else self.layout.frames
        return self.samples().data[int(blocks[index]) : stop]

    def value(self, index: int) -> np.ndarray:
        return self.block(index)
