"""JSON records: one JSON Lines file.

File of a record ``name``: ``name.jsonl``, one line ``{"timestamp": t, "data": obj}`` per saved
object. The object is serialised in the caller, at the time of the call, so the caller may
mutate it afterwards. numpy scalars and arrays are converted (``.item()``, ``.tolist()``);
``NaN`` and infinities are written as Python's ``json`` writes them (``NaN``, ``Infinity``),
which Python and pandas read back.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from chimerapy.records.kind import Accepted, RecordFormat
from chimerapy.records.text import AppendWriter

__all__ = ["JsonFormat"]


class JsonFormat(RecordFormat):
    """Serialises each object at the call; the writer only appends bytes."""

    kind = "json"
    method = "save_json"

    @staticmethod
    def file_names(name: str) -> tuple[str, ...]:
        return (f"{name}.jsonl",)

    def accept(self, obj: Any) -> Accepted:
        """Serialise ``obj``; returns the UTF-8 JSON text of the ``data`` field."""
        try:
            text = json.dumps(obj, default=_numpy_default, ensure_ascii=False)
            data = text.encode("utf-8")
        except (TypeError, ValueError, RecursionError) as exc:
            raise self.error(
                f"the object cannot be serialised to JSON ({exc}); pass dicts, lists, str, "
                "numbers, bool and None (numpy arrays are converted), or convert it first"
            ) from exc
        return Accepted(data, nbytes=len(data))

    def open_writer(self, directory: Path, on_file: Callable[[Path], None]) -> AppendWriter:
        return AppendWriter(directory / f"{self.name}.jsonl", self.name, on_file, _json_line)


def _json_line(timestamp: float, data: bytes) -> bytes:
    return b'{"timestamp": %s, "data": %s}\n' % (repr(timestamp).encode(), data)


def _numpy_default(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")
