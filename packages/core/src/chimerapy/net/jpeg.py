"""JPEG through libjpeg-turbo (simplejpeg): frames across hosts, thumbnails for live previews.

Colour frames are BGR ``(H, W, 3)`` (OpenCV's order); gray ones ``(H, W)`` or ``(H, W, 1)``.
"""

from __future__ import annotations

import numpy as np
import simplejpeg

__all__ = ["JpegDecoder", "JpegEncoder"]


class JpegEncoder:
    """Encodes uint8 BGR or gray frames, optionally scaled to a size, as JPEG.

    Args:
        quality: 1 (smallest) to 100 (best).
    """

    def __init__(self, quality: int = 85) -> None:
        self.quality = quality

    def encode(self, image: np.ndarray, width: int | None = None, height: int | None = None) -> bytes:
        """JPEG bytes of ``image`` scaled to ``width`` x ``height`` (default: its own size)."""
        gray = image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 1)
        if image.dtype != np.uint8 or not (gray or (image.ndim == 3 and image.shape[2] == 3)):
            raise ValueError(f"JPEG needs a uint8 (H, W), (H, W, 1) or (H, W, 3) frame, got {image.dtype} {image.shape}")
        pixels = _resize(image, width or image.shape[1], height or image.shape[0])
        pixels = np.ascontiguousarray(pixels.reshape(*pixels.shape[:2], -1))
        if gray:
            return simplejpeg.encode_jpeg(pixels, self.quality, colorspace="GRAY", colorsubsampling="Gray")
        return simplejpeg.encode_jpeg(pixels, self.quality, colorspace="BGR", colorsubsampling="420")


class JpegDecoder:
    """Decodes JPEG bytes into uint8 frames: BGR ``(H, W, 3)``, or ``(H, W)`` for gray ones."""

    def decode(self, data: bytes | memoryview) -> np.ndarray:
        try:
            _, _, colorspace, _ = simplejpeg.decode_jpeg_header(data)
            if colorspace == "Gray":
                return simplejpeg.decode_jpeg(data, colorspace="GRAY")[..., 0]
            return simplejpeg.decode_jpeg(data, colorspace="BGR")
        except (ValueError, RuntimeError) as error:
            raise ValueError(f"not a decodable JPEG image: {error}") from None


def _resize(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """``image`` at ``width`` x ``height`` by nearest-neighbour sampling (thumbnails)."""
    if (height, width) == image.shape[:2]:
        return image
    rows = np.arange(height) * image.shape[0] // height
    columns = np.arange(width) * image.shape[1] // width
    return image[rows[:, None], columns]
