"""``video.camera``: frames from an OpenCV ``VideoCapture`` (device index, device path or URL)."""

from __future__ import annotations

import os
import time

import chimerapy as cp
import cv2

from ._capture import native_fps, release_capture
from ._frames import as_bgr, frame_buffer, frame_chunk, read_into
from ._pacing import MAX_SLEEP, Pacer, check_fps
from .errors import VideoSourceError

__all__ = ["Camera"]

#: Seconds between two attempts to reopen a live source that stopped delivering frames.
REOPEN_INTERVAL = 1.0


class Camera(cp.Node):
    """Captures frames from a camera, a capture device or a network stream with OpenCV.

    Each frame goes out as a chunk with ``frame`` (uint8 BGR ``(H, W, 3)``, ``content_type=
    "image"``), ``timestamp`` (the Manager-aligned time at which ``read()`` returned it) and
    ``frame_index`` (0, 1, 2, ...). A live device sets the pace (each step blocks in ``read()``
    until the next frame); a video *file* given as ``device`` plays like a camera at ``fps``
    (default: its own rate) on an absolute schedule, and ends after its last frame.

    A live source that stops delivering (a camera unplugged, a stream dropped) is reopened every
    second, with one warning in the log, until the node stops.

    Args:
        name: the node's name.
        device: a device index (``0``; ``"0"`` works too), a device path (``"/dev/video2"``), a
            stream URL (``"rtsp://..."``) or a video file path.
        width: the frame width to ask the device for (``None``: its default).
        height: the frame height to ask the device for (``None``: its default).
        fps: the frame rate to ask the device for; for a video file, the playback rate.
        fourcc: a pixel format to ask for, e.g. ``"MJPG"`` (most USB cameras need it for full
            rate at HD sizes).
        backend: an OpenCV capture API by name (``"v4l2"``, ``"ffmpeg"``, ``"gstreamer"``,
            ``"dshow"``, ``"msmf"``, ``"avfoundation"``...); ``None``: OpenCV's choice.

    Devices may not honour the asked size or rate: the node logs what it got, with a warning
    when it differs, and passes the frames on unchanged.

    Raises:
        VideoSourceError: in ``prep``, naming the device, when it cannot be opened or gives no frame.
    """

    kind = "source"

    def __init__(
        self,
        name: str = "camera",
        *,
        device: int | str = 0,
        width: int | None = None,
        height: int | None = None,
        fps: float | None = None,
        fourcc: str | None = None,
        backend: str | None = None,
    ) -> None:
        super().__init__(name)
        what = f"video.camera {name!r}"
        for option, value in (("width", width), ("height", height)):
            if value is not None and (not isinstance(value, int) or value <= 0):
                raise ValueError(f"{what}: {option} must be a positive int, got {value!r}")
        if fourcc is not None and (not isinstance(fourcc, str) or len(fourcc) != 4):
            raise ValueError(f"{what}: fourcc must be 4 characters such as 'MJPG', got {fourcc!r}")
        _capture_api(backend, what)
        self.device = device
        self.width = width
        self.height = height
        self.fps = check_fps(fps, what, optional=True)
        self.fourcc = fourcc
        self.backend = backend

    # -- node ------------------------------------------------------------------------------------

    def prep(self) -> None:
        self._source = _as_source(self.device)
        self._is_file = isinstance(self._source, str) and os.path.isfile(self._source)
        self._capture: cv2.VideoCapture | None = self._open()
        self._describe()
        self._index = 0
        self._shape: tuple[int, ...] | None = None
        self._ended = False
        self._failing = False
        self._next_reopen = 0.0
        self._pacer = None
        if self._is_file:
            rate = self.fps or native_fps(self._capture)
            if rate is None:
                raise VideoSourceError(
                    f"video file {self._source!r} does not declare a frame rate; "
                    f"give video.camera {self.name!r} an fps",
                    source=self._source,
                )
            self._pacer = Pacer(rate, logger=self.logger)

    def step(self) -> cp.DataChunk | None:
        if self._ended or self._capture is None:
            return self._idle()
        if self._pacer is not None and not self._pacer.wait(lambda: self.running):
            return None
        out = frame_buffer(self, self._shape)  # decoded where the consumers read it
        ok, frame = read_into(self._capture, out)
        timestamp = self.now()
        if not ok or frame is None:
            self._read_failed()
            return None
        if self._failing:
            self.logger.info("camera %r delivers frames again", self.device)
            self._failing = False
        frame = as_bgr(frame, out)
        self._shape = frame.shape  # the next frame is read into a buffer of this size
        chunk = frame_chunk(frame, timestamp, self._index)
        self._index += 1
        return chunk

    def teardown(self) -> None:
        release_capture(getattr(self, "_capture", None))
        self._capture = None

    # -- internals -------------------------------------------------------------------------------

    def _open(self, *, strict: bool = True) -> cv2.VideoCapture:
        """Open and configure the source; if it cannot be opened: raise, or (not ``strict``)
        return the unopened capture, whose reads fail."""
        capture = cv2.VideoCapture(self._source, _capture_api(self.backend, f"video.camera {self.name!r}"))
        if not capture.isOpened():
            if not strict:
                return capture
            capture.release()
            raise VideoSourceError(_cannot_open(self._source, self.backend), source=self._source)
        if self.fourcc:
            capture.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter.fourcc(*self.fourcc))
        if self.width:
            capture.set(cv2.CAP_PROP_FRAME_WIDTH, self.width)
        if self.height:
            capture.set(cv2.CAP_PROP_FRAME_HEIGHT, self.height)
        if self.fps and not self._is_file:
            capture.set(cv2.CAP_PROP_FPS, self.fps)
        return capture

    def _describe(self) -> None:
        capture = self._capture
        if capture is None:
            return
        got_w = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH))
        got_h = int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
        got_fps = capture.get(cv2.CAP_PROP_FPS)
        self.logger.info("camera %r opened with %s: %dx%d at %.4g fps", self.device,
                         capture.getBackendName(), got_w, got_h, got_fps)
        asked: dict[str, tuple[float | None, float]] = {"width": (self.width, got_w), "height": (self.height, got_h)}
        if not self._is_file:
            asked["fps"] = (self.fps, got_fps)
        wrong = {k: v for k, v in asked.items() if v[0] is not None and v[1] and abs(v[0] - v[1]) > 0.01}
        if wrong:
            self.logger.warning(
                "camera %r does not give what was asked (%s); frames are passed on as the device sends them",
                self.device, ", ".join(f"{k} {a} -> {g:.4g}" for k, (a, g) in wrong.items()),
            )

    def _read_failed(self) -> None:
        if self._is_file:
            self._ended = True
            self.logger.info("camera %r: end of file after %d frames; this node sends no more frames",
                             self.device, self._index)
            return None
        now = time.monotonic()
        if not self._failing:
            self._failing = True
            self.logger.warning("camera %r stopped delivering frames after %d frames (unplugged or "
                                "stream dropped?); reopening it every %g s", self.device, self._index,
                                REOPEN_INTERVAL)
        if now >= self._next_reopen:
            self._next_reopen = now + REOPEN_INTERVAL
            release_capture(self._capture)
            self._capture = self._open(strict=False)  # with the asked size, rate and format again
        return self._idle()

    @staticmethod
    def _idle() -> None:
        time.sleep(MAX_SLEEP)  # nothing to read: wait without spinning, still quick to stop


def _as_source(device: int | str) -> int | str:
    """A device index stays an int (``"2"`` becomes ``2``); paths and URLs stay strings."""
    if isinstance(device, bool):
        raise TypeError(f"video.camera: device must be an index, a path or a URL, got {device!r}")
    if isinstance(device, int):
        return device
    text = os.fspath(device).strip()
    return int(text) if text.isdigit() else os.path.expanduser(text)


def _capture_api(backend: str | None, what: str) -> int:
    if backend is None:
        return cv2.CAP_ANY
    api = getattr(cv2, f"CAP_{str(backend).upper()}", None)
    if type(api) is not int:  # not a CAP_* constant: an unknown name (a value error)
        raise ValueError(f"{what}: unknown OpenCV capture backend {backend!r}; use a name such as "
                         f"'v4l2', 'ffmpeg', 'gstreamer', 'dshow', 'msmf' or 'avfoundation'")
    return api


def _cannot_open(source: int | str, backend: str | None) -> str:
    via = f" with the {backend!r} backend" if backend else ""
    if isinstance(source, int):
        hint = (f"no camera answers at index {source} on this Worker (on Linux: /dev/video{source}); "
                "check that it is plugged in, not used by another program, and that this user may "
                "open it (group 'video'); list devices with `v4l2-ctl --list-devices`")
        return f"cannot open camera {source}{via}: {hint}"
    if "://" in source:
        return (f"cannot open the stream {source!r}{via}: check the URL, the network and the "
                "credentials, and that this OpenCV build has the backend it needs (FFmpeg or GStreamer)")
    if not os.path.exists(source):
        return f"cannot open camera {source!r}{via}: no such device or file on this Worker"
    return (f"cannot open camera {source!r}{via}: OpenCV could not read it (a device busy or "
            "without permission, or a file in a format this OpenCV build cannot decode)")

