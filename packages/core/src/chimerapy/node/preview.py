"""Live previews of a node's outputs: small JPEG thumbnails of images, values of numbers.

The node runtime builds a preview of an output chunk at most every ``interval`` seconds and
sends it to the Manager, which shows it on the dashboard (image outputs as thumbnails, numeric
records such as an audio level as values).
"""

from __future__ import annotations

import base64
import numbers
import time
from typing import TYPE_CHECKING, Any

import numpy as np

from ..data_chunk import DataChunk

if TYPE_CHECKING:
    from ..net.jpeg import JpegEncoder

__all__ = ["PreviewMaker"]


class PreviewMaker:
    """Turns output chunks into small JSON-ready previews, throttled.

    Args:
        interval: the least time between two previews of one node.
        width: the thumbnail width (height keeps the aspect ratio).
    """

    def __init__(self, interval: float = 0.5, width: int = 160) -> None:
        self.interval = interval
        self.width = width
        self._encoder: JpegEncoder | None = None  # made for the first image output
        self._last = 0.0

    def due(self) -> bool:
        """Whether it is time for a new preview."""
        return time.monotonic() - self._last >= self.interval

    def make(self, chunk: DataChunk) -> dict[str, Any]:
        """The preview of ``chunk``: record name -> {"jpeg", "width", "height"} or {"value"}."""
        self._last = time.monotonic()
        preview: dict[str, Any] = {}
        for name, record in chunk.items():
            value = record["value"]
            if record["content-type"] == "image" and isinstance(value, np.ndarray) and value.dtype == np.uint8 \
                    and value.ndim in (2, 3) and value.shape[0] > 0 and value.shape[1] > 0:
                height = max(2, round(value.shape[0] * self.width / value.shape[1]))
                if self._encoder is None:
                    from ..net.jpeg import JpegEncoder

                    self._encoder = JpegEncoder(quality=75)
                jpeg = self._encoder.encode(value[..., :3] if value.ndim == 3 else value, self.width, height)
                preview[name] = {"jpeg": base64.b64encode(jpeg).decode(), "width": self.width, "height": height}
            elif isinstance(value, numbers.Real) and not isinstance(value, bool):
                preview[name] = {"value": float(value)}
        return preview
