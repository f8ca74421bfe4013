"""Video records: H.264 in an MP4 plus one aligned timestamp per saved frame.

Files of a record ``name``:

* ``name.mp4``: H.264 (libx264 through PyAV), ``yuv420p``. While recording the MP4 is
  fragmented (``frag_keyframe+empty_moov+default_base_moof``) with a keyframe about every second
  and x264 tuned for zero latency, so each second of video reaches the disk as a self-contained
  fragment and a file cut short by ``SIGKILL`` stays playable up to its last complete fragment.
  When the record closes, the packets are copied (not re-encoded) into an ordinary MP4 whose
  header gives the frame count and duration; it replaces the fragmented file only once complete.
* ``name.timestamps.csv``: ``frame_index,timestamp``, one row per saved frame: the index at which
  the frame is in the video (-1 if it was dropped) and the Manager-aligned time it was saved
  at. After a crash it may hold up to about a second more rows than the MP4 has frames.

Timing (the ``timing`` of the first save of a record):

* ``"cfr"`` (what ``Node.save_video`` does, as ChimeraPy 0.0.10 did): ``fps`` frames per second
  of wall time, frame ``i`` at ``i / fps`` after the first; a frame saved late is preceded by
  copies of the previous frame, a frame saved faster than ``fps`` is dropped (see
  :mod:`chimerapy.records.frame_pacing`). The video lasts as long as the saving did.
* ``"vfr"``: every frame, each at its own time (relative to the first) in a 1/90000 s time base.
* ``"frames"`` (the Recorder's default): every frame, frame ``i`` at ``i / fps``.

Frames are ``uint8`` arrays of shape ``(H, W, 3)`` in BGR order (OpenCV's convention) or
``(H, W)`` gray. H.264 in ``yuv420p`` needs even sizes: an odd height or width is padded to the
next even number by repeating the last row or column, so the video can be one pixel taller or
wider than the frames saved.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np

from chimerapy.records.files import CsvFile
from chimerapy.records.frame_pacing import FramePacer
from chimerapy.records.kind import Accepted, RecordFormat, RecordWriter

__all__ = ["MUXER_OPTIONS", "TIMINGS", "X264_OPTIONS", "VideoFormat", "VideoWriter", "finalize_mp4"]

log = logging.getLogger(__name__)

#: How frames are timed in the video (see the module docstring).
TIMINGS = ("cfr", "vfr", "frames")
_VFR_TIME_BASE = Fraction(1, 90000)

#: MP4 muxer options: fragments that each start at a keyframe, written as soon as they complete.
MUXER_OPTIONS = {"movflags": "frag_keyframe+empty_moov+default_base_moof", "flush_packets": "1"}
#: x264 options: no B-frames, no look-ahead, so no frame is held back in the encoder.
#: A keyframe exactly every ``gop_size`` frames (no scene-cut keyframes): one fragment a second.
X264_OPTIONS = {
    "preset": "veryfast",
    "tune": "zerolatency",
    "crf": "20",
    "x264-params": "scenecut=0",
}


class VideoFormat(RecordFormat):
    """Checks frames; locks in the first frame's shape and the frame rate."""

    kind = "video"
    method = "save_video"

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.shape: tuple[int, ...] | None = None
        self.fps: float | None = None
        self.timing: str | None = None

    @staticmethod
    def file_names(name: str) -> tuple[str, ...]:
        return (f"{name}.mp4", f"{name}.timestamps.csv")

    def accept(self, frame: Any, fps: Any, timing: str = "frames") -> Accepted:
        """Check one frame; returns a private C-contiguous copy of it."""
        if timing not in TIMINGS:
            raise self.error(f"timing must be one of {TIMINGS}, got {timing!r}")
        if self.timing is not None and timing != self.timing:
            raise self.error(f"timing changed from {self.timing!r} to {timing!r}; a video keeps one timing")
        if not isinstance(frame, np.ndarray):
            raise self.error(f"a video frame must be a numpy array, not {type(frame).__name__}")
        if frame.dtype != np.uint8:
            raise self.error(
                f"video frames must be uint8, got {frame.dtype}; convert with "
                "np.clip(frame, 0, 255).astype(np.uint8) (scale floats in [0, 1] by 255 first)"
            )
        if not (frame.ndim == 2 or (frame.ndim == 3 and frame.shape[2] == 3)) or 0 in frame.shape:
            raise self.error(
                f"a video frame must have shape (H, W, 3) (BGR) or (H, W) (gray), got "
                f"{frame.shape}; convert BGRA with frame[..., :3]"
            )
        if self.shape is not None and frame.shape != self.shape:
            raise self.error(
                f"frame shape {frame.shape} differs from the record's first frame {self.shape}; "
                "a video keeps one size: resize the frame or save it under another name"
            )
        fps = self._check_fps(fps)
        data = np.array(frame, dtype=np.uint8, order="C", copy=True)
        self.shape, self.fps, self.timing = frame.shape, fps, timing
        return Accepted(data, nbytes=data.nbytes)

    def _check_fps(self, fps: Any) -> float:
        try:
            value = float(fps)
        except (TypeError, ValueError):
            raise self.error(f"fps must be a number, got {fps!r}") from None
        if not math.isfinite(value) or value <= 0:
            raise self.error(f"fps must be a positive number, got {fps!r}")
        if self.fps is not None and value != self.fps:
            raise self.error(
                f"fps changed from {self.fps} to {value}; a video keeps one frame rate: "
                "save the new rate under another name"
            )
        return value

    def open_writer(self, directory: Path, on_file: Callable[[Path], None]) -> VideoWriter:
        assert self.fps is not None  # set by the first accepted frame
        return VideoWriter(directory, self.name, on_file, fps=self.fps, timing=self.timing or "frames")


class VideoWriter(RecordWriter):
    """Encodes frames to ``name.mp4`` and their timestamps to ``name.timestamps.csv``.

    Args:
        fps: the record's frame rate; frame ``i`` gets pts ``i`` in a time base of ``1 / fps``
            (``fps`` as a fraction with a denominator of at most 1001, so 29.97 stays exact).
        timing: ``"cfr"``, ``"vfr"`` or ``"frames"`` (see the module docstring).
    """

    def __init__(
        self, directory: Path, name: str, on_file: Callable[[Path], None], *, fps: float,
        timing: str = "frames",
    ) -> None:
        super().__init__(directory, name, on_file)
        self._rate = Fraction(fps).limit_denominator(1001)
        self._gop = max(1, round(fps))
        self._timing = timing
        self._pacer = FramePacer(fps) if timing == "cfr" else None
        self._time_base = _VFR_TIME_BASE if timing == "vfr" else 1 / self._rate
        self._first_time: float | None = None
        self._last_pts = -1
        self._previous: Any = None  # the last frame encoded, to fill gaps (cfr)
        self._pending: tuple[float, Any] | None = None  # cfr: the newest frame, placed when the next comes
        self._container: Any = None
        self._stream: Any = None
        self._timestamps: CsvFile | None = None
        self._path: Path | None = None
        self._frames = 0

    def _open(self, height: int, width: int) -> None:
        path = self._path = self._created(self.directory / f"{self.name}.mp4")
        self._container = av.open(str(path), mode="w", format="mp4", options=MUXER_OPTIONS)
        stream = self._container.add_stream("libx264", rate=self._rate, options=X264_OPTIONS)
        stream.width, stream.height = width + width % 2, height + height % 2
        stream.pix_fmt = "yuv420p"
        stream.codec_context.time_base = self._time_base
        if self._timing == "vfr":
            stream.time_base = self._time_base
        stream.codec_context.gop_size = self._gop
        self._stream = stream
        csv_path = self._created(self.directory / f"{self.name}.timestamps.csv")
        self._timestamps = CsvFile(csv_path, ("frame_index", "timestamp"))

    @property
    def repeated(self) -> int:
        """Copies of earlier frames written to fill gaps (``"cfr"``)."""
        return self._pacer.repeated if self._pacer is not None else 0

    @property
    def dropped(self) -> int:
        """Frames saved faster than ``fps`` and left out (``"cfr"``)."""
        return self._pacer.dropped if self._pacer is not None else 0

    def write(self, timestamp: float, payload: np.ndarray) -> None:
        if self._stream is None:
            self._open(payload.shape[0], payload.shape[1])
        assert self._timestamps is not None
        if self._pacer is None:
            self._write_frame(timestamp, payload, self._frames)
            return
        pending = self._pending
        if pending is not None:  # placed only now: it may be superseded, and a last frame is placed apart
            if self._pacer.slot(timestamp) <= self._pacer.slot(pending[0]):
                self._pacer.drop()  # the newer frame takes the same slot
                self._timestamps.append((-1, pending[0]))
            else:
                self._place(*pending, last=False)
        else:
            self._pacer.slot(timestamp)  # the first frame sets the start
        self._pending = (timestamp, payload)

    def _place(self, timestamp: float, payload: np.ndarray, *, last: bool) -> None:
        assert self._pacer is not None and self._timestamps is not None
        placement = self._pacer.place(timestamp, last=last)
        if placement.dropped:
            self._timestamps.append((-1, timestamp))
            return
        for _ in range(placement.repeat_previous):
            self._encode(self._previous, self._frames)
        self._write_frame(timestamp, payload, placement.index)

    def _write_frame(self, timestamp: float, payload: np.ndarray, index: int) -> None:
        assert self._timestamps is not None
        frame = av.VideoFrame.from_ndarray(
            pad_to_even(payload), format="gray" if payload.ndim == 2 else "bgr24"
        ).reformat(format="yuv420p")
        self._encode(frame, self._pts(timestamp))
        self._previous = frame
        self._timestamps.append((index, timestamp))

    def _pts(self, timestamp: float) -> int:
        if self._timing != "vfr":
            return self._frames
        if self._first_time is None:
            self._first_time = timestamp
        pts = round((timestamp - self._first_time) / self._time_base)
        return max(pts, self._last_pts + 1)  # strictly increasing, even for times that repeat

    def _encode(self, frame: Any, pts: int) -> None:
        frame.pts = pts
        frame.time_base = self._time_base
        self._container.mux(self._stream.encode(frame))
        self._last_pts = pts
        self._frames += 1

    def flush(self) -> None:
        # The muxer writes each fragment itself when the next keyframe starts a new one.
        if self._timestamps is not None:
            self._timestamps.flush()

    def close(self) -> None:
        complete = False
        try:
            if self._pending is not None:
                pending, self._pending = self._pending, None
                self._place(*pending, last=True)
            if self._stream is not None:
                self._container.mux(self._stream.encode(None))
            complete = True
        finally:
            try:
                if self._container is not None:
                    self._container.close()
            finally:
                if self._timestamps is not None:
                    self._timestamps.close()
        if complete and self._path is not None:
            finalize_mp4(self._path)
        if self.dropped or self.repeated:
            log.info("video %s: %d frames saved faster than %s fps were dropped, %d copies filled gaps",
                     self.name, self.dropped, float(self._rate), self.repeated)


def finalize_mp4(path: Path) -> bool:
    """Rewrite the fragmented MP4 ``path`` as an ordinary one (frame count and duration in its
    header), copying the packets; the fragmented file is replaced only once the new one is
    complete. Returns False (and keeps the fragmented file) if that fails."""
    part = path.with_name(path.name + ".final.part")
    try:
        with av.open(str(path)) as source, av.open(str(part), mode="w", format="mp4") as target:
            incoming = source.streams.video[0]
            outgoing = target.add_stream_from_template(incoming)
            for packet in source.demux(incoming):
                if packet.dts is None:  # the demuxer's end-of-stream marker
                    continue
                packet.stream = outgoing
                target.mux(packet)
        with part.open("rb") as file:
            os.fsync(file.fileno())
        os.replace(part, path)
        return True
    except (av.FFmpegError, OSError, IndexError):
        log.warning("video %s: could not be rewritten as an ordinary MP4; the fragmented one is kept",
                    path, exc_info=True)
        part.unlink(missing_ok=True)
        return False


def pad_to_even(frame: np.ndarray) -> np.ndarray:
    """Return ``frame`` with an odd height or width padded by repeating its last row or column."""
    pad_h, pad_w = frame.shape[0] % 2, frame.shape[1] % 2
    if not (pad_h or pad_w):
        return frame
    pad = ((0, pad_h), (0, pad_w)) + ((0, 0),) * (frame.ndim - 2)
    return np.pad(frame, pad, mode="edge")
