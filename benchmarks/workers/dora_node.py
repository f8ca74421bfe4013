"""A dora-rs Python node playing the spec's role for one node name.

Started by ``dora run`` as ``python dora_node.py SPEC.json NAME``. Payloads travel as
Arrow ``uint8`` arrays (the frame buffer itself, or the pickled dict, as with the
ZeroMQ limit), with the sequence number and the send time in the message metadata.
The source waits for the runner's ``go`` file so that every system starts streaming
only once all its nodes are up, and stops on dora's ``STOP`` event.
"""

from __future__ import annotations

import pickle
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from dora import Node

from benchmarks.probe import FRAME_SHAPES, NodeProbe
from benchmarks.spec import RunSpec

OUTPUT = "frame"
STOP_POLL_S = 0.01


def encode(payload: Any) -> pa.Array:
    """The payload as an Arrow array (zero-copy for frames)."""
    if isinstance(payload, dict):
        payload = np.frombuffer(
            pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL), dtype=np.uint8
        )
    return pa.array(payload.reshape(-1))


def decode(spec: RunSpec, value: pa.Array) -> Any:
    """Inverse of :func:`encode`, zero-copy for frames."""
    flat = value.to_numpy(zero_copy_only=True)
    if spec.payload == "dict1k":
        return pickle.loads(memoryview(flat))
    return flat.reshape(FRAME_SHAPES[spec.payload])


def ready_path(spec: RunSpec, name: str) -> Path:
    """File a node creates once its dora ``Node`` is up."""
    return Path(spec.run_dir) / f"ready-{name}"


def go_path(spec: RunSpec) -> Path:
    """File the runner creates once every node is up."""
    return Path(spec.run_dir) / "go"


def _stopped(node: Node) -> bool:
    event = node.try_recv()
    return event is not None and event["type"] == "STOP"


def run_source(node: Node, spec: RunSpec, probe: NodeProbe) -> None:
    """Send flat out or paced until dora says STOP."""
    go = go_path(spec)
    while not go.exists():
        if _stopped(node):
            return
        time.sleep(0.005)
    next_poll = time.monotonic()
    while True:
        if time.monotonic() >= next_poll:
            if _stopped(node):
                return
            next_poll = time.monotonic() + STOP_POLL_S
        seq, sent_t = probe.next_send()
        node.send_output(OUTPUT, encode(probe.payload), {"seq": seq, "t": sent_t})


def run_receiver(node: Node, spec: RunSpec, probe: NodeProbe) -> None:
    """Touch every input; relays forward the same Arrow array and metadata."""
    forward = probe.role == "relay"
    for event in node:
        kind = event["type"]
        if kind == "STOP":
            return
        if kind != "INPUT":
            continue
        metadata = event["metadata"]
        probe.on_receive(metadata["seq"], metadata["t"], decode(spec, event["value"]))
        if forward:
            node.send_output(OUTPUT, event["value"], {"seq": metadata["seq"], "t": metadata["t"]})


def main(spec_path: str, name: str) -> None:
    """Run one node and write its report."""
    spec = RunSpec.load(spec_path)
    probe = NodeProbe(spec, name)
    node = Node()
    probe.ready_t = time.time()
    ready_path(spec, name).touch()
    try:
        if probe.role == "source":
            run_source(node, spec, probe)
        else:
            run_receiver(node, spec, probe)
    finally:
        probe.dump()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
