"""How many frames a fragmented MP4 holds, read from its fragment headers without decoding.

Each complete fragment is a ``moof`` box (whose ``traf``/``trun`` boxes give the sample count)
followed by its ``mdat``. A torn tail (see :mod:`chimerapy.records.mp4_trim`) is not counted.
"""

from __future__ import annotations

import struct
from pathlib import Path

from chimerapy.records.mp4_trim import top_level_boxes

__all__ = ["fragment_frames"]

_CONTAINERS = {b"traf"}


def fragment_frames(path: Path) -> int | None:
    """Frames in the complete fragments of ``path``; ``None`` if it is not a fragmented MP4."""
    total = Path(path).stat().st_size
    frames, pending, fragmented = 0, 0, False
    with Path(path).open("rb") as file:
        for offset, size, kind in top_level_boxes(file, total):
            if kind == b"moof":
                fragmented = True
                file.seek(offset + 8)
                pending = _trun_samples(file.read(size - 8))
            elif kind == b"mdat":
                frames, pending = frames + pending, 0
    return frames if fragmented else None


def _trun_samples(payload: bytes) -> int:
    """The sum of ``trun`` sample counts among the boxes in ``payload`` (recursing into ``traf``)."""
    count, offset = 0, 0
    while offset + 8 <= len(payload):
        size, kind = struct.unpack(">I4s", payload[offset : offset + 8])
        if size < 8:
            break
        body = payload[offset + 8 : offset + size]
        if kind in _CONTAINERS:
            count += _trun_samples(body)
        elif kind == b"trun" and len(body) >= 8:
            count += struct.unpack(">I", body[4:8])[0]
        offset += size
    return count
