"""A stopped node's last output, handed to its Worker for ``Manager.gather`` after the stop.

The node writes it (pickled, 0600) into the Worker's private folder as it stops, and the Worker
reads it only if a gather asks: a frame is not encoded as JSON at every stop for nothing. The
Worker passes the bytes on as they are (it may lack the user's modules); the Manager, which
runs the user's program, unpickles them (:func:`decode`), as it does the pickled values of a
running node's gather answer: from an authenticated Worker only.
"""

from __future__ import annotations

import base64
import logging
import os
import pickle
import tempfile
from pathlib import Path
from typing import Any

from ..data_chunk import DataChunk

log = logging.getLogger(__name__)

_PICKLED = "__pickled_chunk__"


def write(data: bytes | None, directory: str | None) -> str | None:
    """Write the pickled chunk ``data`` into ``directory``; returns the file's path (None when
    there is nothing to hand over)."""
    if data is None or not directory:
        return None
    descriptor, path = tempfile.mkstemp(prefix="last-", suffix=".pickle", dir=directory)  # 0600
    with os.fdopen(descriptor, "wb") as file:
        file.write(data)
    return path


def read(path: str | None, directory: Path) -> dict[str, Any] | None:
    """The output that :func:`write` kept at ``path``, for gather's JSON answer (None if there is
    none). Only a file directly inside ``directory`` (the Worker's private folder) is read."""
    if not path or Path(path).parent != directory:
        return None
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        with os.fdopen(descriptor, "rb") as file:
            return {_PICKLED: base64.b64encode(file.read()).decode("ascii")}
    except OSError:
        log.warning("gather: the last output kept at %s cannot be read", path, exc_info=True)
        return None


def decode(encoded: dict[str, Any]) -> DataChunk:
    """The chunk of a gather answer: kept by :func:`write`, or a running node's ``to_json``."""
    if _PICKLED not in encoded:
        return DataChunk.from_json(encoded, allow_pickle=True)
    chunk = pickle.loads(base64.b64decode(encoded[_PICKLED]))  # an authenticated Worker's node
    if not isinstance(chunk, DataChunk):
        raise TypeError(f"a gather answer held a {type(chunk).__name__}, not a DataChunk")
    return chunk


def remove(path: str | None) -> None:
    """Delete a kept output once it is no longer needed."""
    if path:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
