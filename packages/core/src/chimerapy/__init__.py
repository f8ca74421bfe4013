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

from .__about__ import __version__
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
from .graph import Graph
from .manager import Manager
from .node import Node
from .worker import Worker

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
]
