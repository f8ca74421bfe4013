"""Commit planning, as pure code: which node runs where, what each Worker is sent, and the wiring.

``plan_commit`` checks a graph and a mapping against the connected Workers and returns a
:class:`CommitPlan`; ``CommitPlan.connections`` turns the publishers' addresses reported by the
Workers into each Worker's ``connect_nodes`` request.

The plan holds the session's data-plane keys (:mod:`chimerapy.net.keys`): one CURVE keypair per
node. Each node is sent its own keypair and the public keys of its consumers (its spec), and the
public key of each of its producers (its connections); no node gets another's secret key.

Nodes are placed, sent and wired under their unique names (:meth:`chimerapy.Graph.unique_names`:
the name itself unless another node has it), which the Worker gives their processes and folders;
the producer names in a spec's ``inputs`` and ``followed`` are the nodes' own names, which key
the consumer's ``data_chunks``.
"""

from __future__ import annotations

import base64
import difflib
import importlib.metadata
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import cloudpickle

from ..errors import GraphError, MappingError
from ..graph import Graph
from ..net.keys import Keypair, node_keypairs
from ..node.node import Node

__all__ = ["CommitPlan", "WorkerRef", "plan_commit"]


@dataclass(frozen=True)
class WorkerRef:
    """What planning needs to know of a connected Worker."""

    name: str
    id: str
    host_key: str = ""


@dataclass
class CommitPlan:
    """Where each node runs and what each Worker must create."""

    graph: Graph
    placement: dict[str, str]  # node unique name -> worker name
    drain_timeout: float = 5.0
    shipped: frozenset[str] = frozenset()  # top-level modules sent with send_packages
    host_keys: dict[str, str] = field(default_factory=dict)  # worker name -> host identity
    keys: dict[str, Keypair] = field(default_factory=dict)  # node unique name -> its CURVE keypair
    #: Each node's unique name, as the graph gave them when planned.
    unique: dict[Node, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.unique:
            self.unique = self.graph.unique_names()

    def unique_names(self) -> list[str]:
        """Every node's unique name, in the graph's order."""
        return list(self.unique.values())

    def nodes_by_unique_name(self) -> dict[str, Node]:
        """Unique name -> node."""
        return {name: node for node, name in self.unique.items()}

    def workers(self) -> list[str]:
        """The Workers that host at least one node, in first-use order."""
        return list(dict.fromkeys(self.placement.values()))

    def node_specs(self, worker: str) -> list[dict[str, Any]]:
        """The ``create_nodes`` entries for ``worker``: code, inputs, follow rule, consumers, keys."""
        specs = []
        unique = self.unique
        for node in self.graph.nodes:
            name = unique[node]
            if self.placement[name] != worker:
                continue
            followed = self.graph.followed(node)
            specs.append({
                "id": node.id,
                "name": name,
                "code": base64.b64encode(_pickle_node(node, self.shipped)).decode(),
                "inputs": [src.name for src, _ in self.graph.inputs(node)],
                "followed": followed.name if followed is not None else None,
                "consumers": [{"name": unique[dst], "mode": self._mode(node, dst), "key": self.keys[unique[dst]].public}
                              for dst in self.graph.G.successors(node)],
                "keypair": {"public": self.keys[name].public, "secret": self.keys[name].secret},
                "drain_timeout": self.drain_timeout,
                "restart": getattr(node, "restart", "never"),
                "max_restarts": int(getattr(node, "max_restarts", 3)),
            })
        return specs

    def connections(self, addresses: Mapping[str, Mapping[str, str]]) -> dict[str, dict[str, Any]]:
        """Each Worker's ``connect_nodes`` request, from the publishers' addresses.

        Args:
            addresses: node unique name -> {consumer unique name: the address of that consumer's edge}.

        Each input is named by its producer's own name (the key of the consumer's ``data_chunks``).
        """
        requests: dict[str, dict[str, Any]] = {w: {"inputs": {}, "consumers": {}} for w in self.workers()}
        unique = self.unique
        for src, dst in self.graph.G.edges():
            mode = self._mode(src, dst)
            latest = mode.startswith("latest")
            requests[self.placement[unique[dst]]]["inputs"].setdefault(unique[dst], []).append(
                {"producer": src.name, "address": addresses[unique[src]][unique[dst]], "latest_only": latest,
                 "server_key": self.keys[unique[src]].public if mode.endswith("-remote") else None}
            )
            requests[self.placement[unique[src]]]["consumers"].setdefault(unique[src], []).append(
                {"name": unique[dst], "latest_only": latest, "mode": mode})
        return requests

    def lossless_edges(self) -> list[tuple[str, str, str]]:
        """``(producer, its input name at the consumer, consumer)`` of every lossless edge, by
        unique names (the input name is the producer's own name)."""
        return [(self.unique[src], src.name, self.unique[dst]) for src, dst in self.graph.G.edges()
                if not self.graph.G.edges[src, dst].get("latest_only")]

    def _mode(self, src: Node, dst: Node) -> str:
        """The publisher mode of the edge ``src -> dst``: delivery, and ``-remote`` across hosts."""
        mode = "latest" if self.graph.G.edges[src, dst].get("latest_only") else "lossless"
        src_host = self.host_keys.get(self.placement[self.unique[src]], "")
        if src_host != self.host_keys.get(self.placement[self.unique[dst]], ""):
            mode += "-remote"
        return mode


def plan_commit(
    graph: Graph,
    mapping: Mapping[str, Sequence[str | Node]],
    workers: Sequence[WorkerRef],
    *,
    drain_timeout: float = 5.0,
    shipped: frozenset[str] = frozenset(),
) -> CommitPlan:
    """Check ``graph`` and ``mapping`` against ``workers`` and place every node.

    The mapping's keys name Workers (by name or id); its values list nodes (by id, the Node
    objects themselves, name, or unique name). A name that several nodes share does not say
    which node: such nodes are mapped by id or object.

    Raises:
        GraphError: the graph is empty, has a cycle, or a node has two inputs of one name.
        MappingError: an unknown Worker or node, a shared name, a node mapped twice, or an
            unmapped node.
    """
    graph.validate()
    unique = graph.unique_names()
    if not isinstance(mapping, Mapping):
        raise MappingError(f"the mapping must be a dict of Worker -> list of nodes, got {type(mapping).__name__}")
    by_key = {key: ref for ref in workers for key in (ref.name, ref.id)}
    placement: dict[str, str] = {}
    for worker_key, nodes in mapping.items():
        ref = by_key.get(worker_key)
        if ref is None:
            known = sorted(ref.name for ref in workers) or ["(no Worker is connected)"]
            raise MappingError(
                f"the mapping names an unknown Worker {worker_key!r}{_close(worker_key, known)}; "
                f"connected Workers: {', '.join(known)}"
            )
        if isinstance(nodes, (str, Node)):
            raise MappingError(f"mapping[{worker_key!r}] must be a list of nodes, got {nodes!r}")
        for item in nodes:
            name = unique[_find_node(graph, item, worker_key)]
            if name in placement:
                raise MappingError(
                    f"node {name!r} is mapped twice (to {placement[name]!r} and {ref.name!r})"
                )
            placement[name] = ref.name
    unmapped = [name for name in unique.values() if name not in placement]
    if unmapped:
        raise MappingError(f"node(s) {unmapped} are not mapped to any Worker; add them to the mapping")
    return CommitPlan(graph, placement, drain_timeout, shipped, {ref.name: ref.host_key for ref in workers},
                      node_keypairs(list(unique.values())), unique)


def _find_node(graph: Graph, item: str | Node, worker_key: str) -> Node:
    if isinstance(item, Node):
        if item not in graph.G:
            raise MappingError(f"mapping[{worker_key!r}] holds node {item.name!r}, which is not in the graph")
        return item
    if graph.names().count(str(item)) > 1:
        raise MappingError(f"mapping[{worker_key!r}] names node {item!r}, but {graph.shared_name_problem(str(item))}")
    try:
        return graph.node(str(item))
    except GraphError:
        raise MappingError(
            f"mapping[{worker_key!r}] names an unknown node {item!r}{_close(str(item), graph.names())}; "
            f"the graph has {graph.names()}"
        ) from None


def _close(word: str, candidates: Sequence[str]) -> str:
    matches = difflib.get_close_matches(str(word), list(candidates), n=3)
    return f" (did you mean {', '.join(map(repr, matches))}?)" if matches else ""


def _pickle_node(node: Node, shipped: frozenset[str] = frozenset()) -> bytes:
    for cls in type(node).__mro__:
        module = sys.modules.get(cls.__module__)
        if module is not None and module.__name__.partition(".")[0] not in shipped and _is_user_module(module):
            cloudpickle.register_pickle_by_value(module)
    try:
        return cloudpickle.dumps(node)
    except Exception as error:
        raise GraphError(
            f"node {node.name!r} cannot be sent to its Worker: {error}. Open devices, files and "
            f"sockets in prep(), not in __init__()"
        ) from error


def _is_user_module(module: ModuleType) -> bool:
    """True for a user's own module (not __main__, not installed): it travels by value.

    Nodes from a user's script or a module beside it reach Workers that never saw the file;
    nodes from installed packages travel by reference and are imported on the Worker.
    """
    name = module.__name__
    if name == "__main__" or name in sys.builtin_module_names or not getattr(module, "__file__", None):
        return False
    top = name.partition(".")[0]
    if top == "chimerapy" or top in sys.stdlib_module_names:
        return False
    return top not in _installed_top_levels()


_TOP_LEVELS: set[str] | None = None


def _installed_top_levels() -> set[str]:
    """Top-level modules of installed distributions (editable ones found via their entry points)."""
    global _TOP_LEVELS
    if _TOP_LEVELS is None:
        tops = set(importlib.metadata.packages_distributions())
        for dist in importlib.metadata.distributions():
            tops.update(ep.value.split(":")[0].split(".")[0] for ep in dist.entry_points)
        _TOP_LEVELS = tops
    return _TOP_LEVELS
