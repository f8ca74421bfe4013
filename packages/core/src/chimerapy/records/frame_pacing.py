"""Frame pacing: where each saved frame goes in a constant-frame-rate video, as pure code.

A video holds ``fps`` frames per second of wall time, so that frame index / fps is the time of
every frame for any reader. Frame times come from the saves: the first saved frame is index 0;
a frame saved at time ``t`` belongs at index ``round((t - t0) * fps)``. A frame saved late leaves
a gap that the previous frame fills (it is repeated); a frame saved before its slot is free (it
came faster than ``fps``) is dropped. Both are counted.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["FramePacer", "Placement"]


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

    def place(self, timestamp: float) -> Placement:
        """Where the frame saved at ``timestamp`` goes (times must not go backwards by much)."""
        if self._start is None:
            self._start = timestamp
            self._next = 1
            return Placement(0)
        slot = round((timestamp - self._start) * self.fps)
        if slot < self._next:
            self.dropped += 1
            return Placement(-1)
        gap = slot - self._next
        self.repeated += gap
        self._next = slot + 1
        return Placement(slot, repeat_previous=gap)
