"""Session: one recording session's folder under the Manager's logdir, its log and meta.json."""

from __future__ import annotations

import json
import logging
import os
import time
import uuid
from pathlib import Path
from typing import Any, TextIO

from ..names import check_name
from ..private import FOLDER_MODE, write_private

__all__ = ["Session"]

log = logging.getLogger(__name__)


class Session:
    """The folder ``<logdir>/<YYYYmmdd-HHMMSS>-<id>/`` with ``meta.json`` and ``chimerapy.log``.

    The folder is created 0700 and its files 0600: only the Manager's user reads the archive
    (``mode`` widens it on request, e.g. 0o750 for a group; files get it without execute bits).

    Args:
        logdir: the Manager's log directory (created if needed).
        session_id: the id chosen beforehand with :meth:`new_id` (its folder may exist already);
            by default a new one.
    """

    def __init__(self, logdir: Path, session_id: str | None = None, *, existing: str | None = None,
                 mode: int = FOLDER_MODE) -> None:
        self.folder_mode, self.file_mode = mode, mode & 0o666
        if existing is None:
            self.id = check_name("session", session_id) if session_id else self.new_id()
        else:
            self.id = check_name("session", existing)
        self.path = Path(logdir) / self.id
        self.meta: dict[str, Any] = {"session": self.id, "created": time.time()}
        if existing is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.mkdir(mode=self.folder_mode, exist_ok=session_id is not None)  # chosen beforehand
            os.chmod(self.path, self.folder_mode)
        else:
            self.meta = json.loads((self.path / "meta.json").read_text(encoding="utf-8"))
        #: The last error writing meta.json or the log (a full disk), or None.
        self.write_error: str | None = None
        descriptor = os.open(self.path / "chimerapy.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW,
                             self.file_mode)
        os.fchmod(descriptor, self.file_mode)
        self._log: TextIO | None = os.fdopen(descriptor, "a", encoding="utf-8")

    @classmethod
    def open(cls, folder: Path) -> Session:
        """The existing session in ``folder`` (``<logdir>/<id>`` holding meta.json), to add to it."""
        folder = Path(folder)
        if not (folder / "meta.json").is_file():
            raise FileNotFoundError(f"{folder} holds no meta.json: it is not a ChimeraPy session folder")
        return cls(folder.parent, existing=folder.name)

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
        try:
            self._log.write(f"{stamp}.{millis:03d} {record.get('level', 'INFO'):<7} [{source}] "
                            f"{record.get('message', '')}\n")
            self._log.flush()
        except OSError as error:  # a full disk: the log is best effort, the report says so
            if self.write_error is None:
                log.error("cannot write %s: %s", self.path / "chimerapy.log", error)
            self.write_error = f"chimerapy.log: {error}"

    def update_meta(self, **fields: Any) -> bool:
        """Merge ``fields`` into meta.json and write it (atomically).

        Returns:
            True when written; False when the disk refused (a full disk): the fields are kept
            here, no temporary file is left, :attr:`write_error` says why, and the next call
            tries again.
        """
        self.meta.update(fields)
        target = self.path / "meta.json"
        try:
            write_private(target, json.dumps(self.meta, indent=2, default=str).encode(), mode=self.file_mode)
        except OSError as error:  # write_private leaves no temporary file behind
            self.write_error = f"meta.json: {error}"
            log.error("cannot write %s: %s; the session's report still holds everything", target, error)
            return False
        return True

    def close(self) -> None:
        """Close the log file."""
        if self._log is not None:
            self._log.close()
            self._log = None
