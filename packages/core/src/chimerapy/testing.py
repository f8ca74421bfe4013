"""chimerapy.testing: run one node in this process on given inputs, for node authors' own tests.

    from chimerapy.testing import NodeHarness, run_node

    outputs = run_node(MySource("src"), steps=10)            # a source: 10 steps
    outputs = run_node(MyFilter("f"), inputs=[{"src": chunk}])  # one step per input set

    with NodeHarness(MyRecorder("rec"), directory=tmp_path) as harness:
        harness.step({"cam": frame_chunk})
    assert (tmp_path / "video.mp4").exists()

Inputs pass through the real wire format first, so the node sees what it would see in a
cluster (read-only arrays, producer and sequence numbers set). An exception in ``prep``,
``step`` or ``teardown`` is raised as :class:`chimerapy.NodeError` with the node's traceback.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .data_chunk import DataChunk
from .errors import NodeError, ProtocolError
from .net import wire
from .node.node import Node
from .node.runtime import NodeRuntime, as_chunk, local_runtime

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["NodeHarness", "run_node"]


class NodeHarness:
    """Runs ``node`` in this process: ``prep`` on enter, :meth:`step` by hand, ``teardown`` on exit.

    Args:
        node: the node under test.
        directory: where its ``save_*`` recordings go (default: a new temporary folder).
        through_wire: pass inputs through the wire format, as a cluster would.
    """

    def __init__(self, node: Node, *, directory: Path | str | None = None, through_wire: bool = True):
        self.node = node
        self.through_wire = through_wire
        self._errors: list[tuple[str, str]] = []
        self._seq: dict[str, int] = {}
        self.runtime: NodeRuntime = local_runtime(node, Path(directory) if directory else None)
        self.runtime._report_error = lambda phase, text: self._errors.append((phase, text))
        self.runtime.mode = "run"

    @property
    def directory(self) -> Path:
        """Where the node's recordings are written."""
        return self.runtime.directory

    def __enter__(self) -> Self:
        self.runtime.prep()
        self._raise_errors()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def step(self, inputs: Mapping[str, DataChunk | Mapping[str, Any]] | None = None) -> DataChunk | None:
        """Run one step on ``inputs`` (producer name -> DataChunk or a dict of record values).

        Returns the chunk the node produced, or ``None``.
        """
        chunks = None
        if inputs is not None:
            chunks = {producer: self._deliver(producer, value) for producer, value in inputs.items()}
            self.node.in_bound_data.update(chunks)
        output = as_chunk(self.runtime._call_step(chunks))
        self._raise_errors()
        if output is not None:
            self.runtime.outputs += 1
            output.producer, output.seq, output.produced_at = self.node.name, self.runtime.outputs - 1, time.time()
        return output

    def run(self, steps: int) -> list[DataChunk]:
        """Run ``steps`` steps without inputs (a source) and return what they produced."""
        return [chunk for chunk in (self.step() for _ in range(steps)) if chunk is not None]

    def files(self) -> list[Path]:
        """The files the node recorded so far."""
        recorder = self.runtime._recorder
        return recorder.files() if recorder is not None else []

    def close(self) -> None:
        """Run ``teardown`` and close the recordings (raises NodeError if teardown raised)."""
        self.runtime.close()
        self._raise_errors()

    def _deliver(self, producer: str, value: DataChunk | Mapping[str, Any]) -> DataChunk:
        chunk = value if isinstance(value, DataChunk) else _chunk_of(value)
        seq = self._seq.get(producer, -1) + 1
        self._seq[producer] = seq
        now = time.time()
        if self.through_wire:
            frames = wire.encode_chunk(chunk, seq=seq, producer=producer, produced_at=now)
            decoded = wire.decode([bytes(memoryview(f).cast("B")) if not isinstance(f, bytes) else f for f in frames]).chunk
            if decoded is None:
                raise ProtocolError(f"{producer}: the chunk did not survive the wire")
            chunk = decoded
        chunk.producer, chunk.seq, chunk.produced_at, chunk.received_at = producer, seq, now, time.time()
        return chunk

    def _raise_errors(self) -> None:
        if self._errors:
            phase, text = self._errors[0]
            self._errors.clear()
            raise NodeError(f"node {self.node.name!r} raised in {phase}", node=self.node.name, phase=phase,
                            remote_traceback=text)


def run_node(
    node: Node,
    inputs: Iterable[Mapping[str, DataChunk | Mapping[str, Any]]] | None = None,
    *,
    steps: int | None = None,
    directory: Path | str | None = None,
) -> list[DataChunk]:
    """Run ``node`` from prep to teardown: ``steps`` steps of a source, or one step per input set.

    Returns:
        The chunks the node produced, in order.
    """
    if (inputs is None) == (steps is None):
        raise ValueError("run_node needs either inputs (for a node with inputs) or steps (for a source)")
    with NodeHarness(node, directory=directory) as harness:
        if inputs is None:
            return harness.run(steps or 0)
        return [chunk for chunk in (harness.step(item) for item in inputs) if chunk is not None]


def _chunk_of(values: Mapping[str, Any]) -> DataChunk:
    chunk = DataChunk()
    for name, value in values.items():
        chunk.add(name, value)
    return chunk
