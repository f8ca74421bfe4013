"""Image streams: the folder ``name/`` of numbered PNGs and its ``timestamps.csv``."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

import numpy as np

from chimerapy.archive.errors import ArchiveError
from chimerapy.archive.files import CsvTable, time_column
from chimerapy.archive.stream import Stream

__all__ = ["ImageStream", "read_png"]

# PNG pixel formats as FFmpeg names them -> the numpy layout the recorder was given.
_LAYOUTS = {"gray": "gray", "gray16be": "gray16le", "rgb24": "bgr24", "rgba": "bgra"}


def read_png(path: Path) -> np.ndarray:
    """Decode a PNG into the layout it was saved from: gray, uint16 gray, BGR or BGRA."""
    import av  # here: checking a session without images should not load PyAV

    with av.open(str(path)) as container:
        frame = next(container.decode(video=0))
        layout = _LAYOUTS.get(frame.format.name, "bgr24")
        return frame.to_ndarray(format=layout)


class ImageStream(Stream):
    """Recorded images: ``image(i)``, ``image_at(t)`` and ``path(i)``."""

    kind = "image"

    @cached_property
    def _table(self) -> CsvTable:
        return self._read_csv("timestamps")

    def _load_times(self) -> np.ndarray:
        return time_column(self._table)

    def path(self, index: int) -> Path:
        """The PNG file of image ``index`` (its ``.part`` if its transfer never finished)."""
        name = self._table.rows[self._check_index(index)][0]
        path = self.folder / self.name / name
        if not path.exists() and path.with_name(name + ".part").exists():
            return path.with_name(name + ".part")
        return path

    def image(self, index: int) -> np.ndarray:
        """Image ``index`` as saved (gray, uint16 gray, BGR or BGRA).

        Raises:
            ArchiveError: the PNG is missing or cannot be decoded.
        """
        import av

        path = self.path(index)
        try:
            return read_png(path)
        except (OSError, av.error.FFmpegError, StopIteration) as error:
            raise ArchiveError(f"stream {self.key!r}: cannot read image {path}: {error}") from None

    def image_at(self, t: float) -> np.ndarray:
        """The latest image saved at or before Manager time ``t``."""
        return self.image(self._require_index(self.index_at(t), t))

    def value(self, index: int) -> np.ndarray:
        return self.image(index)
