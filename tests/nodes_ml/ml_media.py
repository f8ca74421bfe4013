"""Test media for the ML pack: a packaged photograph, spoken sentences, audio chunks, face clips.

Everything comes from packages or programs installed on the machine (scikit-image's astronaut,
Debian's espeak-ng, PyAV), never from the network.
"""

from __future__ import annotations

import subprocess
import wave
from pathlib import Path
from collections.abc import Iterator

import av
import numpy as np

#: Where the astronaut's face is in ``skimage.data.astronaut()`` (x, y, w, h), measured by eye on
#: the 512x512 image: forehead to chin, ear to ear.
ASTRONAUT_FACE = (170, 60, 110, 120)


def astronaut() -> np.ndarray:
    """scikit-image's astronaut photograph (512x512, shipped inside its wheel) as uint8 BGR."""
    from skimage import data

    return np.ascontiguousarray(data.astronaut()[:, :, ::-1])


def overlap(box: list[float], truth: tuple[float, float, float, float]) -> float:
    """Intersection over union of two ``[x, y, w, h]`` boxes."""
    ax, ay, aw, ah = box
    bx, by, bw, bh = truth
    w = max(0.0, min(ax + aw, bx + bw) - max(ax, bx))
    h = max(0.0, min(ay + ah, by + bh) - max(ay, by))
    return w * h / (aw * ah + bw * bh - w * h)


def speak(path: Path, text: str) -> tuple[np.ndarray, int]:
    """``text`` spoken by espeak-ng into ``path``: its int16 mono samples and rate."""
    subprocess.run(
        ["espeak-ng", "-w", str(path), text],
        check=True,
        timeout=60,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    with wave.open(str(path)) as file:
        assert file.getnchannels() == 1 and file.getsampwidth() == 2
        return np.frombuffer(file.readframes(file.getnframes()), np.int16), file.getframerate()


def audible_extent(samples: np.ndarray, rate: int, level: float = 0.01) -> tuple[float, float]:
    """Seconds from the start of ``samples`` to its first and last sample above ``level`` (of 1)."""
    loud = np.flatnonzero(np.abs(samples.astype(np.float64) / 32768) > level)
    return loud[0] / rate, (loud[-1] + 1) / rate


def audio_chunks(samples: np.ndarray, rate: int, *, block: int, start: float) -> Iterator[dict]:
    """Audio chunk records, as audio sources send them, of ``samples`` from time ``start`` on."""
    samples = samples.reshape(len(samples), -1)
    for first in range(0, len(samples), block):
        part = samples[first : first + block]
        yield {
            "mic": {
                "samples": part,
                "rate": rate,
                "channels": part.shape[1],
                "timestamp": start + first / rate,
                "sample_index": first,
            }
        }


def face_frame(
    index: int, size: tuple[int, int] = (320, 240), face: int = 240
) -> tuple[np.ndarray, float]:
    """Frame ``index`` of a clip where the astronaut (``face`` pixels high) drifts left and right.

    Returns the frame (uint8 BGR) and the x offset of the photograph in it.
    """
    width, height = size
    import cv2

    photo = cv2.resize(astronaut(), (face, face), interpolation=cv2.INTER_AREA)
    x = (width - face) * (0.5 + 0.5 * np.sin(index * 2 * np.pi / 60))
    frame = np.full((height, width, 3), 96, np.uint8)
    left = int(round(x))
    frame[(height - face) // 2 : (height - face) // 2 + face, left : left + face] = photo
    return frame, left


def write_face_clip(
    path: Path, *, frames: int, fps: int = 30, size: tuple[int, int] = (320, 240)
) -> Path:
    """An H.264 MP4 of :func:`face_frame` frames 0 to ``frames - 1`` (loops seamlessly every 60)."""
    width, height = size
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for i in range(frames):
            frame, _ = face_frame(i, size)
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="bgr24")):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def count_frames(path: Path) -> int:
    """The number of video frames in ``path`` (packets demuxed, not decoded)."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return sum(1 for packet in container.demux(stream) if packet.size)
