"""ChimeraPy video node pack: camera, video file, test pattern, screen capture, recorder, overlay.

The nodes register in the ``chimerapy.nodes`` entry-point group as ``video.camera``,
``video.file``, ``video.test_pattern``, ``video.screen``, ``video.recorder`` and
``video.overlay``. Video sources emit one chunk per frame with the records ``frame`` (uint8
BGR, ``content_type="image"``), ``timestamp`` (Manager-aligned capture time) and
``frame_index``; consumers take the first input chunk that holds a ``frame``.
"""

from chimerapy_nodes_video.__about__ import __version__
from chimerapy_nodes_video.camera import Camera
from chimerapy_nodes_video.errors import VideoSourceError
from chimerapy_nodes_video.file import VideoFile
from chimerapy_nodes_video.overlay import Overlay, draw_detections
from chimerapy_nodes_video.recorder import VideoRecorder
from chimerapy_nodes_video.screen import Screen
from chimerapy_nodes_video.test_pattern import TestPattern, read_frame_code

__all__ = [
    "Camera",
    "Overlay",
    "Screen",
    "TestPattern",
    "VideoFile",
    "VideoRecorder",
    "VideoSourceError",
    "__version__",
    "draw_detections",
    "read_frame_code",
]
