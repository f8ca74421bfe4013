"""``video.screen``: screen capture with ``mss`` (a whole monitor or a region of it)."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Any

import chimerapy as cp
import numpy as np

from ._frames import as_bgr, frame_buffer, frame_chunk
from ._pacing import Pacer, check_fps
from .errors import VideoSourceError

__all__ = ["Screen"]


class Screen(cp.Node):
    """Captures a monitor, or a region of it, at a steady frame rate.

    Each capture goes out as a chunk with ``frame`` (uint8 BGR ``(H, W, 3)``, ``content_type=
    "image"``), ``timestamp`` (the Manager-aligned time halfway through the grab) and
    ``frame_index`` (0, 1, 2, ...), on an absolute schedule of ``1 / fps``.

    Args:
        name: the node's name.
        monitor: the ``mss`` monitor number: 1 for the first monitor, 2 for the second..., 0 for
            the bounding box of all monitors together.
        region: ``[left, top, width, height]`` in pixels, relative to the monitor's top-left
            corner; ``None`` captures the whole monitor.
        fps: captures per second.
        display: the X display to capture on Linux (e.g. ``":0"``); ``None``: ``$DISPLAY``.
        cursor: draw the mouse pointer into the frames (X11 only).

    Raises:
        ValueError: when the node is created with an invalid option.
        VideoSourceError: in ``prep`` when there is no display to capture (naming ``$DISPLAY``),
            the monitor does not exist, or the region does not fit in it.
    """

    kind = "source"

    def __init__(
        self,
        name: str = "screen",
        *,
        monitor: int = 1,
        region: Sequence[int] | None = None,
        fps: float = 15.0,
        display: str | None = None,
        cursor: bool = False,
    ) -> None:
        super().__init__(name)
        what = f"video.screen {name!r}"
        if not isinstance(monitor, int) or isinstance(monitor, bool) or monitor < 0:
            raise ValueError(f"{what}: monitor must be an int >= 0 (1 is the first), got {monitor!r}")
        if region is not None:
            region = _check_region(region, what)
        self.monitor = monitor
        self.region = region
        self.fps = check_fps(fps, what)
        self.display = display
        self.cursor = bool(cursor)

    # -- node ------------------------------------------------------------------------------------

    def prep(self) -> None:
        self._grabber = _open_grabber(self.display, self.cursor, self.name)
        self._area = self._capture_area()
        self._pacer = Pacer(self.fps, logger=self.logger)
        self._index = 0
        self.logger.info("capturing %s at %.4g fps", self._area, self.fps)

    def step(self) -> cp.DataChunk | None:
        if not self._pacer.wait(lambda: self.running):
            return None
        before = self.now()
        shot = self._grabber.grab(self._area)
        timestamp = (before + self.now()) / 2
        out = frame_buffer(self, (self._area["height"], self._area["width"], 3))
        frame = as_bgr(np.asarray(shot), out)  # converted from BGRA where the consumers read it
        chunk = frame_chunk(frame, timestamp, self._index)
        self._index += 1
        return chunk

    def teardown(self) -> None:
        grabber = getattr(self, "_grabber", None)
        if grabber is not None:
            grabber.close()
            self._grabber = None

    # -- internals -------------------------------------------------------------------------------

    def _capture_area(self) -> dict[str, int]:
        monitors = self._grabber.monitors
        if self.monitor >= len(monitors):
            listing = "; ".join(f"{i}: {_size(m)}" for i, m in enumerate(monitors))
            raise VideoSourceError(
                f"video.screen {self.name!r}: there is no monitor {self.monitor} on display "
                f"{_display_name(self.display)} (monitors: {listing})", source=self.monitor)
        screen = monitors[self.monitor]
        if self.region is None:
            return {k: int(screen[k]) for k in ("left", "top", "width", "height")}
        left, top, width, height = self.region
        if left + width > screen["width"] or top + height > screen["height"]:
            raise VideoSourceError(
                f"video.screen {self.name!r}: region {list(self.region)} does not fit in monitor "
                f"{self.monitor} ({_size(screen)})", source=self.monitor)
        return {"left": screen["left"] + left, "top": screen["top"] + top, "width": width, "height": height}


def _open_grabber(display: str | None, cursor: bool, name: str) -> Any:
    import mss

    factory = getattr(mss, "MSS", None) or mss.mss  # mss >= 10.2 names it MSS
    kwargs: dict[str, Any] = {}
    if sys.platform.startswith("linux"):
        display = display or os.environ.get("DISPLAY")
        if not display:
            raise VideoSourceError(
                f"video.screen {name!r} has no display to capture: $DISPLAY is not set for the Worker "
                "that runs it; run that Worker in a desktop session, set DISPLAY (e.g. DISPLAY=:0), "
                "or pass display=':0' (for a headless machine start a virtual one: Xvfb :99 & and "
                "display=':99')", source=None)
        kwargs = {"display": display, "with_cursor": cursor}
    try:
        return factory(**kwargs)
    except mss.ScreenShotError as error:
        raise VideoSourceError(
            f"video.screen {name!r} cannot connect to display {_display_name(display)}: {error}; "
            "check that this X server runs and that this user may connect to it (xhost/XAUTHORITY; "
            "on Wayland the session needs XWayland)", source=display) from error


def _display_name(display: str | None) -> str:
    env = os.environ.get("DISPLAY")
    if display and display != env:
        return f"{display!r}"
    return f"{display!r} ($DISPLAY)" if display else "(none: $DISPLAY is not set)"


def _size(monitor: dict[str, int]) -> str:
    return f"{monitor['width']}x{monitor['height']} at ({monitor['left']}, {monitor['top']})"


def _check_region(region: Sequence[int], what: str) -> tuple[int, int, int, int]:
    values = tuple(region)
    if (
        len(values) != 4
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in values)
        or values[0] < 0 or values[1] < 0 or values[2] <= 0 or values[3] <= 0
    ):
        raise ValueError(f"{what}: region must be [left, top, width, height] with left, top >= 0 "
                         f"and width, height > 0 (ints, in pixels), got {region!r}")
    return values
