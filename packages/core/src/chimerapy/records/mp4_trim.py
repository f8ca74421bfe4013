"""Trim a fragmented MP4 cut short by a crash back to its last complete fragment.

A fragmented MP4 is a run of top-level boxes (``ftyp``, ``moov``, then ``moof`` + ``mdat``
pairs), each starting with its size. A process killed while writing leaves a last box shorter
than its declared size, or a ``moof`` without its ``mdat``; players stop at such a tail with an
error. Trimming keeps every complete fragment and drops only the torn tail.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

__all__ = ["complete_length", "trim_mp4"]


def top_level_boxes(file: BinaryIO, total: int) -> Iterator[tuple[int, int, bytes]]:
    """Yield ``(offset, size, type)`` of each top-level box, stopping at a torn or invalid one."""
    offset = 0
    while offset + 8 <= total:
        file.seek(offset)
        head = file.read(16)
        size, kind = struct.unpack(">I4s", head[:8])
        if size == 1:
            if len(head) < 16:
                return
            size = struct.unpack(">Q", head[8:16])[0]
        elif size == 0:
            size = total - offset
        if size < 8 or offset + size > total:
            return
        yield offset, size, kind
        offset += size


def complete_length(boxes: Iterator[tuple[int, int, bytes]]) -> int:
    """The end of the last whole box that is not a ``moof`` waiting for its ``mdat``."""
    keep = 0
    for offset, size, kind in boxes:
        if kind != b"moof":
            keep = offset + size
    return keep


def trim_mp4(path: Path) -> int:
    """Cut ``path`` after its last complete fragment; returns the bytes removed (0 if whole)."""
    path = Path(path)
    total = path.stat().st_size
    with path.open("rb") as file:
        keep = complete_length(top_level_boxes(file, total))
    if keep == 0 or keep >= total:
        return 0
    with path.open("r+b") as file:
        file.truncate(keep)
    return total - keep
