"""The limits: raw pyzmq PUB/SUB over tcp and ipc, and a plain shared-memory ring.

They run in the driver's own environment (pyzmq, numpy, psutil) with
:mod:`benchmarks.workers.limits_runner`. They have no graph to commit, so the
set-up workloads do not apply; the shared-memory ring is defined for two processes
(``parallel`` runs one ring per independent pair).
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

from benchmarks.spec import RunSpec
from benchmarks.systems.base import System
from benchmarks.workloads import Workload

TRANSPORTS = ("tcp", "ipc", "shm")


class Limit(System):
    """One transport of the limits."""

    group = "limits"
    kind = "limit"
    runner = "benchmarks.workers.limits_runner"
    import_check = "import zmq, numpy, psutil"
    distribution = "pyzmq"

    def __init__(self, transport: str) -> None:
        super().__init__()
        self.transport = transport
        self.name = f"limit-{transport}"

    @property
    def python(self) -> Path:
        return Path(sys.executable)

    def unsupported(self, workload: Workload) -> str | None:
        if workload.topology == "crosshost":
            return super().unsupported(workload)
        if workload.kind in ("graph2", "graph20"):
            return "no framework: there is no graph to commit or shut down"
        if self.transport == "shm" and workload.topology not in ("pair", "parallel"):
            return "the shared-memory limit is a copy between two processes only"
        return None

    def spec_for(self, workload: Workload, run_dir: Path, content_type: str) -> RunSpec:
        return replace(super().spec_for(workload, run_dir, content_type), transport=self.transport)


def limits() -> list[System]:
    """The three limit columns."""
    return [Limit(transport) for transport in TRANSPORTS]
