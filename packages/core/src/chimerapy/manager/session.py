"""Session: one recording session's folder under the Manager's logdir, its log and meta.json."""

from __future__ import annotations

import json
import logging
import time
import uuid
from pathlib import Path
from typing import Any, TextIO

__all__ = ["Session"]

log = logging.getLogger(__name__)


class Session:
    """The folder ``<logdir>/<YYYYmmdd-HHMMSS>-<id>/`` with ``meta.json`` and ``chimerapy.log``.

    Args:
        logdir: the Manager's log directory (created if needed).
        session_id: the id chosen beforehand with :meth:`new_id` (its folder may exist already);
            by default a new one.
    """

    def __init__(self, logdir: Path, session_id: str | None = None) -> None:
        self.id = session_id or self.new_id()
        self.path = Path(logdir) / self.id
        self.path.mkdir(parents=True, exist_ok=session_id is not None)
        self.meta: dict[str, Any] = {"session": self.id, "created": time.time()}
        self._log: TextIO | None = (self.path / "chimerapy.log").open("a", encoding="utf-8")

    @staticmethod
    def new_id() -> str:
        """A new session id: ``YYYYmmdd-HHMMSS-<6 hex digits>``, the name of its folder."""
        stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime())
        return f"{stamp}-{uuid.uuid4().hex[:6]}"

    def write_log(self, record: dict[str, Any]) -> None:
        """Append one log record (time, worker, node, level, message) to ``chimerapy.log``."""
        if self._log is None:
            return
        stamp = time.strftime("%H:%M:%S", time.localtime(record.get("time", time.time())))
        millis = int((record.get("time", 0.0) % 1) * 1000)
        source = "/".join(str(record[k]) for k in ("worker", "node") if record.get(k))
        self._log.write(f"{stamp}.{millis:03d} {record.get('level', 'INFO'):<7} [{source}] {record.get('message', '')}\n")
        self._log.flush()

    def update_meta(self, **fields: Any) -> None:
        """Merge ``fields`` into meta.json and write it (atomically)."""
        self.meta.update(fields)
        target = self.path / "meta.json"
        temporary = target.with_suffix(".json.tmp")
        temporary.write_text(json.dumps(self.meta, indent=2, default=str), encoding="utf-8")
        temporary.replace(target)

    def close(self) -> None:
        """Close the log file."""
        if self._log is not None:
            self._log.close()
            self._log = None
