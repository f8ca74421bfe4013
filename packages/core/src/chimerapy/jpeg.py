"""JPEG through PyAV's MJPEG codec: thumbnails for live previews, frames across hosts."""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np

__all__ = ["JpegDecoder", "JpegEncoder"]


class JpegEncoder:
    """Encodes uint8 BGR ``(H, W, 3)`` or gray ``(H, W)`` frames, scaled to a size, as JPEG.

    Args:
        quality: the MJPEG quantiser scale, 2 (best) to 31 (smallest).
    """

    def __init__(self, quality: int = 5) -> None:
        self.quality = quality
        self._contexts: dict[tuple[int, int], av.CodecContext] = {}

    def encode(self, image: np.ndarray, width: int | None = None, height: int | None = None) -> bytes:
        """JPEG bytes of ``image`` scaled to ``width`` x ``height`` (default: its own size)."""
        if image.dtype != np.uint8 or image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] != 3):
            raise ValueError(f"JPEG needs a uint8 (H, W) or (H, W, 3) frame, got {image.dtype} {image.shape}")
        height = height or image.shape[0]
        width = width or image.shape[1]
        width, height = width + width % 2, height + height % 2  # 4:2:0 needs even sizes
        context = self._contexts.get((width, height))
        if context is None:
            context = av.CodecContext.create("mjpeg", "w")
            context.width, context.height = width, height
            context.pix_fmt = "yuvj420p"
            context.time_base = Fraction(1, 30)
            context.options = {"qscale": str(self.quality)}
            self._contexts[(width, height)] = context
        pixels = np.ascontiguousarray(image)
        frame = av.VideoFrame.from_ndarray(pixels, format="bgr24" if pixels.ndim == 3 else "gray")
        packets = context.encode(frame.reformat(width=width, height=height, format="yuvj420p"))
        return b"".join(bytes(packet) for packet in packets)


class JpegDecoder:
    """Decodes JPEG bytes back into uint8 BGR frames."""

    def __init__(self) -> None:
        self._context = av.CodecContext.create("mjpeg", "r")

    def decode(self, data: bytes | memoryview) -> np.ndarray:
        frames = self._context.decode(av.Packet(bytes(data)))
        if not frames:
            raise ValueError("not a decodable JPEG image")
        return frames[0].to_ndarray(format="bgr24")
