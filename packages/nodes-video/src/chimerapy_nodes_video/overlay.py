"""``video.overlay``: draws the boxes and labels of ML results onto the frames they were computed from."""

from __future__ import annotations

import bisect
import time
import zlib
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import chimerapy as cp
import cv2
import numpy as np

from ._frames import frame_time

__all__ = ["Overlay", "ResultMatcher", "draw_detections"]

#: Timestamps closer than this (seconds) are the same capture time.
TIME_TOLERANCE = 1e-6

#: Box colours (BGR), one per label (picked by a hash of the label, so stable across runs).
PALETTE = [(0, 255, 0), (0, 165, 255), (255, 0, 255), (255, 255, 0), (0, 255, 255),
           (255, 128, 0), (128, 0, 255), (0, 0, 255)]


class Overlay(cp.Node):
    """Draws boxes and labels from ML results onto the frames they belong to, matched by timestamp.

    Inputs: a frame source (chunks with a ``frame`` record and its ``timestamp``, from any video
    source) and one or more ML nodes whose chunks hold ``detections`` (a list of
    ``{"box": [x, y, w, h], "score": float, "label": str}``, box in pixels of the frame, top-left
    corner and size) and ``timestamp``: the capture time of the frame they were computed from.
    A chunk with ``detections`` is a result; any other chunk with ``frame`` is a frame. Wire the
    frames as the followed input (the default when their edge is added first).

    Output: one chunk per incoming frame, in order: ``frame`` (a drawn copy; the input is never
    modified), ``timestamp`` (the frame's own capture time), ``detections`` (those drawn on it),
    and every other record of the frame's chunk (``frame_index``...) passed on unchanged.

    Matching: each frame carries, from each ML node, the most recent result whose timestamp is at
    or before the frame's own (the exact one when the ML node processed this frame; the one of an
    earlier frame when it skipped this one), unless that result is older than ``max_age`` seconds
    (then nothing from that node). Results come late (the ML node needs time), so frames wait in
    a small buffer until every ML node has sent a result at or after their timestamp.

    Delay bound: a frame leaves at most ``max_delay`` seconds after it arrived (then with the
    results known by then), or earlier when the buffer holds ``buffer`` frames. So the output
    lags the input by at most ``max_delay`` plus one drawing; at the end of the run every frame
    still held is sent.

    In the cluster the node runs its own loop, so every result is seen, also when several arrive
    between two frames, and frames leave on time even when no input arrives. Driven step by step
    (``chimerapy.testing``, ``debug="step"``), each step returns at most one frame.

    Args:
        name: the node's name.
        max_delay: the longest a frame is held waiting for its results, in seconds.
        max_age: results older than this (seconds before the frame) are not drawn.
        buffer: the most frames held at once.
        min_score: detections scoring below this are not drawn (nor passed on).
        thickness: box line width in pixels.
        font_scale: label text size (OpenCV font scale).
    """

    kind = "step"

    def __init__(
        self,
        name: str = "overlay",
        *,
        max_delay: float = 0.25,
        max_age: float = 1.0,
        buffer: int = 32,
        min_score: float = 0.0,
        thickness: int = 2,
        font_scale: float = 0.5,
    ) -> None:
        super().__init__(name)
        what = f"video.overlay {name!r}"
        for option, value in (("max_delay", max_delay), ("max_age", max_age), ("font_scale", font_scale)):
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
                raise ValueError(f"{what}: {option} must be a number >= 0, got {value!r}")
        for option, value in (("buffer", buffer), ("thickness", thickness)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{what}: {option} must be an int >= 1, got {value!r}")
        self.max_delay = float(max_delay)
        self.max_age = float(max_age)
        self.buffer = buffer
        self.min_score = float(min_score)
        self.thickness = thickness
        self.font_scale = float(font_scale)

    # -- node ------------------------------------------------------------------------------------

    def prep(self) -> None:
        self._matcher = ResultMatcher(max_delay=self.max_delay, max_age=self.max_age, capacity=self.buffer)
        self._seen: dict[str, int | None] = {}
        self._warned: set[str] = set()

    def main(self) -> None:
        while self.running:
            due = self._matcher.next_due()
            wait = 0.1 if due is None else min(0.1, max(0.0, due - time.monotonic()))
            for chunk in self.poll_inputs(wait):
                self._guarded(self._take, chunk)
            for held, detections in self._matcher.release(time.monotonic()):
                self._guarded(self._publish, held, detections)
        for held, detections in self._matcher.release(time.monotonic(), everything=True):
            self._guarded(self._publish, held, detections)

    def step(self, data_chunks: dict[str, cp.DataChunk]) -> cp.DataChunk | None:
        for producer, chunk in data_chunks.items():
            key = chunk.seq if chunk.seq is not None else id(chunk)
            if self._seen.get(producer, -1) != key:
                self._seen[producer] = key
                self._take(chunk)
        released = self._matcher.release(time.monotonic(), limit=1)
        return self._render(*released[0]) if released else None

    # -- internals -------------------------------------------------------------------------------

    def _guarded(self, action: Any, *args: Any) -> None:
        """Run ``action``; a chunk it cannot handle is logged (once per kind of error) and skipped,
        so that one bad input never ends the node's loop."""
        try:
            action(*args)
        except Exception as error:
            if type(error).__name__ not in self._warned:
                self._warned.add(type(error).__name__)
                self.logger.exception("skipped a chunk it could not handle")

    def _publish(self, chunk: cp.DataChunk, detections: list[Any]) -> None:
        self.publish(self._render(chunk, detections))

    def _take(self, chunk: cp.DataChunk) -> None:
        producer = chunk.producer or "?"
        if "detections" in chunk:
            if "timestamp" not in chunk:
                self._warn_once(producer, "results from %r carry no 'timestamp' record; they are matched "
                                "by the time they were sent instead of the frame they belong to", producer)
            detections = chunk.get("detections")["value"]
            self._matcher.add_result(producer, frame_time(chunk), list(detections or []))
        elif "frame" in chunk:
            self._matcher.add_frame(chunk, frame_time(chunk), time.monotonic())
        else:
            self._warn_once(producer, "chunks from %r hold neither 'frame' nor 'detections' (records %s); "
                            "they are ignored", producer, chunk.keys())

    def _render(self, chunk: cp.DataChunk, detections: list[Any]) -> cp.DataChunk:
        valid = [d for d in detections if _valid(d)]
        if len(valid) < len(detections):
            self._warn_once("malformed", "malformed detections are not drawn (each needs 'box': [x, y, w, h] "
                            "and a numeric 'score'); for example %r", next(d for d in detections if not _valid(d)))
        shown = [d for d in valid if _score(d) >= self.min_score]
        frame = draw_detections(chunk.get("frame")["value"], shown, thickness=self.thickness,
                                font_scale=self.font_scale)
        out = cp.DataChunk()
        out.add("frame", frame, "image")
        for name, record in chunk.items():
            if name != "frame":
                out.add(name, record["value"], record["content-type"])
        out.add("detections", shown)
        return out

    def _warn_once(self, key: str, message: str, *args: Any) -> None:
        if key not in self._warned:
            self._warned.add(key)
            self.logger.warning(message, *args)


@dataclass
class _Held:
    item: Any
    timestamp: float
    arrived: float


@dataclass
class _History:
    times: list[float] = field(default_factory=list)
    results: list[list[Any]] = field(default_factory=list)


class ResultMatcher:
    """Holds frames until the results computed from them are known; pure (time is passed in).

    Args:
        max_delay: the longest a frame is held (seconds, on the clock passed as ``now``).
        max_age: the oldest a result may be, relative to a frame's timestamp, to be matched.
        capacity: the most frames held; beyond it the oldest leaves at once.
        history: results kept per producer.
    """

    def __init__(self, *, max_delay: float, max_age: float, capacity: int, history: int = 256) -> None:
        self.max_delay = max_delay
        self.max_age = max_age
        self.capacity = capacity
        self.history = history
        self._frames: deque[_Held] = deque()
        self._results: dict[str, _History] = {}

    def __len__(self) -> int:
        return len(self._frames)

    def add_frame(self, item: Any, timestamp: float, now: float) -> None:
        """Hold ``item`` (a frame captured at ``timestamp``) from ``now`` on."""
        self._frames.append(_Held(item, timestamp, now))

    def add_result(self, producer: str, timestamp: float, detections: list[Any]) -> None:
        """Record what ``producer`` found in the frame captured at ``timestamp``."""
        history = self._results.setdefault(producer, _History())
        at = bisect.bisect_right(history.times, timestamp)
        history.times.insert(at, timestamp)
        history.results.insert(at, detections)
        if len(history.times) > self.history:
            del history.times[0], history.results[0]

    def next_due(self) -> float | None:
        """When the oldest held frame must leave (``None``: none held)."""
        return self._frames[0].arrived + self.max_delay if self._frames else None

    def release(
        self, now: float, *, limit: int | None = None, everything: bool = False
    ) -> list[tuple[Any, list[Any]]]:
        """The frames that may leave at ``now``, oldest first, each with its matched detections.

        A frame leaves when every producer has a result at or after its timestamp, when it was
        held ``max_delay``, when more than ``capacity`` are held, or (``everything``) always.
        """
        out: list[tuple[Any, list[Any]]] = []
        while self._frames and (limit is None or len(out) < limit):
            held = self._frames[0]
            if not (everything or len(self._frames) > self.capacity or now >= held.arrived + self.max_delay
                    or self._settled(held.timestamp)):
                break
            self._frames.popleft()
            out.append((held.item, self.match(held.timestamp)))
        return out

    def match(self, timestamp: float) -> list[Any]:
        """The detections for a frame captured at ``timestamp``: per producer its latest earlier result."""
        found: list[Any] = []
        for history in self._results.values():
            at = bisect.bisect_right(history.times, timestamp + TIME_TOLERANCE) - 1
            if at >= 0 and timestamp - history.times[at] <= self.max_age:
                found.extend(history.results[at])
        return found

    def _settled(self, timestamp: float) -> bool:
        return bool(self._results) and all(
            h.times[-1] >= timestamp - TIME_TOLERANCE for h in self._results.values())


def draw_detections(
    frame: np.ndarray, detections: list[dict[str, Any]], *, thickness: int = 2, font_scale: float = 0.5
) -> np.ndarray:
    """A copy of ``frame`` (uint8 BGR or gray) with each detection's box and ``label score`` drawn.

    ``frame`` itself is never modified (received frames are read-only).
    """
    out = cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR) if frame.ndim == 2 else np.array(frame, order="C")
    height, width = out.shape[:2]
    for detection in detections:
        x, y, w, h = (round(float(v)) for v in detection["box"])
        label = str(detection.get("label", ""))
        color = PALETTE[zlib.crc32(label.encode()) % len(PALETTE)]
        cv2.rectangle(out, (x, y), (x + w, y + h), color, thickness)
        score = detection.get("score")
        text = f"{label} {float(score):.2f}".strip() if score is not None else label
        if not text:
            continue
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font_scale, 1)
        top = y - th - base - 2 if y - th - base - 2 >= 0 else min(y + h, height - th - base - 2)
        left = min(max(x, 0), max(width - tw - 2, 0))
        cv2.rectangle(out, (left, top), (left + tw + 2, top + th + base + 2), color, cv2.FILLED)
        cv2.putText(out, text, (left + 1, top + th + 1), cv2.FONT_HERSHEY_SIMPLEX, font_scale,
                    (0, 0, 0), 1, cv2.LINE_AA)
    return out


def _score(detection: dict[str, Any]) -> float:
    score = detection.get("score")
    return 1.0 if score is None else float(score)


def _valid(detection: Any) -> bool:
    try:
        return (isinstance(detection, dict) and len(detection["box"]) == 4
                and all(np.isfinite(float(v)) for v in detection["box"]) and np.isfinite(_score(detection)))
    except (KeyError, TypeError, ValueError):
        return False
