"""Test media for the video pack: numbered clips written with PyAV, and readers for recordings.

Frame ``i`` (0 to 255) of a clip from :func:`write_clip` is gray in two bands that encode it: the
top quarter ``(i % 16) * 16 + 8``, the rest ``(i // 16) * 16 + 8``. :func:`clip_number` reads it
back from a decoded frame: luma levels 16 apart survive H.264, even twice over (colour would not).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import av
import numpy as np

import chimerapy as cp


def write_clip(path: Path, *, frames: int, fps: int = 30, size: tuple[int, int] = (160, 120)) -> Path:
    """Write an H.264 MP4 of ``frames`` numbered frames of ``size`` (width, height) at ``fps``."""
    width, height = size
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.gop_size = fps
        for i in range(frames):
            image = np.full((height, width, 3), (i // 16) * 16 + 8, np.uint8)
            image[: height // 4] = (i % 16) * 16 + 8
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="bgr24")):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def clip_number(frame: np.ndarray) -> int:
    """The number of a :func:`write_clip` frame, from the median of the top and bottom eighths."""
    eighth = frame.shape[0] // 8
    low, high = (float(np.median(frame[rows])) for rows in (slice(0, eighth), slice(-eighth, None)))
    return round((high - 8) / 16) * 16 + round((low - 8) / 16)


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



def recorded(manager, worker: str, node: str, name: str) -> tuple[Path, Path]:
    """The video and timestamps files that ``node`` on ``worker`` recorded as ``name``, in the
    Manager's session archive (``<logdir>/<session>/<worker>/<node>/``, filled by ``stop()``)."""
    folder = Path(manager.session.path) / worker / node
    video = folder / f"{name}.mp4"
    assert video.is_file(), f"{video} is not in the archive; it holds {sorted(folder.parent.rglob('*'))}"
    return video, folder / f"{name}.timestamps.csv"


class FrameLog(cp.Node):
    """Logs each frame it receives: ``[frame_index, timestamp, produced_at]`` (plus its mean BGR
    colour with ``colour=True``), written to ``path`` as JSON at teardown; read back with
    :func:`frame_log`. ``produced_at`` is when the sending node published the chunk.

    Defined in this (user) module, the class travels to Workers by value with the node.
    """

    def __init__(self, name, path, colour=False):
        super().__init__(name)
        self.path, self.colour = str(path), colour

    def prep(self):
        self.seen = []

    def step(self, data_chunks):
        (chunk,) = data_chunks.values()
        entry = [chunk.get("frame_index")["value"], chunk.get("timestamp")["value"], chunk.produced_at]
        if self.colour:
            entry.append(chunk.get("frame")["value"].reshape(-1, 3).mean(axis=0).round().tolist())
        self.seen.append(entry)

    def teardown(self):
        Path(self.path).write_text(json.dumps(self.seen))


def frame_log(path: Path) -> list[list]:
    """What a :class:`FrameLog` wrote."""
    return json.loads(Path(path).read_text())
