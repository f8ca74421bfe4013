"""What :meth:`Manager.gather` and :meth:`Manager.collect` return, in ChimeraPy 0.0.10's shapes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..data_chunk import DataChunk
    from ..node.node import Node

__all__ = ["CollectReport", "GatherResult"]


class GatherResult(dict):
    """Node id -> that node's latest output (a DataChunk, or None before its first output).

    Keyed by node id as in ChimeraPy 0.0.10; the Node object, a node's unique name (see
    :meth:`chimerapy.Graph.unique_names`) and a name that only one node has also find it.
    """

    def __init__(self, nodes: Mapping[str, Node], latest: Mapping[str, DataChunk | None]) -> None:
        """``nodes``: unique name -> node; ``latest``: unique name -> its latest output."""
        super().__init__({nodes[name].id: chunk for name, chunk in latest.items()})
        self._ids = {name: nodes[name].id for name in latest}
        self._names = {name: nodes[name].name for name in latest}

    def __missing__(self, key: Any) -> DataChunk | None:
        node_id = getattr(key, "id", None) if not isinstance(key, str) else self._id_of(key)
        if node_id is not None and dict.__contains__(self, node_id):
            return dict.__getitem__(self, node_id)
        raise KeyError(key)

    def _id_of(self, key: str) -> str | None:
        named = [unique for unique, name in self._names.items() if name == key]
        if len(named) > 1:
            raise KeyError(f"{len(named)} nodes are named {key!r} (unique names {named}); "
                           f"use a node's id, its Node object or its unique name")
        return self._ids.get(named[0]) if named else self._ids.get(key)

    def by_name(self) -> dict[str, DataChunk | None]:
        """The same outputs keyed by node unique name (the node's name unless another has it)."""
        return {name: dict.__getitem__(self, node_id) for name, node_id in self._ids.items()}


class CollectReport(dict):
    """Worker name -> {"files", "bytes", "retries", "missing", "error", "complete"}.

    True when every Worker's files arrived (what 0.0.10's ``collect()`` returned).
    """

    @property
    def complete(self) -> bool:
        return all(item.get("complete") for item in self.values())

    def __bool__(self) -> bool:
        return self.complete
