"""The session log, ``chimerapy.log``: one line per record, read back with full times.

Each line is ``HH:MM:SS.mmm LEVEL   [worker/node] message`` in the Manager's local time zone;
messages can span lines (tracebacks). The date is the session's (its ``created`` time in
``meta.json``); a time of day earlier than the one before means the next day began.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass
from pathlib import Path

from chimerapy.archive.files import complete_lines

__all__ = ["LogRecord", "read_log"]

_LINE = re.compile(r"^(\d\d):(\d\d):(\d\d)\.(\d{3}) (\w+)\s+\[([^\]]*)\] ?(.*)$")


@dataclass(frozen=True)
class LogRecord:
    """One log record: Manager time, level, source (``worker`` or ``worker/node``), message."""

    time: float
    level: str
    source: str
    message: str

    @property
    def worker(self) -> str:
        return self.source.split("/", 1)[0]

    @property
    def node(self) -> str:
        return self.source.split("/", 1)[1] if "/" in self.source else ""


def read_log(path: Path, day_of: float | None) -> list[LogRecord]:
    """Read ``path``; ``day_of`` is a UNIX time on the session's first day (None: today)."""
    if not path.exists():
        return []
    data, _ = complete_lines(path)
    base = datetime.datetime.fromtimestamp(day_of) if day_of else datetime.datetime.now()
    midnight = base.replace(hour=0, minute=0, second=0, microsecond=0)
    records: list[LogRecord] = []
    days, previous = 0, -1.0
    for line in data.decode("utf-8", errors="replace").splitlines():
        match = _LINE.match(line)
        if match is None:
            if records:  # a continuation line (a traceback)
                last = records[-1]
                records[-1] = LogRecord(last.time, last.level, last.source, f"{last.message}\n{line}")
            continue
        hours, minutes, seconds, millis, level, source, message = match.groups()
        of_day = int(hours) * 3600 + int(minutes) * 60 + int(seconds) + int(millis) / 1000
        if of_day < previous - 3600:
            days += 1
        previous = of_day
        moment = midnight + datetime.timedelta(days=days, seconds=of_day)
        records.append(LogRecord(moment.timestamp(), level, source, message))
    return records
