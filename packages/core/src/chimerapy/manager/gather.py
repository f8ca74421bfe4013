"""What :meth:`Manager.gather` and :meth:`Manager.collect` return, in ChimeraPy 0.0.10's shapes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..data_chunk import DataChunk
    from ..graph import Graph

__all__ = ["CollectReport", "GatherResult"]


class GatherResult(dict):
    """Node id -> that node's latest output (a DataChunk, or None before its first output).

    Keyed by node id as in ChimeraPy 0.0.10; a node's name or the Node object also finds it.
    """

    def __init__(self, graph: Graph, latest_by_name: dict[str, DataChunk | None]) -> None:
        super().__init__({graph.node(name).id: chunk for name, chunk in latest_by_name.items()})
        self._ids = {name: graph.node(name).id for name in latest_by_name}

    def __missing__(self, key: Any) -> DataChunk | None:
        node_id = getattr(key, "id", None) if not isinstance(key, str) else self._ids.get(key)
        if node_id is not None and dict.__contains__(self, node_id):
            return dict.__getitem__(self, node_id)
        raise KeyError(key)

    def by_name(self) -> dict[str, DataChunk | None]:
        """The same outputs keyed by node name."""
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
