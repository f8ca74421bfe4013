"""DataChunk to and from JSON-ready dicts (``DataChunk.to_json`` / ``DataChunk.from_json``).

Values are encoded with tags, so that what comes back has the type that went in:
numpy arrays (``{"__ndarray__": base64, "dtype", "shape"}``), bytes, tuples, nested DataChunks,
dicts with keys that are not strings, and numpy scalars (as Python numbers). Any other object is
refused, unless ``allow_pickle=True`` both ways (pickle runs code when read: only for data from a
peer that proved who it is).
"""

from __future__ import annotations

import base64
import datetime
import pickle
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from .data_chunk import DataChunk

__all__ = ["chunk_from_json", "chunk_to_json", "decode_value", "encode_value"]

_TAGS = ("__ndarray__", "__bytes__", "__tuple__", "__datachunk__", "__pairs__", "__pickle__", "__datetime__")


def chunk_to_json(chunk: DataChunk, *, allow_pickle: bool = False) -> dict[str, Any]:
    """A JSON-ready dict of ``chunk``: its records and its times."""
    return {
        "records": {
            name: {
                "value": encode_value(record["value"], allow_pickle=allow_pickle),
                "content-type": record["content-type"],
                "ownership": list(record.get("ownership", [])),
            }
            for name, record in chunk.items()
        },
        "created": chunk.created,
        "produced_at": chunk.produced_at,
        "received_at": chunk.received_at,
        "producer": chunk.producer,
        "seq": chunk.seq,
    }


def chunk_from_json(data: dict[str, Any], *, allow_pickle: bool = False) -> DataChunk:
    """The DataChunk :func:`chunk_to_json` described."""
    from .data_chunk import DataChunk

    if not isinstance(data, dict) or not isinstance(data.get("records"), dict):
        raise TypeError("a DataChunk's JSON is a dict with 'records' (from DataChunk.to_json())")
    chunk = DataChunk()
    for name, record in data["records"].items():
        chunk.update(name, {
            "value": decode_value(record["value"], allow_pickle=allow_pickle),
            "content-type": record.get("content-type", "other"),
            "ownership": record.get("ownership", []),
        })
    if data.get("created") is not None:
        chunk.created = float(data["created"])
    chunk.produced_at = _optional_float(data.get("produced_at"))
    chunk.received_at = _optional_float(data.get("received_at"))
    chunk.producer = data.get("producer")
    chunk.seq = data.get("seq")
    return chunk


def encode_value(value: Any, *, allow_pickle: bool = False) -> Any:
    """``value`` as JSON-ready data (see the module docstring)."""
    from .data_chunk import DataChunk

    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray) and value.dtype != object:
        data = np.ascontiguousarray(value)
        return {"__ndarray__": base64.b64encode(data.tobytes()).decode("ascii"),
                "dtype": data.dtype.str, "shape": list(data.shape)}
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"__bytes__": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, DataChunk):
        return {"__datachunk__": chunk_to_json(value, allow_pickle=allow_pickle)}
    if isinstance(value, list):
        return [encode_value(item, allow_pickle=allow_pickle) for item in value]
    if isinstance(value, tuple):
        return {"__tuple__": [encode_value(item, allow_pickle=allow_pickle) for item in value]}
    if isinstance(value, datetime.datetime):
        return {"__datetime__": value.isoformat()}
    if isinstance(value, dict):
        if all(isinstance(key, str) and key not in _TAGS for key in value):
            return {key: encode_value(item, allow_pickle=allow_pickle) for key, item in value.items()}
        return {"__pairs__": [[encode_value(k, allow_pickle=allow_pickle), encode_value(v, allow_pickle=allow_pickle)]
                              for k, v in value.items()]}
    if allow_pickle:
        return {"__pickle__": base64.b64encode(pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)).decode("ascii")}
    raise TypeError(
        f"a {type(value).__name__} cannot be written as JSON; store numbers, strings, lists, dicts, "
        "numpy arrays or bytes in the record (or pass allow_pickle=True between trusted peers)"
    )


def decode_value(data: Any, *, allow_pickle: bool = False) -> Any:
    """The value :func:`encode_value` encoded."""
    if isinstance(data, list):
        return [decode_value(item, allow_pickle=allow_pickle) for item in data]
    if not isinstance(data, dict):
        return data
    if "__ndarray__" in data:
        raw = base64.b64decode(data["__ndarray__"])
        return np.frombuffer(raw, dtype=np.dtype(data["dtype"])).reshape(data["shape"]).copy()
    if "__bytes__" in data:
        return base64.b64decode(data["__bytes__"])
    if "__datachunk__" in data:
        return chunk_from_json(data["__datachunk__"], allow_pickle=allow_pickle)
    if "__tuple__" in data:
        return tuple(decode_value(item, allow_pickle=allow_pickle) for item in data["__tuple__"])
    if "__datetime__" in data:
        return datetime.datetime.fromisoformat(data["__datetime__"])
    if "__pairs__" in data:
        return {decode_value(k, allow_pickle=allow_pickle): decode_value(v, allow_pickle=allow_pickle)
                for k, v in data["__pairs__"]}
    if "__pickle__" in data:
        if not allow_pickle:
            raise ValueError("this JSON holds a pickled value; read it with allow_pickle=True only if you trust it")
        return pickle.loads(base64.b64decode(data["__pickle__"]))  # opt-in, trusted peers only
    return {key: decode_value(item, allow_pickle=allow_pickle) for key, item in data.items()}


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)
