"""DataChunk: the unit of data that flows along the edges of a graph."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal

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
    ``None`` until the chunk is published and received.
    """

    __slots__ = ("_records", "produced_at", "producer", "received_at", "seq")

    def __init__(self) -> None:
        self._records: dict[str, dict[str, Any]] = {}
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
