"""``video.test_pattern``: a synthetic moving pattern, the default source for demos and tests."""

from __future__ import annotations

import time

import chimerapy as cp
import cv2
import numpy as np

from ._frames import frame_buffer, frame_chunk
from ._pacing import Pacer, check_fps

__all__ = ["CODE_BITS", "TestPattern", "read_frame_code"]

#: Bits of the frame-number code drawn along the bottom edge (frame numbers modulo 2**24).
CODE_BITS = 24
_MIN_CELL = 8  # narrowest code cell, in pixels, that survives video compression

#: Colour bars (BGR): white, yellow, cyan, green, magenta, red, blue, black.
_BARS = np.array(
    [(255, 255, 255), (0, 255, 255), (255, 255, 0), (0, 255, 0),
     (255, 0, 255), (0, 0, 255), (255, 0, 0), (0, 0, 0)], np.uint8)


class TestPattern(cp.Node):
    """A moving test pattern: scrolling colour bars, a bouncing box, the frame number and time.

    Each frame goes out as a chunk with ``frame`` (uint8 BGR ``(height, width, 3)``,
    ``content_type="image"``), ``timestamp`` (the Manager-aligned time at which it was made)
    and ``frame_index`` (0, 1, 2, ...), on an absolute schedule of ``1 / fps``.

    Drawn on each frame: the frame number and the Manager-aligned time (UTC, ``HH:MM:SS.mmm``),
    and, when the frame is at least ``CODE_BITS * 8`` pixels wide, the frame number as a strip
    of black and white cells along the bottom edge, readable back from a recorded video with
    :func:`read_frame_code` (to find dropped or repeated frames). Making a 640x480 frame costs
    well under a millisecond: 30 fps takes a few percent of one core.

    Args:
        name: the node's name.
        width: frame width in pixels.
        height: frame height in pixels.
        fps: frames per second.
    """

    __test__ = False  # not a pytest test class, despite its name
    kind = "source"

    def __init__(
        self, name: str = "test_pattern", *, width: int = 640, height: int = 480, fps: float = 30.0
    ) -> None:
        super().__init__(name)
        what = f"video.test_pattern {name!r}"
        for option, value in (("width", width), ("height", height)):
            if not isinstance(value, int) or isinstance(value, bool) or not 16 <= value <= 8192:
                raise ValueError(f"{what}: {option} must be an int from 16 to 8192, got {value!r}")
        self.width = width
        self.height = height
        self.fps = check_fps(fps, what)

    def prep(self) -> None:
        self._painter = PatternPainter(self.width, self.height)
        self._pacer = Pacer(self.fps, logger=self.logger)
        self._index = 0

    def step(self) -> cp.DataChunk | None:
        if not self._pacer.wait(lambda: self.running):
            return None
        timestamp = self.now()
        out = frame_buffer(self, (self.height, self.width, 3))  # painted where the consumers read it
        chunk = frame_chunk(self._painter.paint(self._index, timestamp, out=out), timestamp, self._index)
        self._index += 1
        return chunk


class PatternPainter:
    """Paints the frames of :class:`TestPattern`, each into ``out`` or a new array."""

    def __init__(self, width: int, height: int) -> None:
        self.width, self.height = width, height
        bar = max(1, width // len(_BARS))
        row = np.repeat(_BARS, bar, axis=0)  # one period of the bars
        self._period = len(row)
        reps = -(-(width + self._period) // self._period)
        band = np.tile(row, (reps, 1))[: width + self._period]
        self._bars = np.ascontiguousarray(np.broadcast_to(band, (height, *band.shape)))
        self._box = max(4, min(width, height) // 8)
        self._font = max(0.35, height / 600)
        self._code_cell = width // CODE_BITS if width // CODE_BITS >= _MIN_CELL else 0
        self._code_height = max(4, height // 24)

    def paint(self, index: int, timestamp: float, *, out: np.ndarray | None = None) -> np.ndarray:
        """Frame ``index`` made at ``timestamp``, painted over every pixel of ``out`` (a uint8
        ``(height, width, 3)`` array) or of a new array; returns it."""
        w, h = self.width, self.height
        shift = (index * 4) % self._period
        frame = np.empty((h, w, 3), np.uint8) if out is None else out
        frame[...] = self._bars[:, shift : shift + w]
        # a box bouncing on a Lissajous path
        x = int((w - self._box) * (0.5 + 0.5 * np.sin(index * 0.05)))
        y = int((h - self._box) * (0.5 + 0.5 * np.sin(index * 0.037 + 1.0)))
        frame[y : y + self._box, x : x + self._box] = (128, 128, 128)
        clock = time.strftime("%H:%M:%S", time.gmtime(timestamp)) + f".{int(timestamp * 1000) % 1000:03d}"
        text = f"#{index:06d}  {clock}"
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, self._font, 1)
        cv2.rectangle(frame, (4, 4), (12 + tw, 12 + th + base), (0, 0, 0), cv2.FILLED)
        cv2.putText(frame, text, (8, 8 + th), cv2.FONT_HERSHEY_SIMPLEX, self._font,
                    (255, 255, 255), 1, cv2.LINE_AA)
        if self._code_cell:
            self._draw_code(frame, index)
        return frame

    def _draw_code(self, frame: np.ndarray, index: int) -> None:
        cell, top = self._code_cell, self.height - self._code_height
        for bit in range(CODE_BITS):
            value = 255 if (index >> (CODE_BITS - 1 - bit)) & 1 else 0
            frame[top:, bit * cell : (bit + 1) * cell] = value


def read_frame_code(frame: np.ndarray) -> int | None:
    """The frame number that :class:`TestPattern` drew along the bottom of ``frame``.

    Works on frames that went through lossy video compression (each cell is sampled at its
    centre). Returns ``None`` for a frame too narrow to hold the code. Frame numbers wrap at
    ``2**CODE_BITS``.
    """
    height, width = frame.shape[:2]
    cell = width // CODE_BITS
    if cell < _MIN_CELL:
        return None
    gray = frame if frame.ndim == 2 else frame.mean(axis=2)
    y = height - max(4, height // 24) // 2 - 1
    value = 0
    for bit in range(CODE_BITS):
        value = (value << 1) | int(gray[y, bit * cell + cell // 2] >= 128)
    return value
