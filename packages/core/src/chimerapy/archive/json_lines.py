"""JSON streams: ``name.jsonl``, one ``{"timestamp": t, "data": obj}`` per line."""

from __future__ import annotations

import json
from functools import cached_property
from typing import Any

import numpy as np

from chimerapy.archive.files import complete_lines, require_pandas
from chimerapy.archive.stream import Stream

__all__ = ["JsonStream"]


class JsonStream(Stream):
    """Recorded JSON objects: ``records()`` (dicts with ``timestamp`` and ``data``), ``table()``."""

    kind = "json"

    @cached_property
    def _records(self) -> list[dict[str, Any]]:
        path = self.file("jsonl")
        assert path is not None
        data, torn = complete_lines(path)
        self._note_torn(path, torn)
        records = []
        for number, line in enumerate(data.splitlines(), 1):
            try:
                record = json.loads(line)
                records.append({"timestamp": float(record["timestamp"]), "data": record["data"]})
            except (ValueError, KeyError, TypeError, RecursionError):
                self.notes.append(f"{path.name}: line {number} is not a record (skipped)")
        return records

    def _load_times(self) -> np.ndarray:
        return np.array([record["timestamp"] for record in self._records], dtype=np.float64)

    def records(self) -> list[dict[str, Any]]:
        """Every record as ``{"timestamp": t, "data": obj}``, in file order."""
        return list(self._records)

    def value(self, index: int) -> Any:
        """The object saved as item ``index``."""
        return self._records[self._check_index(index)]["data"]

    def table(self) -> Any:
        """A ``pandas.DataFrame``: ``timestamp``, then the objects' fields flattened
        (``a.b`` for nested dicts), or one column ``data`` for objects that are not dicts."""
        pandas = require_pandas()
        records = self._records
        if records and all(isinstance(r["data"], dict) for r in records):
            fields = pandas.json_normalize([r["data"] for r in records])
        else:
            fields = pandas.DataFrame({"data": [r["data"] for r in records]})
        fields.insert(0, "timestamp", [r["timestamp"] for r in records])
        return fields
