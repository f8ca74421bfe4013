"""``video.file``: plays a video file as a live source, at its own frame rate or a given one."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import chimerapy as cp
import cv2
import numpy as np

from ._capture import native_fps, release_capture
from ._frames import as_bgr, frame_buffer, frame_chunk, read_into
from ._pacing import MAX_SLEEP, Pacer, check_fps
from .errors import VideoSourceError

__all__ = ["VideoFile"]


class VideoFile(cp.Node):
    """Plays a video file frame by frame at its own frame rate (or a given one), like a camera.

    Each frame goes out as a chunk with ``frame`` (uint8 BGR ``(H, W, 3)``, ``content_type=
    "image"``), ``timestamp`` (the Manager-aligned time at which it was sent: its "capture" time),
    ``frame_index`` (0, 1, 2, ... over the whole run, loops included) and ``file_frame`` (its
    index in the file). Frames leave on an absolute schedule, ``1 / fps`` apart; each step
    decodes the next frame ahead of its deadline, so decoding time does not delay it.

    After the last frame (without ``loop``) the node logs that the file ended and sends nothing
    more; it keeps running idle (sleeping, not spinning) until the cluster stops.

    Args:
        name: the node's name.
        path: the video file, on the Worker that runs the node (``~`` is expanded; a relative
            path is relative to the Worker's working directory).
        fps: the playback rate; ``None``: the file's own rate. Every frame is sent once at
            this rate (``fps`` twice the native rate plays twice as fast; no frame is skipped).
        loop: start again at ``start`` after the last frame.
        start: where to start, in seconds from the beginning of the file.

    Raises:
        ValueError: when the node is created with no path or an invalid option.
        VideoSourceError: in ``prep``, naming the file, when it is missing, cannot be decoded,
            declares no frame rate (pass ``fps``), or ``start`` lies past its end.
    """

    kind = "source"

    def __init__(
        self,
        name: str = "video_file",
        *,
        path: str = "",
        fps: float | None = None,
        loop: bool = False,
        start: float = 0.0,
    ) -> None:
        super().__init__(name)
        what = f"video.file {name!r}"
        if not path or not str(path).strip():
            raise ValueError(f"{what}: no video file given; pass path='/path/to/video.mp4'")
        if not isinstance(start, (int, float)) or start < 0:
            raise ValueError(f"{what}: start must be a number of seconds >= 0, got {start!r}")
        self.path = os.fspath(path)
        self.fps = check_fps(fps, what, optional=True)
        self.loop = bool(loop)
        self.start_at = float(start)  # the option `start` (Node.start() runs a debug stream)

    # -- node ------------------------------------------------------------------------------------

    def prep(self) -> None:
        self._path = Path(self.path).expanduser().absolute()
        if not self._path.is_file():
            raise VideoSourceError(
                f"video file {str(self._path)!r} does not exist on Worker host {socket.gethostname()!r}; "
                f"give video.file {self.name!r} a path that exists where the node runs",
                source=self.path,
            )
        self._capture: cv2.VideoCapture | None = self._open()
        self._native_fps = native_fps(self._capture)
        rate = self.fps or self._native_fps
        if rate is None:
            raise VideoSourceError(
                f"video file {str(self._path)!r} declares no frame rate; give video.file "
                f"{self.name!r} an fps", source=self.path)
        self._start_frame = round(self.start_at * (self._native_fps or rate))
        self._seek()
        self._shape: tuple[int, ...] | None = None
        self._ended = False
        self._pending = self._read()  # a file that has no frame fails here, not in a step
        if self._pending is None:
            count = int(self._capture.get(cv2.CAP_PROP_FRAME_COUNT))
            where = f" at start={self.start_at} s (the file has {count} frames)" if self.start_at else ""
            raise VideoSourceError(f"no frame could be decoded from video file {str(self._path)!r}{where}",
                                   source=self.path)
        self._pacer = Pacer(rate, logger=self.logger)
        self._index = 0
        self._loops = 0
        self.logger.info("playing %s at %.4g fps from frame %d%s", self._path, rate, self._start_frame,
                         " in a loop" if self.loop else "")

    def step(self) -> cp.DataChunk | None:
        if self._ended:
            time.sleep(MAX_SLEEP)  # the file has ended: idle without spinning until stopped
            return None
        read = self._pending  # the first frame, decoded in prep
        if read is None:  # decoded ahead of its deadline, where the consumers will read it
            read = self._next(out=frame_buffer(self, self._shape))
        self._pending = None
        if read is None:
            self._ended = True
            self.logger.info("end of video file %s: sent the last of %d frames; this node sends no more",
                             self._path, self._index)
            time.sleep(MAX_SLEEP)
            return None
        if not self._pacer.wait(lambda: self.running):
            return None
        frame, file_frame = read
        self._shape = frame.shape
        chunk = frame_chunk(frame, self.now(), self._index, file_frame=file_frame)
        self._index += 1
        return chunk

    def teardown(self) -> None:
        release_capture(getattr(self, "_capture", None))
        self._capture = None

    # -- internals -------------------------------------------------------------------------------

    def _open(self) -> cv2.VideoCapture:
        capture = cv2.VideoCapture(str(self._path))
        if not capture.isOpened():
            capture.release()
            raise VideoSourceError(
                f"cannot decode video file {str(self._path)!r}: OpenCV does not recognise it as a "
                "video (a damaged file or a format this OpenCV build lacks)", source=self.path)
        return capture

    def _seek(self) -> None:
        self._file_frame = self._start_frame - 1
        if self._start_frame and self._capture is not None:
            self._capture.set(cv2.CAP_PROP_POS_FRAMES, self._start_frame)

    def _read(self, out: np.ndarray | None = None) -> tuple[np.ndarray, int] | None:
        if self._capture is None:
            return None
        ok, frame = read_into(self._capture, out)
        if not ok or frame is None:
            return None
        self._file_frame += 1
        return as_bgr(frame, out), self._file_frame

    def _next(self, *, out: np.ndarray | None = None) -> tuple[np.ndarray, int] | None:
        pending = self._read(out)
        if pending is not None or not self.loop:
            return pending
        release_capture(self._capture)
        try:
            self._capture = self._open()
        except VideoSourceError as error:  # the file went away or changed while playing
            self._capture = None
            self.logger.error("cannot play %s again: %s", self._path, error)
            return None
        self._seek()
        self._loops += 1
        return self._read(out)
