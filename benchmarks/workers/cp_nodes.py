"""Benchmark nodes for the ChimeraPy family, written against the seed API.

The same classes serve this project (``import chimerapy``), ``chimerapy==0.0.10``
(same API) and ``chimerapy-engine==0.1.1`` (``chimerapy.engine``, ``setup`` instead of
``prep``): whichever is installed in the interpreter that imports this module. Each
record of the payload travels as a ``DataChunk`` record: ``seq`` and ``t`` as
``other``, the frame with the spec's content type (``image`` by default), a dict
as ``other``.
"""

from __future__ import annotations

from typing import Any

from benchmarks.probe import NodeProbe
from benchmarks.spec import RunSpec

try:  # chimerapy-engine 0.1.1 installs the namespace package chimerapy.engine
    import chimerapy.engine as cp

    ENGINE = True
except ImportError:
    import chimerapy as cp

    ENGINE = False


class BenchNode(cp.Node):  # type: ignore[misc,name-defined,unused-ignore]
    """Base of the three roles: owns a :class:`NodeProbe` built in ``prep``."""

    def __init__(self, name: str, *, spec_path: str) -> None:
        super().__init__(name=name)
        self.bench_name = name
        self.bench_spec_path = spec_path
        self.bench_probe: NodeProbe | None = None

    @property
    def bench(self) -> NodeProbe:
        """The probe; it exists from ``prep`` on, inside the node process."""
        assert self.bench_probe is not None, "prep() has not run in this process"
        return self.bench_probe

    def prep(self) -> None:
        """Build the probe inside the node process."""
        self.bench_probe = NodeProbe(RunSpec.load(self.bench_spec_path), self.bench_name)

    if ENGINE:

        def setup(self) -> None:
            """chimerapy-engine's name for ``prep``."""
            self.prep()

    def teardown(self) -> None:
        """Write the node's report."""
        if self.bench_probe is not None:
            self.bench_probe.dump()

    def bench_receive(self, data_chunks: dict[str, Any]) -> Any:
        """Account for the single input of this node and return its chunk."""
        chunk = next(iter(data_chunks.values()))
        value = chunk.get("frame")["value"]
        self.bench.on_receive(chunk.get("seq")["value"], chunk.get("t")["value"], value)
        return chunk


class Source(BenchNode):
    """Sends the payload with its sequence number and send time, paced or flat out.

    A frame is the one prepared payload every time (``source_frames="same"``), or written anew
    each time (a source that makes its frames): into a new array (``"written"``) or into
    ``Node.output_buffer`` (``"in-place"``, this project only).
    """

    def step(self) -> Any:
        seq, sent_t = self.bench.next_send()
        payload = self.bench.payload
        frames = getattr(self.bench.spec, "source_frames", "same")
        if frames == "in-place" and not isinstance(payload, dict):
            frame = self.output_buffer("frame", payload.shape, payload.dtype)
            frame[...] = payload  # the frame's making: every byte written, where the sink reads it
            payload = frame
        elif frames == "written" and not isinstance(payload, dict):
            payload = payload.copy()  # the frame's making: every byte written, into a new array
        chunk = cp.DataChunk()
        chunk.add("seq", seq)
        chunk.add("t", sent_t)
        if isinstance(payload, dict):
            chunk.add("frame", payload)
        else:
            chunk.add("frame", payload, content_type=self.bench.spec.content_type)
        return chunk


class Relay(BenchNode):
    """Touches what it receives and passes the same chunk on."""

    def step(self, data_chunks: dict[str, Any] = {}) -> Any:  # noqa: B006 - seed signature
        return self.bench_receive(data_chunks)


class Sink(BenchNode):
    """Touches what it receives."""

    def step(self, data_chunks: dict[str, Any] = {}) -> None:  # noqa: B006 - seed signature
        self.bench_receive(data_chunks)


ROLES: dict[str, type[BenchNode]] = {"source": Source, "relay": Relay, "sink": Sink}

__all__ = ["ENGINE", "ROLES", "BenchNode", "Relay", "Sink", "Source", "cp"]
