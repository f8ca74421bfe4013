"""Audio records: a WAV file, its start time, and the timestamp of every saved block.

Files of a record ``name``:

* ``name.wav``: the samples as saved, interleaved, little-endian: PCM 16-bit for ``int16``
  input, IEEE float 32-bit (with a ``fact`` chunk) for ``float32``, any channel count. The RIFF
  and data sizes in the header are rewritten on every flush, so a file cut short by ``SIGKILL``
  is a valid WAV holding everything up to the last flush. A WAV cannot exceed 4 GiB: a record
  that reaches the limit fails (reported to ``on_error``) and keeps what it wrote.
* ``name.audio.json``: ``start_time`` (aligned time of the first sample), ``rate``,
  ``channels``, ``dtype``; rewritten on close with ``frames`` and ``duration``.
* ``name.blocks.csv``: ``sample_index,timestamp``, one row per saved block: the index of the
  block's first sample frame and the aligned time given for it, for drift analysis.
"""

from __future__ import annotations

import json
import operator
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from chimerapy.records.files import CsvFile, write_atomically
from chimerapy.records.kind import Accepted, RecordFormat, RecordWriter

__all__ = ["AudioFormat", "AudioWriter", "WavFile"]

_DTYPES: dict[str, np.dtype] = {"int16": np.dtype("<i2"), "float32": np.dtype("<f4")}
_WAVE_FORMAT_PCM = 1
_WAVE_FORMAT_IEEE_FLOAT = 3
_MAX_RIFF_SIZE = 0xFFFFFFFF


class AudioFormat(RecordFormat):
    """Checks sample blocks; locks in the dtype, rate and channel count of the first block."""

    kind = "audio"
    method = "save_audio"

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.dtype: str | None = None
        self.rate: int | None = None
        self.channels: int | None = None

    @staticmethod
    def file_names(name: str) -> tuple[str, ...]:
        return (f"{name}.wav", f"{name}.audio.json", f"{name}.blocks.csv")

    def accept(self, samples: Any, rate: Any, channels: Any) -> Accepted:
        """Check one block; returns a private ``(n, channels)`` little-endian copy of it."""
        rate = self._positive_int("rate", rate, self.rate)
        channels = self._positive_int("channels", channels, self.channels)
        if not isinstance(samples, np.ndarray):
            raise self.error(f"audio samples must be a numpy array, not {type(samples).__name__}")
        dtype = samples.dtype.name
        if dtype not in _DTYPES:
            raise self.error(
                f"audio samples must be int16 or float32, got {samples.dtype}; convert with "
                "samples.astype(np.float32) (or np.int16 for 16-bit PCM)"
            )
        if self.dtype is not None and dtype != self.dtype:
            raise self.error(
                f"dtype changed from {self.dtype} to {dtype}; a WAV keeps one sample format: "
                f"convert with samples.astype(np.{self.dtype})"
            )
        if not (samples.ndim == 2 and samples.shape[1] == channels) and not (
            samples.ndim == 1 and channels == 1
        ):
            raise self.error(
                f"audio samples of shape {samples.shape} do not match channels={channels}; "
                f"pass shape (n, {channels})" + (" or (n,)" if channels == 1 else "")
            )
        data = np.array(samples.reshape(len(samples), channels), dtype=_DTYPES[dtype], order="C")
        self.dtype, self.rate, self.channels = dtype, rate, channels
        return Accepted(data, nbytes=data.nbytes)

    def _positive_int(self, what: str, value: Any, locked: int | None) -> int:
        try:
            number = operator.index(value)
        except TypeError:
            raise self.error(f"{what} must be an int, got {value!r}") from None
        if number <= 0:
            raise self.error(f"{what} must be positive, got {number}")
        if locked is not None and number != locked:
            raise self.error(
                f"{what} changed from {locked} to {number}; a WAV keeps one {what}: "
                "save the new stream under another name"
            )
        return number

    def open_writer(self, directory: Path, on_file: Callable[[Path], None]) -> AudioWriter:
        assert self.dtype is not None and self.rate is not None and self.channels is not None
        return AudioWriter(
            directory, self.name, on_file, rate=self.rate, channels=self.channels, dtype=self.dtype
        )


class AudioWriter(RecordWriter):
    """Appends blocks to ``name.wav``; keeps ``name.audio.json`` and ``name.blocks.csv``."""

    def __init__(
        self,
        directory: Path,
        name: str,
        on_file: Callable[[Path], None],
        *,
        rate: int,
        channels: int,
        dtype: str,
    ) -> None:
        super().__init__(directory, name, on_file)
        self._meta: dict[str, Any] = {"rate": rate, "channels": channels, "dtype": dtype}
        self._wav = WavFile(
            self._created(directory / f"{name}.wav"), rate=rate, channels=channels, dtype=dtype
        )
        self._meta_path = self._created(directory / f"{name}.audio.json")
        blocks_path = self._created(directory / f"{name}.blocks.csv")
        self._blocks = CsvFile(blocks_path, ("sample_index", "timestamp"))

    def write(self, timestamp: float, payload: np.ndarray) -> None:
        if "start_time" not in self._meta:
            self._meta = {"start_time": timestamp, **self._meta}
            self._write_meta()
        self._blocks.append((self._wav.frames, timestamp))
        self._wav.append(payload)

    def flush(self) -> None:
        self._wav.flush()
        self._blocks.flush()

    def close(self) -> None:
        try:
            self._wav.close()
            frames, rate = self._wav.frames, self._meta["rate"]
            self._meta.update(frames=frames, duration=frames / rate)
            self._write_meta()
        finally:
            self._blocks.close()

    def _write_meta(self) -> None:
        text = json.dumps(
            {**self._meta, "wav": f"{self.name}.wav", "blocks": f"{self.name}.blocks.csv"}, indent=2
        )
        write_atomically(self._meta_path, text.encode("utf-8") + b"\n")


class WavFile:
    """A WAV file that stays valid while it grows.

    The header is written at once with empty sizes; :meth:`flush` rewrites the RIFF, ``fact``
    and data sizes to cover every byte appended so far and hands the file to the operating
    system. Blocks on disk.

    Args:
        path: the file to create; an existing file is replaced.
        rate: sample frames per second.
        channels: samples per frame.
        dtype: ``"int16"`` (PCM) or ``"float32"`` (IEEE float).
    """

    def __init__(self, path: Path, *, rate: int, channels: int, dtype: str) -> None:
        self.path = path
        self.frames = 0
        self._frame_size = _DTYPES[dtype].itemsize * channels
        self._float = dtype == "float32"
        self._data_bytes = 0
        self._file: BinaryIO = open(path, "wb")  # noqa: SIM115 - owned until close()
        header = wav_header(rate=rate, channels=channels, dtype=dtype)
        self._header_size = len(header)
        self._file.write(header)
        self.flush()

    def append(self, samples: np.ndarray) -> None:
        """Append ``(n, channels)`` little-endian samples (buffered until :meth:`flush`)."""
        data = samples.tobytes()
        if self._header_size + self._data_bytes + len(data) - 8 > _MAX_RIFF_SIZE:
            raise OSError(f"{self.path.name}: a WAV file cannot exceed 4 GiB")
        self._file.write(data)
        self._data_bytes += len(data)
        self.frames += len(samples)

    def flush(self) -> None:
        """Rewrite the sizes in the header and flush to the operating system."""
        file = self._file
        file.seek(4)
        file.write(struct.pack("<I", self._header_size + self._data_bytes - 8))
        if self._float:
            file.seek(self._header_size - 12)
            file.write(struct.pack("<I", self.frames))
        file.seek(self._header_size - 4)
        file.write(struct.pack("<I", self._data_bytes))
        file.seek(0, 2)
        file.flush()

    def close(self) -> None:
        """Flush and close; idempotent."""
        if not self._file.closed:
            try:
                self.flush()
            finally:
                self._file.close()


def wav_header(*, rate: int, channels: int, dtype: str) -> bytes:
    """The header of an empty WAV: ``RIFF``, ``fmt `` (and ``fact`` for floats), ``data``."""
    width = _DTYPES[dtype].itemsize
    if dtype == "float32":
        fmt = struct.pack(
            "<HHIIHHH", _WAVE_FORMAT_IEEE_FLOAT, channels, rate, rate * channels * width,
            channels * width, 8 * width, 0,
        )
        extra = b"fact" + struct.pack("<II", 4, 0)
    else:
        fmt = struct.pack(
            "<HHIIHH", _WAVE_FORMAT_PCM, channels, rate, rate * channels * width,
            channels * width, 8 * width,
        )
        extra = b""
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + extra + b"data" + b"\0" * 4
    return b"RIFF" + struct.pack("<I", len(body)) + body
