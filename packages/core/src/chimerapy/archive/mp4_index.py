"""How many frames a fragmented MP4 holds, read from its fragment headers without decoding.

Each complete fragment is a ``moof`` box (whose ``traf``/``trun`` boxes give the sample count)
followed by its ``mdat``. A torn tail (see :mod:`chimerapy.records.mp4_trim`) is not counted.
"""

from __future__ import annotations

import struct
from pathlib import Path

from chimerapy.records.mp4_trim import top_level_boxes

__all__ = ["fragment_frames", "fragments"]

_CONTAINERS = {b"traf"}


def fragments(path: Path) -> list[tuple[int, int]] | None:
    """``(base decode time, frames)`` of each complete fragment of ``path`` (the time in the
    track's timescale, -1 if the fragment has no ``tfdt``); ``None`` if it is not fragmented."""
    total = Path(path).stat().st_size
    found: list[tuple[int, int]] = []
    pending: tuple[int, int] | None = None
    fragmented = False
    with Path(path).open("rb") as file:
        for offset, size, kind in top_level_boxes(file, total):
            if kind == b"moof":
                fragmented = True
                file.seek(offset + 8)
                pending = _fragment(file.read(size - 8))
            elif kind == b"mdat" and pending is not None:
                found.append(pending)
                pending = None
    return found if fragmented else None


def fragment_frames(path: Path) -> int | None:
    """Frames in the complete fragments of ``path``; ``None`` if it is not a fragmented MP4."""
    found = fragments(path)
    return None if found is None else sum(frames for _, frames in found)


def _fragment(payload: bytes) -> tuple[int, int]:
    """The ``tfdt`` time and the sum of ``trun`` sample counts in a ``moof``'s boxes."""
    count, decode_time, offset = 0, -1, 0
    while offset + 8 <= len(payload):
        size, kind = struct.unpack(">I4s", payload[offset : offset + 8])
        if size < 8:
            break
        body = payload[offset + 8 : offset + size]
        if kind in _CONTAINERS:
            inner_time, inner_count = _fragment(body)
            count += inner_count
            decode_time = inner_time if decode_time < 0 else decode_time
        elif kind == b"trun" and len(body) >= 8:
            count += struct.unpack(">I", body[4:8])[0]
        elif kind == b"tfdt" and len(body) >= 8:
            decode_time = struct.unpack(">Q", body[4:12])[0] if body[0] == 1 else struct.unpack(">I", body[4:8])[0]
        offset += size
    return decode_time, count
