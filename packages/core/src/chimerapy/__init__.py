"""ChimeraPy: distributed, time-aligned collection, processing, archiving and monitoring of
multimodal data.

    import chimerapy as cp

    manager = cp.Manager(logdir="runs", port=0)
    worker = cp.Worker(name="local", port=0)
    worker.connect(manager.host, manager.port)
    graph = cp.Graph(); graph.add_edge(source, sink)
    manager.commit_graph(graph, {"local": ["source", "sink"]})
    manager.start(); ...; manager.stop(); manager.shutdown()
"""

from . import _logger as _logger  # 0.0.10 programs call cp._logger.getLogger
from .__about__ import __version__
from ._logger import debug
from .data_chunk import DataChunk
from .errors import (
    AuthenticationError,
    ChimeraPyError,
    CommitError,
    GraphError,
    MappingError,
    NodeError,
    ProtocolError,
    RecordError,
    RegistryError,
    StateError,
    WorkerLostError,
)
from .node import Node
from .node.registered import register

# Graph (networkx), Manager and Worker (aiohttp) and open_session (the archive) load on first
# use, so that a node's process, which needs none of them, starts fast.
_LAZY = {"Graph": ".graph", "Manager": ".manager.manager", "Worker": ".worker.worker",
         "open_session": ".archive"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'chimerapy' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))

__all__ = [
    "AuthenticationError",
    "ChimeraPyError",
    "CommitError",
    "DataChunk",
    "Graph",
    "GraphError",
    "Manager",
    "MappingError",
    "Node",
    "NodeError",
    "ProtocolError",
    "RecordError",
    "RegistryError",
    "StateError",
    "Worker",
    "WorkerLostError",
    "__version__",
    "debug",
    "open_session",
    "register",
]
