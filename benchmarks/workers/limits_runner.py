"""The limits: raw pyzmq PUB/SUB (tcp, ipc) and a plain shared-memory ring.

No framework: one forked process per node, the same probe and payloads as the peers.
ZeroMQ stages send ``[header, payload]`` multipart messages, frames with ``copy=False``,
dicts pickled; relays forward the received frames untouched. The shared-memory limit
copies each payload once into a ring of slots and hands the sink a zero-copy view,
with two semaphores as the whole handshake (lossless: the source waits for a slot);
with several independent pairs (``parallel``), each pair has a ring of its own.

Usage: ``python -m benchmarks.workers.limits_runner SPEC.json``
"""

from __future__ import annotations

import multiprocessing as mp
import pickle
import struct
import time
from multiprocessing import shared_memory
from multiprocessing.context import BaseContext
from multiprocessing.synchronize import Event, Semaphore
from typing import Any

import numpy as np
import zmq

from benchmarks.probe import FRAME_SHAPES, NodeProbe, payload_nbytes
from benchmarks.spec import RunSpec
from benchmarks.workers.harness import Run, free_ports, run_main

HEADER = struct.Struct("<qdq")  # seq, send time, payload length
END_SEQ = -1
POLL_MS = 100
IDLE_AFTER_STOP_S = 0.5
SHM_SLOTS = 4
JOIN_TIMEOUT_S = 10.0


def encode(spec: RunSpec, payload: Any) -> Any:
    """Bytes-like view of a payload: the frame buffer itself, or a pickled dict."""
    if isinstance(payload, dict):
        return pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL)
    return memoryview(payload).cast("B")


def decode(spec: RunSpec, buffer: Any) -> Any:
    """Inverse of :func:`encode`, zero-copy for frames."""
    if spec.payload == "dict1k":
        return pickle.loads(buffer)
    return np.frombuffer(buffer, dtype=np.uint8).reshape(FRAME_SHAPES[spec.payload])


# -- ZeroMQ ----------------------------------------------------------------------------
def zmq_stage(
    spec: RunSpec, name: str, addresses: dict[str, str], ready: Semaphore, go: Event, stop: Event
) -> None:
    """One node as a process: bind its PUB (if any), connect its SUB (if any), run."""
    probe = NodeProbe(spec, name)
    ctx = zmq.Context()
    pub = sub = None
    if name in addresses:
        pub = ctx.socket(zmq.PUB)
        pub.bind(addresses[name])
    upstream = spec.upstream_of(name)
    if upstream:
        sub = ctx.socket(zmq.SUB)
        sub.setsockopt(zmq.SUBSCRIBE, b"")
        sub.connect(addresses[upstream])
    ready.release()
    go.wait()
    try:
        if sub is None:
            _zmq_source(spec, probe, pub, stop)
        else:
            _zmq_receive(spec, probe, sub, pub, stop)
    finally:
        probe.dump()
        for sock in (pub, sub):
            if sock is not None:
                sock.close(linger=0)
        ctx.term()


def _zmq_source(spec: RunSpec, probe: NodeProbe, pub: zmq.Socket, stop: Event) -> None:
    while not stop.is_set():
        seq, sent_t = probe.next_send()
        body = encode(spec, probe.payload)
        pub.send_multipart([HEADER.pack(seq, sent_t, len(body)), body], copy=False)
    for _ in range(3):
        pub.send_multipart([HEADER.pack(END_SEQ, 0.0, 0), b""])


def _zmq_receive(
    spec: RunSpec, probe: NodeProbe, sub: zmq.Socket, pub: zmq.Socket | None, stop: Event
) -> None:
    idle_since: float | None = None
    while True:
        if not sub.poll(POLL_MS):
            if stop.is_set():
                idle_since = idle_since or time.monotonic()
                if time.monotonic() - idle_since > IDLE_AFTER_STOP_S:
                    return
            continue
        frames = sub.recv_multipart(copy=False)
        seq, sent_t, _ = HEADER.unpack(frames[0].buffer)
        if pub is not None:
            pub.send_multipart(frames, copy=False)
        if seq == END_SEQ:
            return
        probe.on_receive(seq, sent_t, decode(spec, frames[1].buffer))


# -- shared memory ---------------------------------------------------------------------
class Ring:
    """``SHM_SLOTS`` slots (header + payload) in one shared-memory block, and the two
    semaphores that are the whole handshake. Made by the runner, inherited by fork."""

    def __init__(self, spec: RunSpec, ctx: BaseContext) -> None:
        self.slot_size = HEADER.size + payload_nbytes(spec.payload) * 2
        self.memory = shared_memory.SharedMemory(create=True, size=self.slot_size * SHM_SLOTS)
        self.free: Semaphore = ctx.Semaphore(SHM_SLOTS)
        self.full: Semaphore = ctx.Semaphore(0)

    @property
    def buf(self) -> memoryview:
        buf = self.memory.buf
        assert buf is not None, "the ring is mapped until the runner closes it"
        return buf

    def put(self, index: int, seq: int, sent_t: float, body: Any) -> None:
        """Copy ``body`` (once) into slot ``index``."""
        base = (index % SHM_SLOTS) * self.slot_size
        HEADER.pack_into(self.buf, base, seq, sent_t, len(body))
        self.buf[base + HEADER.size : base + HEADER.size + len(body)] = body

    def get(self, index: int) -> tuple[int, float, memoryview]:
        """Header and a zero-copy view of slot ``index``."""
        base = (index % SHM_SLOTS) * self.slot_size
        seq, sent_t, length = HEADER.unpack_from(self.buf, base)
        return seq, sent_t, self.buf[base + HEADER.size : base + HEADER.size + length]

    def close(self) -> None:
        """Unmap and remove the block (runner only)."""
        self.memory.close()
        self.memory.unlink()


def shm_stage(
    spec: RunSpec, name: str, ring: Ring, ready: Semaphore, go: Event, stop: Event
) -> None:
    """One end of the ring: the source copies in, the sink views out."""
    probe = NodeProbe(spec, name)
    ready.release()
    go.wait()
    try:
        if probe.role == "source":
            _shm_source(spec, probe, ring, stop)
        else:
            _shm_sink(spec, probe, ring, stop)
    finally:
        probe.dump()


def _shm_source(spec: RunSpec, probe: NodeProbe, ring: Ring, stop: Event) -> None:
    index = 0
    while not stop.is_set():
        if not ring.free.acquire(timeout=POLL_MS / 1000):
            continue
        seq, sent_t = probe.next_send()
        ring.put(index, seq, sent_t, encode(spec, probe.payload))
        ring.full.release()
        index += 1
    if ring.free.acquire(timeout=1.0):
        ring.put(index, END_SEQ, 0.0, b"")
        ring.full.release()


def _shm_sink(spec: RunSpec, probe: NodeProbe, ring: Ring, stop: Event) -> None:
    index = 0
    while True:
        if not ring.full.acquire(timeout=IDLE_AFTER_STOP_S if stop.is_set() else POLL_MS / 1000):
            if stop.is_set():
                return
            continue
        seq, sent_t, body = ring.get(index)
        if seq == END_SEQ:
            return
        probe.on_receive(seq, sent_t, decode(spec, body))
        del body
        ring.free.release()
        index += 1


# -- runner ----------------------------------------------------------------------------
def _addresses(spec: RunSpec) -> dict[str, str]:
    publishers = sorted({src for src, _ in spec.edges})
    if spec.transport == "ipc":
        return {name: f"ipc://{spec.run_dir}/{name}.ipc" for name in publishers}
    ports = free_ports(len(publishers))
    return {name: f"tcp://127.0.0.1:{port}" for name, port in zip(publishers, ports)}


def body(run: Run) -> None:
    """Start the stage processes, stream for the spec's duration, stop and join."""
    spec = run.spec
    ctx = mp.get_context("fork")
    ready, go, stop = ctx.Semaphore(0), ctx.Event(), ctx.Event()
    rings: dict[str, Ring] = {}
    if spec.transport == "shm":
        if spec.topology not in ("pair", "parallel"):
            raise ValueError("the shared-memory limit is defined for pairs of processes only")
        rings = {src: Ring(spec, ctx) for src, _ in spec.edges}
        procs = [
            ctx.Process(
                target=shm_stage, args=(spec, n, rings[spec.source_of(n)], ready, go, stop)
            )
            for n in spec.node_names
        ]
    else:
        addresses = _addresses(spec)
        procs = [
            ctx.Process(target=zmq_stage, args=(spec, n, addresses, ready, go, stop))
            for n in spec.node_names
        ]
    try:
        with run.phase("setup"):
            for proc in procs:
                proc.start()
            for _ in procs:
                if not ready.acquire(timeout=30):
                    raise TimeoutError("a stage did not come up within 30 s")
            time.sleep(0.2)  # let SUB subscriptions reach the publishers
        go.set()
        run.window_begin()
        time.sleep(spec.duration_s)
        run.window_end()
        with run.phase("stop"):
            stop.set()
            deadline = time.monotonic() + JOIN_TIMEOUT_S
            for proc in procs:
                proc.join(max(0.1, deadline - time.monotonic()))
    finally:
        for ring in rings.values():
            ring.close()


if __name__ == "__main__":
    run_main(body)
