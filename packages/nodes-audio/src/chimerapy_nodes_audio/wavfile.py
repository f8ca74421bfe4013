"""WavReader: reads WAV files block by block as numpy arrays, in the stream sample formats.

Python's :mod:`wave` reads only integer PCM; the recordings ChimeraPy writes may be IEEE float,
so this reader parses the RIFF chunks itself. Supported: PCM 8-bit (unsigned), 16, 24 and
32-bit, IEEE float 32 and 64-bit, plain or ``WAVE_FORMAT_EXTENSIBLE``, any channel count. A data
chunk whose size is 0 or 0xFFFFFFFF (a writer that never rewrote it) is read to the end of the
file.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import numpy as np

from chimerapy_nodes_audio.blocks import check_dtype, convert
from chimerapy_nodes_audio.errors import AudioFileError

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["WavReader"]

_PCM, _FLOAT, _EXTENSIBLE = 1, 3, 0xFFFE


class WavReader:
    """An open WAV file; :meth:`read` returns ``(n, channels)`` blocks.

    Args:
        path: the file.
        dtype: the format of the returned samples: ``"float32"`` (in [-1, 1)) or ``"int16"``.

    Raises:
        AudioFileError: the file is missing, not a WAV, or in an unsupported format.
    """

    def __init__(self, path: str | Path, *, dtype: str = "float32") -> None:
        self.path = Path(path)
        self.dtype = check_dtype(dtype)
        try:
            self._file: BinaryIO = open(self.path, "rb")  # noqa: SIM115 - owned until close()
        except OSError as error:
            raise AudioFileError(
                f"cannot open WAV file {str(self.path)!r}: {error.strerror}"
            ) from None
        try:
            self._parse()
        except BaseException:
            self._file.close()
            raise
        #: Frames read so far.
        self.position = 0

    def read(self, frames: int) -> np.ndarray:
        """Up to ``frames`` frames from the current position (fewer at the end, none past it)."""
        count = max(0, min(frames, self.frames - self.position))
        data = self._file.read(count * self._frame_size)
        count = len(data) // self._frame_size
        self.position += count
        return convert(self._decode(data[: count * self._frame_size], count), self.dtype)

    def rewind(self) -> None:
        """Go back to the first frame."""
        self._file.seek(self._data_offset)
        self.position = 0

    def close(self) -> None:
        """Close the file; idempotent."""
        self._file.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- parsing ---------------------------------------------------------------------------------

    def _fail(self, why: str) -> AudioFileError:
        return AudioFileError(f"{str(self.path)!r} is not a WAV file this node can play: {why}")

    def _parse(self) -> None:
        head = self._file.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            raise self._fail("no RIFF/WAVE header")
        fmt: bytes | None = None
        while True:
            header = self._file.read(8)
            if len(header) < 8:
                raise self._fail("no data chunk")
            tag, size = header[:4], struct.unpack("<I", header[4:])[0]
            if tag == b"fmt ":
                fmt = self._file.read(size + (size & 1))
            elif tag == b"data":
                if fmt is None:
                    raise self._fail("the data chunk comes before the fmt chunk")
                self._read_format(fmt)
                self._data_offset = self._file.tell()
                available = (self._file.seek(0, 2) - self._data_offset) // self._frame_size
                self._file.seek(self._data_offset)
                declared = size // self._frame_size
                self.frames = available if size in (0, 0xFFFFFFFF) else min(declared, available)
                return
            else:
                self._file.seek(size + (size & 1), 1)

    def _read_format(self, fmt: bytes) -> None:
        if len(fmt) < 16:
            raise self._fail("a truncated fmt chunk")
        tag, channels, rate, _, align, bits = struct.unpack("<HHIIHH", fmt[:16])
        if tag == _EXTENSIBLE:
            if len(fmt) < 26:
                raise self._fail("a truncated WAVE_FORMAT_EXTENSIBLE fmt chunk")
            tag = struct.unpack("<H", fmt[24:26])[0]
        width = (bits + 7) // 8
        supported = {_PCM: (1, 2, 3, 4), _FLOAT: (4, 8)}
        if tag not in supported or width not in supported[tag]:
            kind = {_PCM: "PCM", _FLOAT: "float"}.get(tag, f"format tag {tag:#x}")
            raise self._fail(f"{bits}-bit {kind} samples are not supported")
        if channels < 1 or rate < 1 or align != width * channels:
            raise self._fail(
                f"an inconsistent fmt chunk ({channels} channels, {rate} Hz, align {align})"
            )
        #: Sample frames per second and channels, from the header.
        self.rate, self.channels = rate, channels
        self._float, self._width, self._frame_size = tag == _FLOAT, width, align

    def _decode(self, data: bytes, count: int) -> np.ndarray:
        shape = (count, self.channels)
        if self._float:
            return np.frombuffer(data, f"<f{self._width}").reshape(shape).astype(np.float32)
        if self._width == 1:
            return ((np.frombuffer(data, np.uint8).astype(np.float32) - 128.0) / 128.0).reshape(
                shape
            )
        if self._width == 2:
            return np.frombuffer(data, "<i2").reshape(shape)
        if self._width == 3:
            raw = np.frombuffer(data, np.uint8).reshape(-1, 3).astype(np.int32)
            values = (raw[:, 0] | (raw[:, 1] << 8) | (raw[:, 2] << 16)) << 8 >> 8
            return (values.astype(np.float64) / 2.0**23).astype(np.float32).reshape(shape)
        return (
            (np.frombuffer(data, "<i4").astype(np.float64) / 2.0**31)
            .astype(np.float32)
            .reshape(shape)
        )
