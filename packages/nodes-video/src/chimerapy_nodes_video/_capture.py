"""Small helpers around OpenCV's ``VideoCapture`` shared by the camera and file nodes."""

from __future__ import annotations

import cv2

__all__ = ["native_fps", "release_capture"]


def native_fps(capture: cv2.VideoCapture) -> float | None:
    """The frame rate the opened source declares, or ``None`` when it declares none (or nonsense)."""
    fps = capture.get(cv2.CAP_PROP_FPS)
    return float(fps) if fps and 0 < fps < 1000 else None


def release_capture(capture: cv2.VideoCapture | None) -> None:
    """Release ``capture`` if there is one; returns ``None`` to clear the caller's reference."""
    if capture is not None:
        capture.release()
