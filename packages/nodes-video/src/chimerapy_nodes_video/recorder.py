"""``video.recorder``: records the frames of any image input into the session's archive."""

from __future__ import annotations

from itertools import pairwise

import chimerapy as cp
import numpy as np
from chimerapy.records.naming import check_name

from ._frames import FrameRef, find_frame
from ._pacing import check_fps

__all__ = ["VideoRecorder", "estimate_fps"]

#: The most frame bytes held while the frame rate is being measured.
MEASURE_BYTES = 256 * 1024 * 1024


class VideoRecorder(cp.Node):
    """Records every frame it receives into an H.264 video in the session archive.

    The frame of a step is the ``frame`` record of the first input chunk that has one, else the
    first ``content_type="image"`` record (uint8 BGR or gray). Each frame is saved with
    :meth:`chimerapy.Node.save_video` and its capture time (the chunk's ``timestamp`` record,
    else the time it was sent), so the archive's ``<record_name>.timestamps.csv`` holds capture
    times on the Manager's clock beside ``<record_name>.mp4`` (H.264, constant frame rate).

    Frame rate: ``fps`` when given; otherwise measured from the capture times of the first
    ``measure_seconds`` of frames (held in memory meanwhile, at most 256 MB; see
    :func:`estimate_fps`: a stall of the source while measuring does not skew it). Frames the
    source dropped are not filled in: the video then plays them closer together, and the
    timestamps file keeps the truth.

    A frame whose size differs from the first one starts a new video ``<record_name>.1``
    (then ``.2``...), with a warning, since a video keeps one size.

    Args:
        name: the node's name.
        record_name: the name of the video in the archive (files ``<record_name>.mp4`` and
            ``<record_name>.timestamps.csv``).
        fps: the video's frame rate; ``None``: measured.
        measure_seconds: how long to measure the rate when ``fps`` is ``None``.
    """

    kind = "sink"

    def __init__(
        self,
        name: str = "recorder",
        *,
        record_name: str = "video",
        fps: float | None = None,
        measure_seconds: float = 1.0,
    ) -> None:
        super().__init__(name)
        what = f"video.recorder {name!r}"
        check_name(record_name)  # a RecordError (a ValueError) naming what to change
        if not isinstance(measure_seconds, (int, float)) or measure_seconds <= 0:
            raise ValueError(f"{what}: measure_seconds must be > 0, got {measure_seconds!r}")
        self.record_name = record_name
        self.fps = check_fps(fps, what, optional=True)
        self.measure_seconds = float(measure_seconds)

    # -- node ------------------------------------------------------------------------------------

    def prep(self) -> None:
        self._fps = self.fps
        self._pending: list[tuple[np.ndarray, float]] = []
        self._pending_bytes = 0
        self._shape: tuple[int, ...] | None = None
        self._part = 0
        self._frames = 0
        self._warned_no_frame = False

    def step(self, data_chunks: dict[str, cp.DataChunk]) -> None:
        found = find_frame(data_chunks, any_image=True)
        if found is None:
            self._no_frame(data_chunks)
            return
        if self._shape is not None and found.frame.shape != self._shape:
            self._new_part(found)
        self._shape = found.frame.shape
        if self._fps is not None:
            self._save(found.frame, found.timestamp)
            return
        frame = np.array(found.frame)  # a private copy: held until the rate is known
        self._pending.append((frame, found.timestamp))
        self._pending_bytes += frame.nbytes
        span = found.timestamp - self._pending[0][1]
        if span >= self.measure_seconds or (self._pending_bytes >= MEASURE_BYTES and len(self._pending) > 1):
            self._flush_pending()
        return

    def teardown(self) -> None:
        if self._pending:
            self._flush_pending()
        self.logger.info("recorded %d frames into %r at %.4g fps", self._frames, self._video_name(),
                         self._fps or 0.0)

    # -- internals -------------------------------------------------------------------------------

    def _video_name(self) -> str:
        return self.record_name if not self._part else f"{self.record_name}.{self._part}"

    def _save(self, frame: np.ndarray, timestamp: float) -> None:
        if self._fps is None:  # never: the rate is known before the first frame is saved
            raise RuntimeError("video.recorder saved a frame before knowing its rate")
        # every frame it receives, one per 1/fps (not paced to the wall clock as save_video's default)
        self.save_video(self._video_name(), frame, self._fps, timestamp=timestamp, timing="frames")
        self._frames += 1

    def _flush_pending(self) -> None:
        times = [t for _, t in self._pending]
        if self._fps is None:
            self._fps = estimate_fps(times)
            if self._fps is None:
                self._fps = 30.0
                self.logger.warning("too few frames to measure the frame rate; recording at %g fps "
                                    "(set fps= on the recorder)", self._fps)
            else:
                self.logger.info("measured %.4g fps over %d frames; recording %r at that rate",
                                 self._fps, len(times), self._video_name())
        for frame, timestamp in self._pending:
            self._save(frame, timestamp)
        self._pending.clear()
        self._pending_bytes = 0

    def _new_part(self, found: FrameRef) -> None:
        if self._pending:
            self._flush_pending()
        self._part += 1
        self.logger.warning("frame size changed from %s to %s (from %r); recording continues in %r",
                            self._shape, found.frame.shape, found.producer, self._video_name())

    def _no_frame(self, data_chunks: dict[str, cp.DataChunk]) -> None:
        if not self._warned_no_frame:
            self._warned_no_frame = True
            held = {p: c.keys() for p, c in data_chunks.items()}
            self.logger.warning("no image in the inputs (records: %s); video.recorder records a 'frame' "
                                "or content_type='image' record", held)


def estimate_fps(timestamps: list[float]) -> float | None:
    """The frame rate of frames captured at ``timestamps``, or ``None`` with fewer than two.

    The mean of the intervals between frames, leaving out those under half or over one and a
    half times the median (a stall of the source and the burst that catches up after it), so a
    hiccup while measuring does not set the rate of the whole video. A rate within 2% of a whole
    number is rounded to it; others are rounded to 0.01.
    """
    intervals = sorted(b - a for a, b in pairwise(timestamps))
    if not intervals or intervals[len(intervals) // 2] <= 0:
        return None
    median = intervals[len(intervals) // 2]
    kept = [d for d in intervals if 0.5 * median <= d <= 1.5 * median]
    fps = len(kept) / sum(kept)
    whole = round(fps)
    if whole >= 1 and abs(fps - whole) <= 0.02 * whole:
        return float(whole)
    return max(0.01, round(fps, 2))
