"""DataChunk: the unit of data that flows along the edges of a graph."""

from __future__ import annotations

import datetime
import time
from collections.abc import Iterable, Iterator
from typing import Any, Literal

import numpy as np

__all__ = ["CONTENT_TYPES", "DataChunk"]

#: The content types a record may declare. ``"image"`` marks a frame (a ``uint8`` numpy array of
#: shape ``(H, W)`` or ``(H, W, 3)``) that may be JPEG-compressed when it crosses machines.
CONTENT_TYPES = ("image", "other")

ContentType = Literal["image", "other"]


class DataChunk:
    """A named set of records plus the times at which the chunk was produced and received.

    Each record is a dictionary with the keys ``"value"``, ``"content-type"`` and ``"ownership"``
    (the names of the nodes the record passed through, producer first).

    Ownership of values: a value added to a chunk that a node returns from ``step`` is sent without
    copying, so the node must not modify it afterwards. Values received from other nodes are
    read-only views of the message buffers: copy them (``value.copy()``) before modifying.

    Times are Manager-aligned UNIX times in seconds (see :meth:`chimerapy.Node.now`); they are
    ``None`` until the chunk is published and received. :attr:`created` (this process's clock)
    is set when the chunk is made, so a chunk built by hand has a time too.

    As in ChimeraPy 0.0.10, ``get("meta")`` returns the record ``{"value": {"ownership",
    "created", "transmitted", "received"}, "content-type": "meta"}`` (unless a record is named
    ``"meta"``); chunks compare equal when their records hold equal values.
    """

    __slots__ = ("_records", "created", "produced_at", "producer", "received_at", "seq")

    def __init__(self) -> None:
        self._records: dict[str, dict[str, Any]] = {}
        #: UNIX time at which the chunk was made (here, or for a received chunk, by its decoder).
        self.created: float = time.time()
        #: Manager-aligned time at which the producing node published the chunk.
        self.produced_at: float | None = None
        #: Manager-aligned time at which the consuming node received the chunk.
        self.received_at: float | None = None
        #: Name of the node that produced the chunk.
        self.producer: str | None = None
        #: Sequence number of the chunk on its producer's stream (0, 1, 2, ...).
        self.seq: int | None = None

    def add(self, name: str, value: Any, content_type: ContentType = "other") -> None:
        """Add (or replace) the record ``name`` holding ``value``.

        Args:
            name: the record's name; a non-empty string.
            value: any picklable object; numpy arrays travel as raw buffers.
            content_type: ``"image"`` for frames, ``"other"`` for anything else.

        Raises:
            ValueError: for an empty name or an unknown content type.
        """
        if not isinstance(name, str) or not name:
            raise ValueError(f"a record name must be a non-empty string, got {name!r}")
        if content_type not in CONTENT_TYPES:
            raise ValueError(
                f"record {name!r}: content_type must be one of {CONTENT_TYPES}, got {content_type!r}"
            )
        self._records[name] = {"value": value, "content-type": content_type, "ownership": []}

    def get(self, name: str) -> dict[str, Any]:
        """Return the record ``name`` as a dict with ``value``, ``content-type`` and ``ownership``.

        Raises:
            KeyError: naming the missing record and the records the chunk holds.
        """
        try:
            return self._records[name]
        except KeyError:
            if name == "meta":
                return self._meta()
            raise KeyError(
                f"this DataChunk has no record {name!r}; it holds {sorted(self._records)}"
            ) from None

    def update(self, name: str, record: dict[str, Any]) -> None:
        """Overwrite the record ``name`` with ``record``, dropping its previous metadata.

        ``record`` must hold a ``"value"``; ``"content-type"`` defaults to ``"other"`` and
        ``"ownership"`` to an empty list.
        """
        if "value" not in record:
            raise ValueError(f"record {name!r}: a record needs a 'value' key, got {sorted(record)}")
        content_type = record.get("content-type", "other")
        if content_type not in CONTENT_TYPES:
            raise ValueError(
                f"record {name!r}: content-type must be one of {CONTENT_TYPES}, got {content_type!r}"
            )
        self._records[name] = {
            "value": record["value"],
            "content-type": content_type,
            "ownership": list(record.get("ownership", [])),
        }

    def detached(self, names: Iterable[str] | None = None) -> DataChunk:
        """A copy whose numpy arrays (those of the records ``names``; default: all) are copies
        too: safe to keep after the buffers a received or sent chunk views are reused."""
        names = set(self._records if names is None else names)
        copy = DataChunk()
        copy.producer, copy.seq, copy.produced_at = self.producer, self.seq, self.produced_at
        copy.created, copy.received_at = self.created, self.received_at
        for name, record in self._records.items():
            value = record["value"]
            copy._records[name] = ({**record, "value": value.copy()} if name in names and isinstance(value, np.ndarray)
                                   else record)
        return copy

    @property
    def time(self) -> float:
        """When the chunk's data was made: its production time if it was sent, else :attr:`created`."""
        return self.produced_at if self.produced_at is not None else self.created

    def to_json(self, *, allow_pickle: bool = False) -> dict[str, Any]:
        """A JSON-ready dict of the records and times (see :mod:`chimerapy.chunk_json`)."""
        from .chunk_json import chunk_to_json

        return chunk_to_json(self, allow_pickle=allow_pickle)

    @classmethod
    def from_json(cls, data: dict[str, Any], *, allow_pickle: bool = False) -> DataChunk:
        """The chunk :meth:`to_json` described."""
        from .chunk_json import chunk_from_json

        return chunk_from_json(data, allow_pickle=allow_pickle)

    def _meta(self) -> dict[str, Any]:
        trail = [self.producer] if self.producer else []
        return {
            "value": {
                "ownership": trail,
                "created": datetime.datetime.fromtimestamp(self.created),
                "transmitted": None if self.produced_at is None else datetime.datetime.fromtimestamp(self.produced_at),
                "received": None if self.received_at is None else datetime.datetime.fromtimestamp(self.received_at),
            },
            "content-type": "meta",
        }

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, DataChunk):
            return NotImplemented
        if self.keys() != other.keys():
            return False
        return all(
            record["content-type"] == other._records[name]["content-type"]
            and _values_equal(record["value"], other._records[name]["value"])
            for name, record in self._records.items()
        )

    __hash__ = None  # type: ignore[assignment]  # mutable, compared by value

    def keys(self) -> list[str]:
        """Return the record names, in insertion order."""
        return list(self._records)

    def items(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """Iterate over ``(name, record)`` pairs."""
        return iter(self._records.items())

    def __contains__(self, name: object) -> bool:
        return name in self._records

    def __len__(self) -> int:
        return len(self._records)

    def __repr__(self) -> str:
        parts = ", ".join(f"{n}:{r['content-type']}" for n, r in self._records.items())
        return f"<DataChunk from={self.producer!r} seq={self.seq} [{parts}]>"


def _values_equal(a: Any, b: Any) -> bool:
    """Equality that also holds for numpy arrays (same dtype, shape and values) inside containers."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return (isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and a.dtype == b.dtype
                and a.shape == b.shape and bool(np.array_equal(a, b)))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_values_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(_values_equal(x, y) for x, y in zip(a, b))
    try:
        return bool(a == b)
    except (TypeError, ValueError):
        return False
