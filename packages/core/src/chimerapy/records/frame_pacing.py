"""Frame pacing: where each saved frame goes in a constant-frame-rate video, as pure code.

A video holds ``fps`` frames per second of wall time, so that frame index / fps is the time of
every frame for any reader. Frame times come from the saves: the first saved frame is index 0;
a frame saved at time ``t`` belongs at index ``round((t - t0) * fps)`` (rounding keeps frames
that come at about ``fps`` with some jitter each in its own slot). A frame saved late leaves a gap
that the previous frame fills (it is repeated); a frame saved before its slot is free (it came
faster than ``fps``) is dropped. Both are counted.

When several frames fall in one slot the writer keeps the newest (it holds one frame back), and
it places the record's last frame with ``floor`` instead, so that no slot lies past the last
save: the video's duration (frames / fps) is the span of the saves plus at most one frame.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["FramePacer", "Placement"]

#: Slack, in frames, for the last frame's ``floor``: UNIX times are exact to about 2e-7 s, so a
#: frame saved exactly on time may compute as a hair early.
_TOLERANCE = 1e-3


@dataclass(frozen=True)
class Placement:
    """Where a saved frame goes: ``repeat_previous`` copies of the previous frame fill the gap
    before it, then the frame itself at ``index``; ``index`` is -1 for a dropped frame."""

    index: int
    repeat_previous: int = 0

    @property
    def dropped(self) -> bool:
        return self.index < 0


class FramePacer:
    """Places frames saved at given times on a grid of ``fps`` frames per second.

    Args:
        fps: the video's frame rate.
    """

    def __init__(self, fps: float) -> None:
        if not fps > 0:
            raise ValueError(f"fps must be positive, got {fps!r}")
        self.fps = float(fps)
        self._start: float | None = None
        self._next = 0  # the next free index
        #: Copies of earlier frames written to fill gaps.
        self.repeated = 0
        #: Frames saved faster than fps and left out.
        self.dropped = 0

    @property
    def frames(self) -> int:
        """Frames in the video so far (written and repeated)."""
        return self._next

    def slot(self, timestamp: float) -> int:
        """The slot ``round((t - t0) * fps)`` of a frame saved at ``timestamp`` (the first
        frame seen sets ``t0``)."""
        if self._start is None:
            self._start = timestamp
        return round((timestamp - self._start) * self.fps)

    def drop(self) -> None:
        """Count a frame that was left out."""
        self.dropped += 1

    def place(self, timestamp: float, *, last: bool = False) -> Placement:
        """Where the frame saved at ``timestamp`` goes; ``last`` for the record's final frame.

        A frame whose slot is taken already is dropped.
        """
        if self._start is None:
            self._start = timestamp
        position = (timestamp - self._start) * self.fps
        slot = math.floor(position + _TOLERANCE) if last else round(position)
        if slot < self._next:
            self.dropped += 1
            return Placement(-1)
        gap = slot - self._next
        self.repeated += gap
        self._next = slot + 1
        return Placement(slot, repeat_previous=gap)
