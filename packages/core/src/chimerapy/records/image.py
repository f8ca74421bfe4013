"""Image records: one numbered PNG per saved image plus a timestamp per file.

Files of a record ``name``: the directory ``name/`` holding ``0.png``, ``1.png``, ... (numbered
from 0 in the order saved, as ChimeraPy 0.0.10 named them; ``timestamps.csv`` lists them in that
order) and ``timestamps.csv`` with ``file,timestamp``. Each PNG is written
under a temporary name and renamed, so a crash never leaves a truncated image; its row is
appended after the rename.

Images are ``uint8`` arrays of shape ``(H, W)`` (gray), ``(H, W, 3)`` (BGR) or ``(H, W, 4)``
(BGRA), or ``uint16`` ``(H, W)`` (16-bit gray, e.g. depth maps). Sizes may vary from image to
image. The PNG encoder is :func:`encode_png` (zlib, no extra dependency).
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from chimerapy.records.files import CsvFile, write_atomically
from chimerapy.records.kind import Accepted, RecordFormat, RecordWriter

__all__ = ["ImageFormat", "ImageWriter", "encode_png"]

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_COLOR_TYPES = {1: 0, 3: 2, 4: 6}  # channels -> PNG colour type (gray, RGB, RGBA)
_FILTER_UP = 2


class ImageFormat(RecordFormat):
    """Checks images; each image stands alone, so nothing is locked in."""

    kind = "image"
    method = "save_image"

    @staticmethod
    def file_names(name: str) -> tuple[str, ...]:
        return (name,)

    def accept(self, image: Any) -> Accepted:
        """Check one image; returns a private copy of it."""
        if not isinstance(image, np.ndarray):
            raise self.error(f"an image must be a numpy array, not {type(image).__name__}")
        gray = image.ndim == 2
        color = image.ndim == 3 and image.shape[2] in (3, 4)
        if not (image.dtype == np.uint8 and (gray or color)) and not (
            image.dtype == np.uint16 and gray
        ):
            raise self.error(
                f"an image must be uint8 (H, W), (H, W, 3) BGR or (H, W, 4) BGRA, or uint16 "
                f"(H, W); got {image.dtype} {image.shape}: convert with "
                "np.clip(image, 0, 255).astype(np.uint8)"
            )
        if 0 in image.shape:
            raise self.error(f"an image must not be empty, got shape {image.shape}")
        data = image.copy()
        return Accepted(data, nbytes=data.nbytes)

    def open_writer(self, directory: Path, on_file: Callable[[Path], None]) -> ImageWriter:
        return ImageWriter(directory, self.name, on_file)


class ImageWriter(RecordWriter):
    """Encodes each image to the next numbered PNG in ``name/``."""

    def __init__(self, directory: Path, name: str, on_file: Callable[[Path], None]) -> None:
        super().__init__(directory / name, name, on_file)
        self._timestamps = CsvFile(
            self._created(self.directory / "timestamps.csv"), ("file", "timestamp")
        )
        self._count = 0
        self._bytes = 0

    def write(self, timestamp: float, payload: np.ndarray) -> None:
        data = encode_png(payload)
        file_name = f"{self._count}.png"
        write_atomically(self.directory / file_name, data)
        self._on_file(self.directory / file_name)  # not kept in _paths: sizes are counted here
        self._timestamps.append((file_name, timestamp))
        self._count += 1
        self._bytes += len(data)

    def flush(self) -> None:
        self._timestamps.flush()

    def close(self) -> None:
        self._timestamps.close()

    def bytes_on_disk(self) -> int:
        return self._bytes + super().bytes_on_disk()


def encode_png(image: np.ndarray) -> bytes:
    """Encode an image (see the module docstring for shapes) as PNG bytes; pure.

    BGR(A) is stored as RGB(A). Every scanline uses the PNG "Up" filter, which numpy computes in
    one pass and zlib compresses well for camera images.
    """
    if image.ndim == 3:
        channels = image.shape[2]
        image = image[..., [2, 1, 0, 3][:channels]]  # BGR(A) -> RGB(A)
    else:
        channels = 1
    height, width = image.shape[:2]
    depth = image.dtype.itemsize * 8
    rows = np.ascontiguousarray(image, dtype=image.dtype.newbyteorder(">")).view(np.uint8)
    rows = rows.reshape(height, -1)
    filtered = np.empty((height, rows.shape[1] + 1), dtype=np.uint8)
    filtered[:, 0] = _FILTER_UP
    filtered[0, 1:] = rows[0]
    np.subtract(rows[1:], rows[:-1], out=filtered[1:, 1:])  # wraps modulo 256 as PNG wants
    header = struct.pack(">IIBBBBB", width, height, depth, _COLOR_TYPES[channels], 0, 0, 0)
    return b"".join(
        (
            _PNG_SIGNATURE,
            _chunk(b"IHDR", header),
            _chunk(b"IDAT", zlib.compress(filtered.tobytes(), 6)),
            _chunk(b"IEND", b""),
        )
    )


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
