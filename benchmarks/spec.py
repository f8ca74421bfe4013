"""The run spec: what one worker script must do, shared by the driver and every runner.

A :class:`Shape` says what is streamed through which graph; a :class:`RunSpec` adds
the system and where to report. A spec travels as JSON from the driver to a runner process (which may be
another virtual environment's Python), so this module uses the standard library only.
The graph shape (node names, edges, Worker assignment) is derived here once, so that
every system builds exactly the same graph.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from itertools import pairwise
from pathlib import Path
from typing import Any

SOURCE = "source"


@dataclass(frozen=True)
class Shape:
    """What is streamed and through which graph; shared by workloads and run specs.

    Attributes:
        payload: Payload kind: ``dict1k``, ``vga`` or ``hd``.
        topology: ``pair``, ``chain``, ``fanout``, ``parallel`` (``n_nodes / 2``
            independent source -> sink pairs) or ``crosshost`` (two sources on two hosts
            of their own, each with a sink on a third host).
        n_nodes: Total node count, sources and sinks included.
        n_workers: Workers the nodes are spread over (ChimeraPy family only).
        rate_hz: Source rate; ``None`` means as fast as possible.
        duration_s: Streaming time between start and stop.
    """

    payload: str
    topology: str
    n_nodes: int
    n_workers: int
    rate_hz: float | None
    duration_s: float

    # -- graph shape ---------------------------------------------------------------
    @property
    def n_pairs(self) -> int:
        """Independent source -> sink pairs of a ``parallel`` graph (0 otherwise)."""
        return self.n_nodes // 2 if self.topology == "parallel" else 0

    @property
    def node_names(self) -> list[str]:
        """Node names in topological order: sources first, sinks last."""
        if self.topology == "parallel":
            numbers = [f"{i:02d}" for i in range(1, self.n_pairs + 1)]
            return [f"{SOURCE}{n}" for n in numbers] + [f"sink{n}" for n in numbers]
        if self.topology == "fanout":
            return [SOURCE] + [f"sink{i}" for i in range(1, self.n_nodes)]
        if self.topology == "crosshost":
            return [f"{SOURCE}1", f"{SOURCE}2", "sink1", "sink2"]
        relays = [f"relay{i:02d}" for i in range(1, self.n_nodes - 1)]
        return [SOURCE, *relays, "sink"]

    @property
    def edges(self) -> list[tuple[str, str]]:
        """Directed edges ``(upstream, downstream)``."""
        names = self.node_names
        if self.topology == "fanout":
            return [(SOURCE, sink) for sink in names[1:]]
        if self.topology == "crosshost":
            return [(f"{SOURCE}1", "sink1"), (f"{SOURCE}2", "sink2")]
        if self.topology == "parallel":
            return list(zip(names[: self.n_pairs], names[self.n_pairs :]))
        return list(pairwise(names))

    @property
    def sinks(self) -> list[str]:
        """Nodes without outputs: the ones whose reports give the delivery figures."""
        downstream = {src for src, _ in self.edges}
        return [name for name in self.node_names if name not in downstream]

    def upstream_of(self, name: str) -> str | None:
        """The single input of ``name`` (``None`` for a source)."""
        return next((src for src, dst in self.edges if dst == name), None)

    def source_of(self, name: str) -> str:
        """The source at the head of the path that leads to ``name``."""
        while (upstream := self.upstream_of(name)) is not None:
            name = upstream
        return name

    def role_of(self, name: str) -> str:
        """``source``, ``relay`` or ``sink``."""
        if self.upstream_of(name) is None:
            return "source"
        return "sink" if name in self.sinks else "relay"

    @property
    def remote_workers(self) -> list[str]:
        """Workers that run on hosts of their own (network namespaces), not in the runner."""
        return ["host1", "host2"] if self.topology == "crosshost" else []

    def worker_assignment(self) -> dict[str, list[str]]:
        """Contiguous blocks of nodes per Worker (``worker0``...), in graph order; for
        ``crosshost``, each source on its own remote Worker and the sinks on ``worker0``."""
        if self.topology == "crosshost":
            return {"host1": [f"{SOURCE}1"], "host2": [f"{SOURCE}2"], "worker0": ["sink1", "sink2"]}
        names = self.node_names
        count = max(1, min(self.n_workers, len(names)))
        size, extra = divmod(len(names), count)
        mapping: dict[str, list[str]] = {}
        start = 0
        for index in range(count):
            stop = start + size + (1 if index < extra else 0)
            mapping[f"worker{index}"] = names[start:stop]
            start = stop
        return mapping


@dataclass(frozen=True)
class RunSpec(Shape):
    """One run of one workload on one system.

    Attributes:
        system: System name (``limit-tcp``, ``chimerapy``, ``cp0010``, ``engine``, ``dora``).
        workload: Workload key, e.g. ``throughput/vga``.
        run_dir: Directory where the runner and its nodes write their reports.
        content_type: ChimeraPy ``DataChunk`` content type used for frames.
        transport: Limits only: ``tcp``, ``ipc`` or ``shm``.
        source_frames: ChimeraPy sources only: ``same`` (the one prepared frame sent every
            time), ``written`` (each frame written into a new array, as a source that makes its
            frames does) or ``in-place`` (each frame written into ``Node.output_buffer``).
    """

    system: str
    workload: str
    run_dir: str
    content_type: str = "image"
    transport: str = ""
    source_frames: str = "same"

    @classmethod
    def of(cls, shape: Shape, **run: Any) -> RunSpec:
        """A spec streaming ``shape``, with the run's own fields as keywords."""
        return cls(**{f.name: getattr(shape, f.name) for f in fields(Shape)}, **run)

    def save(self, path: Path) -> None:
        """Write the spec as JSON to ``path``."""
        path.write_text(json.dumps(asdict(self), indent=2))

    @classmethod
    def load(cls, path: str | Path) -> RunSpec:
        """Read a spec written by :meth:`save`."""
        return cls(**json.loads(Path(path).read_text()))

    def report_path(self, name: str) -> Path:
        """Where node ``name`` writes its report."""
        return Path(self.run_dir) / f"node-{name}.json"

    @property
    def result_path(self) -> Path:
        """Where the runner writes its result."""
        return Path(self.run_dir) / "result.json"
