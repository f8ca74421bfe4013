"""Session: one recording session's folder under the Manager's logdir, its log and meta.json."""

from __future__ import annotations

import json
import logging
import os
import time
import uuid
from pathlib import Path
from typing import Any, TextIO

from ..private import FOLDER_MODE, write_private

__all__ = ["Session"]

log = logging.getLogger(__name__)


class Session:
    """The folder ``<logdir>/<YYYYmmdd-HHMMSS>-<id>/`` with ``meta.json`` and ``chimerapy.log``.

    The folder is created 0700 and its files 0600: only the Manager's user reads the archive
    (``mode`` widens it on request, e.g. 0o750 for a group; files get it without execute bits).

    Args:
        logdir: the Manager's log directory (created if needed).
    """

    def __init__(self, logdir: Path, *, mode: int = FOLDER_MODE) -> None:
        self.folder_mode, self.file_mode = mode, mode & 0o666
        stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime())
        self.id = f"{stamp}-{uuid.uuid4().hex[:6]}"
        self.path = Path(logdir) / self.id
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.mkdir(mode=self.folder_mode, exist_ok=False)
        os.chmod(self.path, self.folder_mode)
        self.meta: dict[str, Any] = {"session": self.id, "created": time.time()}
        descriptor = os.open(self.path / "chimerapy.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW,
                             self.file_mode)
        os.fchmod(descriptor, self.file_mode)
        self._log: TextIO | None = os.fdopen(descriptor, "a", encoding="utf-8")

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
        write_private(self.path / "meta.json", json.dumps(self.meta, indent=2, default=str).encode(),
                      mode=self.file_mode)

    def close(self) -> None:
        """Close the log file."""
        if self._log is not None:
            self._log.close()
            self._log = None
