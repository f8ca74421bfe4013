"""The archive's error: a session folder or stream that cannot be read as asked."""

from __future__ import annotations

from chimerapy.errors import ChimeraPyError

__all__ = ["ArchiveError"]


class ArchiveError(ChimeraPyError, LookupError):
    """A session, stream or sample that is not there, or a file that cannot be read.

    The message names the path or the stream and what to do instead.
    """
