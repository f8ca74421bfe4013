"""Errors of the video pack, under ChimeraPy's one exception tree::

    ChimeraPyError
    └── VideoSourceError(OSError)   a camera, video file or display that cannot be opened or read

Bad option values (a negative fps, a malformed region) raise plain :class:`ValueError` when the
node is created.
"""

from __future__ import annotations

from chimerapy import ChimeraPyError

__all__ = ["VideoSourceError"]


class VideoSourceError(ChimeraPyError, OSError):
    """A camera, video file or display that cannot be opened or read.

    The message names the device, file or display and says what to check.

    Attributes:
        source: the device index, path, URL or display name.
    """

    def __init__(self, message: str, *, source: object) -> None:
        super().__init__(message)
        self.source = source
