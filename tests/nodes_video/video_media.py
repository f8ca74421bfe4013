"""Test media for the video pack: numbered clips written with PyAV, and readers for recordings.

Frame ``i`` of a clip from :func:`write_clip` is one flat colour that encodes ``i``: blue
``(i % 32) * 8 + 4``, green ``(i // 32) * 8 + 4``, red 0; :func:`clip_number` reads it back from
a decoded frame (H.264 moves flat colours by a few levels at most).
"""

from __future__ import annotations

import csv
from pathlib import Path

import av
import numpy as np


def write_clip(path: Path, *, frames: int, fps: int = 30, size: tuple[int, int] = (160, 120)) -> Path:
    """Write an H.264 MP4 of ``frames`` numbered frames of ``size`` (width, height) at ``fps``."""
    width, height = size
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.gop_size = fps
        for i in range(frames):
            image = np.zeros((height, width, 3), np.uint8)
            image[..., 0] = (i % 32) * 8 + 4
            image[..., 1] = (i // 32) * 8 + 4
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="bgr24")):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def clip_number(frame: np.ndarray, rows: slice = slice(None)) -> int:
    """The number of a :func:`write_clip` frame (BGR), from the median colour of ``rows``."""
    blue = float(np.median(frame[rows, :, 0]))
    green = float(np.median(frame[rows, :, 1]))
    return round((green - 4) / 8) * 32 + round((blue - 4) / 8)


def read_video(path: Path) -> tuple[list[np.ndarray], float]:
    """Decode every frame of ``path`` (BGR arrays) and return them with the stream's frame rate."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = [frame.to_ndarray(format="bgr24") for frame in container.decode(stream)]
        return frames, float(stream.average_rate or stream.guessed_rate)


def read_timestamps(path: Path) -> list[tuple[int, float]]:
    """The rows of a recording's ``<name>.timestamps.csv``: (frame_index, timestamp)."""
    with open(path, newline="") as handle:
        return [(int(row["frame_index"]), float(row["timestamp"])) for row in csv.DictReader(handle)]


def rate(timestamps: list[float]) -> float:
    """Frames per second over the span of ``timestamps``."""
    return (len(timestamps) - 1) / (timestamps[-1] - timestamps[0])


def recorded(worker, node: str, name: str) -> tuple[Path, Path]:
    """The video and timestamps files that node ``node`` recorded as ``name`` on ``worker``."""
    videos = list(Path(worker.tempdir).rglob(f"{node}/{name}.mp4"))
    assert len(videos) == 1, f"expected one {node}/{name}.mp4 under {worker.tempdir}, found {videos}"
    return videos[0], videos[0].with_name(f"{name}.timestamps.csv")
