"""Graph: the directed acyclic graph of nodes that makes a pipeline.

Nodes are identified by object (and id), not by name: as in ChimeraPy 0.0.10, two nodes of a
graph may share a name. Everything a session names after a node (its process, its folder
``<session>/<worker>/<unique name>/``, its stats, logs, REST and dashboard entries, ``meta.json``)
uses the node's *unique name* (:meth:`Graph.unique_names`): its name when no other node has it,
else a derived name (see :func:`unique_names`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING

import networkx as nx

from .errors import GraphError
from .names import MAX_NAME_LENGTH, check_name

if TYPE_CHECKING:
    from .node.node import Node

__all__ = ["Graph", "unique_names"]

log = logging.getLogger(__name__)


class Graph:
    """A pipeline: nodes and the directed edges along which their outputs flow.

    Edges carry two options: ``follow`` (the destination steps when this input is new; by
    default a node follows the first input added to it) and ``latest_only`` (the destination
    always works on the newest chunk of this input and skips older ones, counting them: for
    real-time feedback from nodes slower than their source).

    Args:
        g: an existing ``networkx.DiGraph`` whose nodes are :class:`chimerapy.Node` objects.
    """

    def __init__(self, g: nx.DiGraph | None = None) -> None:
        self.G: nx.DiGraph = nx.DiGraph()
        if g is not None:
            for node in g.nodes:
                self.add_node(node)
            for src, dst, data in g.edges(data=True):
                self.add_edge(src, dst, **data)

    # -- building --------------------------------------------------------------------------------

    def add_node(self, node: Node) -> None:
        """Add ``node`` (again: nothing). Another node may have the same name (see the module doc)."""
        from .node.node import Node

        if not isinstance(node, Node):
            raise GraphError(f"graph nodes must be chimerapy.Node instances, got {node!r}")
        if node in self.G:
            return
        check_name("node", node.name)  # again: a name may have been changed since Node()
        self.G.add_node(node, object=node)  # node data "object", as 0.0.10's graphs had

    def add_nodes(self, nodes: Iterable[Node]) -> None:
        """Add each of ``nodes``."""
        for node in nodes:
            self.add_node(node)

    def add_nodes_from(self, nodes: Iterable[Node]) -> None:
        """Add each of ``nodes`` (networkx's and ChimeraPy 0.0.10's name for :meth:`add_nodes`)."""
        self.add_nodes(nodes)

    def add_edge(
        self, src: Node, dst: Node, *, follow: bool = False, latest_only: bool | None = None
    ) -> None:
        """Add the edge ``src -> dst``, adding either node if needed.

        Args:
            src: the producing node.
            dst: the consuming node.
            follow: ``dst`` steps when a chunk from ``src`` arrives (one followed input per node).
            latest_only: ``dst`` works on the newest chunk from ``src`` only, skipping older ones.
                ``None`` (the default) takes the consumer's class attribute
                ``latest_only_inputs`` (True for nodes slower than real time, such as ML models).
        """
        if latest_only is None:
            latest_only = bool(getattr(dst, "latest_only_inputs", False))
        if src is dst:
            raise GraphError(f"an edge from {src.name!r} to itself would be a cycle")
        self.add_node(src)
        self.add_node(dst)
        if follow:
            for other, _, data in self.G.in_edges(dst, data=True):
                if data.get("follow") and other is not src:
                    raise GraphError(
                        f"node {dst.name!r} already follows {other.name!r}; "
                        f"a node follows one input only"
                    )
        self.G.add_edge(src, dst, follow=bool(follow), latest_only=bool(latest_only))

    def add_edges(self, edges: Iterable[tuple[Node, Node] | list[Node]]) -> None:
        """Add each ``(src, dst)`` pair (a tuple or a two-item list) as an edge with default options."""
        for edge in edges:
            src, dst = edge
            self.add_edge(src, dst)

    def add_edges_from(self, edges: Iterable[tuple[Node, Node] | list[Node]]) -> None:
        """Add each ``(src, dst)`` pair (networkx's and 0.0.10's name for :meth:`add_edges`)."""
        self.add_edges(edges)

    # -- inspecting ------------------------------------------------------------------------------

    @property
    def nodes(self) -> list[Node]:
        """The nodes, in insertion order."""
        return list(self.G.nodes)

    def node(self, key: str) -> Node:
        """Return the node whose id, name or unique name is ``key``.

        Raises:
            GraphError: no node has it, or ``key`` is the name of several nodes (use an id).
        """
        for node in self.G.nodes:
            if node.id == key:
                return node
        named = [node for node in self.G.nodes if node.name == key]
        if len(named) > 1:
            raise GraphError(self.shared_name_problem(key))
        if named:
            return named[0]
        for node, unique in self.unique_names().items():
            if unique == key:
                return node
        raise GraphError(f"the graph has no node named {key!r}; it has {self.names()}")

    def shared_name_problem(self, name: str) -> str:
        """What is wrong with naming a node by ``name`` when several nodes have it (a message)."""
        named = [node for node in self.G.nodes if node.name == name]
        unique = self.unique_names()
        listed = ", ".join(f"id {node.id!r} (unique name {unique[node]!r})" for node in named)
        return (f"{len(named)} nodes are named {name!r}: {listed}; name one of them by its id "
                f"(e.g. node.id), its Node object or its unique name, or rename them")

    def get_id_by_name(self, name: str) -> str:
        """The id of the node named ``name`` (as in ChimeraPy 0.0.10).

        When several nodes have that name, it is the id of the last one added, as 0.0.10 gave
        it, and a warning says so; :meth:`node` raises instead.
        """
        named = [node for node in self.G.nodes if node.name == name]
        if len(named) > 1:
            log.warning("get_id_by_name(%r): %s; returning the last one's id, as ChimeraPy 0.0.10 did",
                        name, self.shared_name_problem(name))
            return named[-1].id
        return self.node(name).id

    def has_node_by_id(self, node_id: str) -> bool:
        """True if a node of the graph has the id ``node_id``."""
        return any(node.id == node_id for node in self.G.nodes)

    def names(self) -> list[str]:
        """The node names, in insertion order (a shared name appears once per node)."""
        return [node.name for node in self.G.nodes]

    def unique_names(self) -> dict[Node, str]:
        """Each node's unique name, in insertion order (see :func:`unique_names`)."""
        return unique_names(self.G.nodes)

    def unique_name(self, node: Node) -> str:
        """The unique name of ``node``: the name its process, folder, stats and logs go by."""
        try:
            return self.unique_names()[node]
        except KeyError:
            raise GraphError(f"node {node.name!r} (id {node.id!r}) is not in the graph") from None

    def inputs(self, node: Node) -> list[tuple[Node, dict]]:
        """The in-edges of ``node`` as ``(producer, options)`` in insertion order."""
        return [(src, dict(data)) for src, _, data in self.G.in_edges(node, data=True)]

    def followed(self, node: Node) -> Node | None:
        """The input that ``node`` steps on: the one marked ``follow``, else its first input."""
        inputs = self.inputs(node)
        for src, data in inputs:
            if data.get("follow"):
                return src
        return inputs[0][0] if inputs else None

    def is_valid(self) -> bool:
        """Return True when the graph is a directed acyclic graph."""
        return nx.is_directed_acyclic_graph(self.G)

    def validate(self) -> None:
        """Raise :class:`GraphError` naming the problem when the graph cannot run.

        Problems: an empty graph, a cycle, and a node with two inputs of one name (its
        ``data_chunks`` are keyed by its inputs' names, so they would collide).
        """
        if self.G.number_of_nodes() == 0:
            raise GraphError("the graph is empty; add nodes with Graph.add_node(s)")
        try:
            cycle = nx.find_cycle(self.G)
        except nx.NetworkXNoCycle:
            self._check_input_names()
            return
        unique = self.unique_names()
        names = [unique[src] for src, _ in cycle] + [unique[cycle[0][0]]]
        raise GraphError("the graph has a cycle: " + " -> ".join(names))

    def _check_input_names(self) -> None:
        unique = self.unique_names()
        for node in self.G.nodes:
            seen: dict[str, Node] = {}
            for src, _ in self.inputs(node):
                first = seen.setdefault(src.name, src)
                if first is not src:
                    raise GraphError(
                        f"node {unique[node]!r} has two inputs named {src.name!r} (ids {first.id!r} and "
                        f"{src.id!r}, unique names {unique[first]!r} and {unique[src]!r}); its data_chunks "
                        f"are keyed by input name, so rename one of them"
                    )

    def topological_order(self) -> list[Node]:
        """The nodes, every producer before its consumers."""
        self.validate()
        return list(nx.topological_sort(self.G))

    def to_dict(self) -> dict:
        """A JSON-ready description: nodes and classes, and edges with their options.

        Nodes and edges are named by unique name (``"name"``, ``"source"``, ``"target"``), as the
        session's folders, stats and logs are; ``"node_name"`` is the node's own name.
        """
        unique = self.unique_names()
        return {
            "nodes": [
                {"name": unique[n], "id": n.id, "class": f"{type(n).__module__}.{type(n).__qualname__}",
                 "node_name": n.name}
                for n in self.G.nodes
            ],
            "edges": [
                {"source": unique[s], "target": unique[d], **data} for s, d, data in self.G.edges(data=True)
            ],
        }

    def plot(self, font_size: int = 30, node_size: int = 5000):
        """Draw the graph with matplotlib (the ``plot`` extra) and return the figure."""
        try:
            import matplotlib.pyplot as plt
        except ImportError as error:
            raise ImportError(
                "Graph.plot needs matplotlib: pip install 'chimerapy-core[plot]'"
            ) from error
        figure, axes = plt.subplots()
        layout = nx.multipartite_layout(
            self.G, subset_key={i: layer for i, layer in enumerate(nx.topological_generations(self.G))}
        ) if self.is_valid() else nx.spring_layout(self.G, seed=0)
        nx.draw(
            self.G,
            pos=layout,
            ax=axes,
            labels={n: n.name for n in self.G.nodes},
            font_size=font_size,
            node_size=node_size,
            arrows=True,
        )
        return figure

    def __len__(self) -> int:
        return self.G.number_of_nodes()

    def __repr__(self) -> str:
        return f"<Graph nodes={self.names()} edges={self.G.number_of_edges()}>"


def unique_names(nodes: Iterable[Node]) -> dict[Node, str]:
    """A unique, valid name for each of ``nodes`` (pure; the same nodes in the same order give
    the same names).

    A node whose name no earlier node has keeps it, so graphs of unique names are unchanged.
    A later node of a repeated name gets ``<name>-2``, ``<name>-3``, ... (the smallest number
    that no node of ``nodes`` is named or given; the name is shortened to keep the result
    within the name rule's length).
    """
    nodes = list(nodes)
    taken = {node.name for node in nodes}
    result: dict[Node, str] = {}
    seen: set[str] = set()
    for node in nodes:
        if node.name not in seen:
            seen.add(node.name)
            result[node] = node.name
            continue
        number = 2
        while True:
            suffix = f"-{number}"
            candidate = node.name[:MAX_NAME_LENGTH - len(suffix)] + suffix
            if candidate not in taken:
                break
            number += 1
        taken.add(candidate)
        result[node] = candidate
    return result
