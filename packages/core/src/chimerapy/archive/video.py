"""Video streams: ``name.mp4`` (H.264) and ``name.timestamps.csv``, frames read by seeking.

``times`` has one row per frame that the MP4 really holds: after a crash the timestamps file
can list up to about a second more frames than reached the disk, and those rows are left out
(with a note). A frame is found by seeking to the keyframe before it and decoding forward,
so reading one frame never decodes the whole file; reading frames in order decodes each once.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import cached_property
from typing import Any

import numpy as np

from chimerapy.archive.errors import ArchiveError
from chimerapy.archive.files import numeric_columns
from chimerapy.archive.mp4_index import fragments
from chimerapy.archive.stream import Stream

__all__ = ["VideoStream"]


class VideoStream(Stream):
    """A recorded video: ``frame(i)`` and ``frame_at(t)`` return ``uint8`` BGR ``(H, W, 3)``.

    Frames saved gray come back as BGR with equal channels; odd sizes come back padded to even
    ones (as H.264 stored them). Not thread-safe: one decoder is kept open per stream.
    """

    kind = "video"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._container: Any = None
        self._video: Any = None
        self._pts: np.ndarray | None = None
        self._decoded: Iterator[Any] | None = None
        self._next_index = -1
        self._indexed = False

    def _load_times(self) -> np.ndarray:
        stamps = self.file("timestamps")
        if stamps is None:
            self.notes.append("no timestamps file: the video cannot be placed in time")
            return np.empty(0)
        columns, torn = numeric_columns(stamps, ["timestamp"])
        self._note_torn(stamps, torn)
        times = columns["timestamp"]
        frames = self.frames_in_file()
        if frames is not None and frames < len(times):
            self.notes.append(
                f"{len(times) - frames} frames listed in {stamps.name} never reached the MP4 "
                f"(its writer stopped early); the stream ends at frame {frames - 1}"
            )
            times = times[:frames]
        return times

    def frames_in_file(self) -> int | None:
        """Frames held by the MP4 (from its fragment headers; 0 if it is missing)."""
        path = self.file("mp4")
        if path is None:
            self.notes.append("the MP4 file is missing")
            return 0
        found = self._fragments
        frames = None if found is None else sum(count for _, count in found)
        if frames is None:  # not fragmented: ask the demuxer
            with _open_mp4(path) as container:
                frames = int(container.streams.video[0].frames) or None
        return frames

    @cached_property
    def _fragments(self) -> list[tuple[int, int]] | None:
        path = self.file("mp4")
        return fragments(path) if path is not None else None

    @property
    def fps(self) -> float:
        """The MP4's nominal frame rate."""
        self._open()
        return float(self._video.average_rate or self._video.guessed_rate or 0)

    def _open(self) -> None:
        if self._container is not None:
            return
        path = self.file("mp4")
        if path is None:
            raise ArchiveError(f"stream {self.key!r}: its MP4 file is missing from {self.folder}")
        self._container = _open_mp4(path)
        self._video = self._container.streams.video[0]
        self._pts = self._constant_rate_pts()
        self._decoded, self._next_index = None, -1

    def _constant_rate_pts(self) -> np.ndarray:
        """Frame ``i``'s pts as the recorder writes them (a constant frame rate, checked against
        every fragment's start time); :meth:`_indexed_pts` for any other MP4."""
        found = self._fragments
        if not found or found[0][0] < 0:
            return self._indexed_pts()
        packets = []
        for packet in self._container.demux(self._video):
            if packet.pts is not None:
                packets.append(packet.pts)
            if len(packets) == 3:  # sorted, three cover a B-frame's reordering
                break
        self._container.seek(0)
        packets.sort()
        if len(packets) < 2:
            return self._indexed_pts()
        step = packets[1] - packets[0]
        before = 0
        for decode_time, frames in found:
            if decode_time - found[0][0] != step * before:
                return self._indexed_pts()
            before += frames
        return packets[0] + step * np.arange(max(before, 2), dtype=np.int64)

    def _indexed_pts(self) -> np.ndarray:
        """Every packet's pts, read by demuxing the whole file (no decoding)."""
        self._container.seek(0)
        pts = [packet.pts for packet in self._container.demux(self._video) if packet.pts is not None]
        self._container.seek(0)
        return np.sort(np.asarray(pts, dtype=np.int64))

    def frame(self, index: int) -> np.ndarray:
        """Frame ``index`` as ``uint8`` BGR; seeks to the keyframe before it unless reading on.

        Raises:
            ArchiveError: an index outside the stream, or a frame that cannot be decoded.
        """
        index = self._check_index(index)
        self._open()
        found = self._decode(index)
        if found is None and not self._indexed:  # not a constant-rate MP4: index every packet
            self._pts, self._indexed = self._indexed_pts(), True
            self._decoded, self._next_index = None, -1
            found = self._decode(index)
        if found is None:
            raise ArchiveError(f"stream {self.key!r}: frame {index} could not be decoded")
        return found

    def _decode(self, index: int) -> np.ndarray | None:
        assert self._pts is not None
        if index >= len(self._pts):
            return None
        if index != self._next_index or self._decoded is None:
            target = int(self._pts[index])
            self._container.seek(target, backward=True, any_frame=False, stream=self._video)
            self._decoded = self._container.decode(self._video)
        for decoded in self._decoded:
            if decoded.pts is None:
                continue
            if decoded.pts == self._pts[index]:
                self._next_index = index + 1
                return decoded.to_ndarray(format="bgr24")
            if decoded.pts > self._pts[index]:
                break
        self._decoded, self._next_index = None, -1
        return None

    def frame_at(self, t: float) -> np.ndarray:
        """The latest frame saved at or before Manager time ``t``."""
        return self.frame(self._require_index(self.index_at(t), t))

    def value(self, index: int) -> np.ndarray:
        return self.frame(index)

    def decoded_frames(self) -> Iterator[tuple[int, Any]]:
        """Every frame in order as ``(index, av.VideoFrame)``, decoded once each (for exports)."""
        path = self.file("mp4")
        if path is None:
            return
        count = self.count
        with _open_mp4(path) as container:
            video = container.streams.video[0]
            video.thread_type = "AUTO"
            for index, decoded in enumerate(container.decode(video)):
                if index >= count:
                    break
                yield index, decoded

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
            self._container, self._decoded, self._next_index = None, None, -1


def _open_mp4(path: Any) -> Any:
    """The MP4 at ``path`` opened with PyAV (imported here: checking a session without video
    should not load it)."""
    import av

    return av.open(str(path))
