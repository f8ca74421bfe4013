"""SaveCounter: what a node's ``save_*`` calls reach while its pipeline previews.

While a pipeline previews (:meth:`chimerapy.Manager.preview`) its nodes run as when recording,
but every ``save_*`` call is only counted, per record: no file and no folder is made. The
counts are in the node's statistics as ``preview_saves`` (record name -> ``{"kind", "calls"}``).
Once recording begins the node's runtime hands its calls to the real
:class:`~chimerapy.records.Recorder` instead.
"""

from __future__ import annotations

import threading
from typing import Any

__all__ = ["SaveCounter"]


class SaveCounter:
    """Counts ``save_*`` calls per record and writes nothing. Thread-safe.

    It takes the same calls as :class:`~chimerapy.records.Recorder`; a record name that breaks
    the naming rule raises :class:`~chimerapy.errors.RecordError` as it would when recording, so
    that a preview finds it first.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, dict[str, Any]] = {}

    def save_video(self, name: str, *args: Any, **kwargs: Any) -> None:
        """Count one video frame."""
        self._count("video", name)

    def save_audio(self, name: str, *args: Any, **kwargs: Any) -> None:
        """Count one block of audio."""
        self._count("audio", name)

    def save_tabular(self, name: str, *args: Any, **kwargs: Any) -> None:
        """Count one call with rows of a table."""
        self._count("tabular", name)

    def save_image(self, name: str, *args: Any, **kwargs: Any) -> None:
        """Count one image."""
        self._count("image", name)

    def save_json(self, name: str, *args: Any, **kwargs: Any) -> None:
        """Count one JSON object."""
        self._count("json", name)

    def save_text(self, name: str, *args: Any, **kwargs: Any) -> None:
        """Count one piece of text."""
        self._count("text", name)

    def save_array(self, name: str, *args: Any, **kwargs: Any) -> None:
        """Count one array."""
        self._count("array", name)

    def _count(self, kind: str, name: str) -> None:
        from ..records.naming import check_name  # the node process has loaded the records by now

        name = check_name(name)
        with self._lock:
            entry = self._counts.setdefault(name, {"kind": kind, "calls": 0})
            entry["calls"] += 1

    def stats(self) -> dict[str, dict[str, Any]]:
        """Record name -> ``{"kind": "video", "calls": n}`` (a copy)."""
        with self._lock:
            return {name: dict(entry) for name, entry in self._counts.items()}
