"""ZeroMQ adapters for the data plane: one Publisher per producing node, one Subscriber per consumer.

Delivery modes per edge:

- lossless (default): an XPUB socket with ``XPUB_NODROP``; when a subscriber's queue is full the
  producer waits (bounded queue, backpressure), so nothing is dropped and order is kept.
- latest only: a second, lossy XPUB socket with a tiny queue; a slow consumer gets the newest
  chunks and the ones it skipped are counted as skipped, not lost.

Every chunk carries its producer's sequence number; the Subscriber counts gaps per producer
(``lost`` on lossless edges, ``skipped`` on latest-only ones) and never hides them. A producer
ends its stream with an end marker so that consumers drain everything before they stop.

Subscribers announce themselves with a ``join:<name>`` subscription so that a Publisher can wait
until every expected consumer is connected before data flows (no slow-joiner loss).
"""

from __future__ import annotations

import functools
import logging
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import zmq

from ..data_chunk import DataChunk
from ..errors import ProtocolError
from . import wire
from .shm import SlotPool, SlotReader

if TYPE_CHECKING:
    from .jpeg import JpegDecoder, JpegEncoder

__all__ = ["EdgeStats", "Publisher", "Subscriber"]

log = logging.getLogger(__name__)

#: Publisher socket modes: delivery (lossless or latest-only) x where the consumer runs.
MODES = ("lossless", "latest", "lossless-remote", "latest-remote")
LOSSLESS_HWM = 64
LATEST_HWM = 2
#: Frames smaller than this are copied into ZeroMQ; larger ones are sent without a copy.
COPY_BELOW = 64 * 1024
_NOBLOCK, _SNDMORE, _RCVMORE = int(zmq.NOBLOCK), int(zmq.SNDMORE), int(zmq.RCVMORE)  # plain ints: cheaper
#: Seconds a fixed port may stay busy before binding to it fails.
REBIND_PATIENCE = 5.0
#: Seconds that chunks still queued when an ended Publisher closes get to reach their consumers.
CLOSE_LINGER = 2.0
_JOIN = b"join:"


def _send_frames(socket: zmq.Socket, frames: list) -> None:
    """Send one message without blocking (raises ``zmq.Again`` when a queue is full): small frames
    are copied (cheaper than tracking them), large ones go without a copy."""
    last = len(frames) - 1
    for index, frame in enumerate(frames):
        flags = _NOBLOCK | _SNDMORE if index < last else _NOBLOCK
        socket.send(frame, flags, copy=memoryview(frame).nbytes < COPY_BELOW)


def _receive_frames(socket: zmq.Socket) -> list:
    """Receive one message without blocking (raises ``zmq.Again`` when none is queued): the header
    as bytes, the frames after it as zero-copy ``zmq.Frame`` s."""
    frames: list[Any] = [socket.recv(_NOBLOCK)]
    while socket.getsockopt(_RCVMORE):
        frames.append(socket.recv(copy=False))
    return frames


def _bind(socket: zmq.Socket, host: str, port: int = 0) -> str:
    """Bind to ``port``, or to any free port for 0. A fixed port (a restarted node takes its
    predecessor's) may stay busy a moment: a consumer's reconnect attempts can hold it."""
    if not port:
        return f"tcp://{host}:{socket.bind_to_random_port(f'tcp://{host}')}"
    deadline = time.monotonic() + REBIND_PATIENCE
    while True:
        try:
            socket.bind(f"tcp://{host}:{port}")
            return f"tcp://{host}:{port}"
        except zmq.ZMQError as error:
            if error.errno != zmq.EADDRINUSE or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


class Publisher:
    """Publishes one node's chunks to its consumers.

    Args:
        context: the process's ZeroMQ context.
        name: the producing node's name (stamped on every message).
        host: the interface address to bind on.
        modes: the sockets consumers need, from :data:`MODES`: ``"lossless"`` (the default
            delivery), ``"latest"`` (latest-only), and their ``"-remote"`` twins for consumers on
            other hosts, which get ``"image"`` records as JPEG.
        clock: Manager-aligned time, stamped on every chunk.
        port: a fixed port for the lossless socket (0: any free port).
        ports: fixed ports by mode (a restarted node takes its predecessor's, so that its
            consumers reconnect by themselves).
    """

    def __init__(
        self,
        context: zmq.Context,
        name: str,
        host: str,
        *,
        modes: Iterable[str] = ("lossless",),
        clock: Callable[[], float] = time.time,
        port: int = 0,
        ports: dict[str, int] | None = None,
    ) -> None:
        self.name = name
        self.incarnation = uuid.uuid4().hex[:8]
        self._clock = clock
        self.seq = -1
        self.blocked_seconds = 0.0
        self._ended = False
        self._sockets: dict[str, zmq.Socket] = {}
        self.addresses: dict[str, str] = {}
        unknown = set(modes) - set(MODES)
        if unknown:
            raise ValueError(f"unknown publisher modes {sorted(unknown)}; known: {MODES}")
        self._jpeg: JpegEncoder | None = None  # made when a remote consumer first needs one
        for mode in (m for m in MODES if m in set(modes)):
            socket = context.socket(zmq.XPUB)
            socket.setsockopt(zmq.LINGER, 0)
            socket.setsockopt(zmq.SNDHWM, LATEST_HWM if mode.startswith("latest") else LOSSLESS_HWM)
            socket.setsockopt(zmq.XPUB_VERBOSE, 1)
            socket.setsockopt(zmq.XPUB_NODROP, 1)  # a full queue says so; we decide what to drop
            fixed = (ports or {}).get(mode) or (port if mode == "lossless" else 0)
            self.addresses[mode] = _bind(socket, host, fixed)
            self._sockets[mode] = socket
        self._joined: set[str] = set()
        self._anonymous = 0
        self._pool: SlotPool | None = SlotPool() if "lossless" in self._sockets else None
        self._local_consumers: list[str] = []

    def use_shared_memory(self, consumers: Iterable[str]) -> None:
        """Send large arrays to these lossless consumers on this host through shared memory."""
        self._local_consumers = sorted(consumers)

    def wait_for_subscribers(self, names: Iterable[str], timeout: float, *, latest: int = 0) -> set[str]:
        """Block until the lossless consumers ``names`` and ``latest`` latest-only consumers have
        joined, or ``timeout`` passes.

        Lossless consumers announce their name; latest-only ones cannot (their socket conflates
        its subscriptions too), so they are counted.

        Returns:
            What is still missing: names, and ``"<n> latest-only consumer(s)"`` (empty on success).
        """
        deadline = time.monotonic() + timeout
        poller = zmq.Poller()
        for socket in self._sockets.values():
            poller.register(socket, zmq.POLLIN)

        def missing() -> set[str]:
            gone = set(names) - self._joined
            if self._anonymous < latest:
                gone.add(f"{latest - self._anonymous} latest-only consumer(s)")
            return gone

        while missing() and time.monotonic() < deadline:
            remaining_ms = max(1, int((deadline - time.monotonic()) * 1000))
            for socket, _ in poller.poll(min(remaining_ms, 100)):
                event = socket.recv()
                if event[:1] != b"\x01":
                    continue
                if event[1:].startswith(_JOIN):
                    self._joined.add(event[1 + len(_JOIN) :].decode(errors="replace"))
                elif socket in (self._sockets.get("latest"), self._sockets.get("latest-remote")) and event == b"\x01":
                    self._anonymous += 1
        return missing()

    def send(self, chunk: DataChunk, *, abort: Callable[[], bool] = lambda: False) -> int:
        """Publish ``chunk`` and return its sequence number.

        Blocks while a lossless consumer's queue is full (backpressure), until ``abort()`` is
        true. The chunk's arrays are sent without copying: do not modify them afterwards.

        Raises:
            UnsendableRecordError: a record cannot be serialised; nothing was sent and the
                sequence number is not used.
        """
        seq = self.seq + 1  # taken only once the chunk is encoded: a refused chunk leaves no gap
        produced_at = self._clock()
        chunk.producer, chunk.seq, chunk.produced_at = self.name, seq, produced_at
        encode = functools.partial(wire.encode_chunk, chunk, seq=seq, producer=self.name,
                                   produced_at=produced_at, incarnation=self.incarnation)
        consumers, pool = self._local_consumers, self._pool
        messages: dict[str, list] = {}
        plain = remote = None  # one encoding serves every socket that needs it
        for mode in self._sockets:
            if mode == "lossless" and consumers and pool is not None:
                messages[mode] = encode(shm=lambda array: pool.put(array, len(consumers), abort),
                                        consumers=consumers)
            elif mode.endswith("-remote"):
                remote = remote or encode(image_encoder=self._jpeg_encoder().encode)
                messages[mode] = remote
            else:
                plain = plain or encode()
                messages[mode] = plain
        self.seq = seq
        self._send(messages, abort)
        return self.seq

    def _jpeg_encoder(self):
        """The JPEG encoder for consumers on other hosts, made on first use."""
        if self._jpeg is None:
            from .jpeg import JpegEncoder

            self._jpeg = JpegEncoder()
        return self._jpeg

    def end(self, *, abort: Callable[[], bool] = lambda: False) -> None:
        """Tell every consumer that this stream is over (after the last chunk)."""
        frames = wire.encode_end(last_seq=self.seq, producer=self.name, produced_at=self._clock(),
                                 incarnation=self.incarnation)
        self._send({mode: frames for mode in self._sockets}, abort, end=True)
        self._ended = True

    def _send(self, messages: dict[str, list], abort: Callable[[], bool], *, end: bool = False) -> None:
        """Send each socket its message: lossless ones wait for room; latest-only ones skip when
        a consumer is behind (it counts them as skipped); the end marker always waits."""
        for mode, socket in self._sockets.items():
            chosen = messages[mode]
            latest = mode.startswith("latest")
            message = [wire.pack(chosen)] if latest else chosen  # one frame: conflatable
            if latest and not end:
                try:
                    _send_frames(socket, message)
                except zmq.Again:
                    pass
                continue
            waited = self._send_waiting(socket, message, abort)
            if not latest:
                self.blocked_seconds += waited

    def _send_waiting(self, socket: zmq.Socket, frames: list, abort: Callable[[], bool]) -> float:
        """Send, waiting while a consumer's queue is full, until ``abort()``; returns the wait."""
        pause, started = 0.00005, None
        while True:
            try:
                _send_frames(socket, frames)
                break
            except zmq.Again:
                if started is None:
                    started = time.monotonic()
                if abort():
                    log.warning("%s: gave up sending message %d to a full consumer", self.name, self.seq)
                    break
                time.sleep(pause)
                pause = min(pause * 2, 0.002)
        return time.monotonic() - started if started is not None else 0.0

    def close(self) -> None:
        """Close the sockets.

        After :meth:`end`, messages still queued on the lossless socket (the last chunks and the
        end marker) get up to :data:`CLOSE_LINGER` seconds to leave (the context's ``term()``
        waits for them); without :meth:`end`, and on the latest-only socket (whose consumers want
        no backlog), they are dropped.
        """
        for mode, socket in self._sockets.items():
            socket.close(linger=int(CLOSE_LINGER * 1000) if self._ended and mode == "lossless" else 0)
        self._sockets.clear()


@dataclass
class EdgeStats:
    """Delivery counters for one input edge."""

    received: int = 0
    lost: int = 0
    skipped: int = 0
    out_of_order: int = 0
    last_seq: int = -1
    ended: bool = False
    restarts: int = 0
    incarnation: str | None = None
    latencies: list[float] = field(default_factory=list)

    def as_dict(self) -> dict:
        lat = sorted(self.latencies)
        return {
            "received": self.received,
            "lost": self.lost,
            "skipped": self.skipped,
            "out_of_order": self.out_of_order,
            "ended": self.ended,
            "restarts": self.restarts,
            "latency_p50_ms": _percentile(lat, 0.50) * 1000 if lat else None,
            "latency_p99_ms": _percentile(lat, 0.99) * 1000 if lat else None,
        }


def _percentile(sorted_values: list[float], q: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


class Subscriber:
    """Receives the chunks of a node's inputs and keeps per-edge delivery counters.

    Args:
        context: the process's ZeroMQ context.
        name: the consuming node's name (announced to producers).
        clock: Manager-aligned time, stamped on each received chunk.
    """

    def __init__(self, context: zmq.Context, name: str, *, clock: Callable[[], float] = time.time):
        self.name = name
        self._context = context
        self._clock = clock
        self._sockets: dict[str, zmq.Socket] = {}
        self._poller = zmq.Poller()
        self._latest_only: set[str] = set()
        self.edges: dict[str, EdgeStats] = {}
        #: Messages that were not ChimeraPy data (foreign or garbage frames): counted and dropped.
        self.garbage = 0
        self._jpeg: JpegDecoder | None = None  # made when a JPEG frame first arrives
        self._slots = SlotReader(name)

    def connect(self, producer: str, address: str, *, latest_only: bool = False) -> None:
        """Connect to ``producer``'s publisher at ``address``."""
        mode = "latest" if latest_only else "lossless"
        socket = self._sockets.get(mode)
        if socket is None:
            socket = self._context.socket(zmq.SUB)
            socket.setsockopt(zmq.LINGER, 0)
            socket.setsockopt(zmq.RCVHWM, LATEST_HWM if latest_only else LOSSLESS_HWM)
            if latest_only:
                # keep draining the connection, holding only the newest message; conflation
                # applies to subscriptions too, so subscribe to everything and nothing else
                socket.setsockopt(zmq.CONFLATE, 1)
            else:
                socket.setsockopt(zmq.SUBSCRIBE, _JOIN + self.name.encode())
            socket.setsockopt(zmq.SUBSCRIBE, b"")
            self._sockets[mode] = socket
            self._poller.register(socket, zmq.POLLIN)
        socket.connect(address)
        self.edges[producer] = EdgeStats()
        if latest_only:
            self._latest_only.add(producer)

    @property
    def all_ended(self) -> bool:
        """True once every producer has sent its end marker."""
        return all(edge.ended for edge in self.edges.values())

    def receive(self, timeout: float) -> list[DataChunk]:
        """Wait up to ``timeout`` seconds and return the chunks that arrived, in arrival order.

        On latest-only edges only the newest chunk of each burst is kept.
        """
        return list(self.stream(timeout))

    def stream(self, timeout: float) -> Iterator[DataChunk]:
        """Like :meth:`receive`, but yields each chunk as soon as it is decoded, so that a node
        stepping on it lets go of its shared-memory buffers before the next one is mapped."""
        events = dict(self._poller.poll(int(timeout * 1000)))
        for mode, socket in self._sockets.items():
            if socket not in events:
                continue
            newest: dict[str, DataChunk] = {}
            for _ in range(LOSSLESS_HWM):  # a bounded batch; the rest stays queued
                try:
                    frames = _receive_frames(socket)
                except zmq.Again:
                    break
                if mode == "latest":
                    try:
                        frames = wire.unpack(frames[0])
                    except ProtocolError:
                        self.garbage += 1
                        continue
                chunk = self._accept(frames)
                if chunk is None:
                    continue
                if mode == "lossless":
                    yield chunk
                    continue
                producer = str(chunk.producer)  # always set on a decoded chunk
                replaced = newest.get(producer)
                if replaced is not None:  # an older chunk of this burst: skipped by design
                    self.edges[producer].received -= 1
                    self.edges[producer].skipped += 1
                newest[producer] = chunk
            yield from newest.values()

    def _decode_jpeg(self, data: memoryview):
        if self._jpeg is None:
            from .jpeg import JpegDecoder

            self._jpeg = JpegDecoder()
        return self._jpeg.decode(data)

    def _accept(self, frames: list) -> DataChunk | None:
        try:
            message = wire.decode(frames, image_decoder=self._decode_jpeg, shm_view=self._slots.view,
                                  consumer=self.name)
        except ProtocolError as error:
            self.garbage += 1
            log.debug("%s: dropped a malformed message: %s", self.name, error)
            return None
        edge = self.edges.get(message.producer)
        if edge is None:
            self.garbage += 1
            return None
        if message.incarnation != edge.incarnation:
            if edge.incarnation is not None:  # the producer was restarted: a new sequence begins
                edge.restarts += 1
                edge.last_seq, edge.ended = -1, False
            edge.incarnation = message.incarnation
        if message.seq < edge.last_seq or (message.kind == "d" and message.seq == edge.last_seq):
            edge.out_of_order += message.kind == "d"
            return None
        gap = message.seq - edge.last_seq - (1 if message.kind == "d" else 0)
        if gap > 0:
            if message.producer in self._latest_only:
                edge.skipped += gap
            else:
                edge.lost += gap
        edge.last_seq = message.seq
        if message.kind == "e":
            edge.ended = True
            return None
        chunk = message.chunk
        assert chunk is not None
        chunk.received_at = self._clock()
        edge.received += 1
        edge.latencies.append(chunk.received_at - message.produced_at)
        if len(edge.latencies) > 2048:
            del edge.latencies[:1024]
        return chunk

    def close(self) -> None:
        """Close every socket."""
        for socket in self._sockets.values():
            socket.close(linger=0)
        self._sockets.clear()
