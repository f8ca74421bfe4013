"""ZeroMQ adapters for the data plane: one Publisher per producing node, one Subscriber per consumer.

Every consumer of a producer has an edge of its own: its own socket on the producer's side, its
own endpoint and its own bounded queue. On one host that endpoint is ``ipc://`` in the Worker's
private folder (:mod:`chimerapy.net.endpoints`: only the Worker's user can connect or bind),
served by a plain Unix stream socket (:mod:`chimerapy.net.local_link`: no ZeroMQ I/O threads
between the two nodes). Toward another host it is a ZeroMQ socket over TCP with CURVE
(:mod:`chimerapy.net.keys`): the producer's socket is a CURVE server whose ZAP domain admits
only that edge's consumer key, the consumer pins the producer's public key, and the frames are
encrypted. A message is decoded (and a pickled
record unpickled) only after it came through such an authenticated connection.

Delivery modes per edge:

- lossless (default): a full queue makes the producer wait for that edge (backpressure), so a
  slow consumer loses nothing, for at most :data:`STALL_PATIENCE` seconds at a time. A consumer
  that takes no message for that long has *stalled*: its edge drops (and counts) messages
  instead of waiting, so the producer and its other consumers go on at full speed; the edge
  gets what fits in its queue meanwhile, and waits again once it has taken
  :data:`RECOVER_AFTER` messages in a row. The consumer sees the dropped messages as ``lost``.
- latest only: a tiny queue; when the consumer is behind the producer skips it (it counts them
  as ``skipped``, not lost).

Every chunk carries its producer's sequence number; the Subscriber counts gaps per producer and
never hides them. A producer ends its stream with an end marker so that consumers drain
everything before they stop. A Publisher can wait until every consumer has subscribed before
data flows (no slow-joiner loss).
"""

from __future__ import annotations

import functools
import logging
import math
import os
import select
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import zmq

from ..data_chunk import DataChunk
from ..errors import ProtocolError
from . import wire
from .endpoints import PrivateDirectory, bind, is_ipc
from .keys import Keypair, authenticator
from .local_link import RECONNECT_EVERY, Flusher, LocalInlet, LocalOutlet
from .shm import MAX_CONSUMERS, SHM_THRESHOLD, SlotPool, SlotReader

if TYPE_CHECKING:
    from .jpeg import JpegDecoder, JpegEncoder

__all__ = ["Consumer", "EdgeStats", "Publisher", "Subscriber"]

log = logging.getLogger(__name__)

#: Edge modes: delivery (lossless or latest-only) x where the consumer runs; ``"debug"`` is a
#: debug stream's open socket (loopback, any local subscriber, no keys).
MODES = ("lossless", "latest", "lossless-remote", "latest-remote", "debug")
LOSSLESS_HWM = 64
LATEST_HWM = 2
#: Frames smaller than this are copied into ZeroMQ; larger ones are sent without a copy.
COPY_BELOW = 64 * 1024
_NOBLOCK, _SNDMORE, _RCVMORE = int(zmq.NOBLOCK), int(zmq.SNDMORE), int(zmq.RCVMORE)  # plain ints: cheaper
#: Seconds that chunks still queued when an ended Publisher closes get to reach their consumers.
CLOSE_LINGER = 2.0
#: Seconds a lossless edge may keep its producer waiting before it counts as stalled.
STALL_PATIENCE = 5.0
#: Messages in a row a stalled edge must take before its producer waits for it again.
RECOVER_AFTER = 16


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


@dataclass(frozen=True)
class Consumer:
    """One consumer of a producer, as its Publisher needs to know it.

    Attributes:
        name: the consuming node's name.
        mode: one of :data:`MODES`.
        key: the consumer's CURVE public key (Z85), required for the ``-remote`` modes.
    """

    name: str
    mode: str = "lossless"
    key: str | None = None


class ZmqOutlet:
    """The producer's end of an edge over ZeroMQ (to another host, or a debug stream): an XPUB
    socket, with the interface of :class:`~chimerapy.net.local_link.LocalOutlet`."""

    def __init__(self, socket: zmq.Socket) -> None:
        self.socket = socket
        self._joined = self._done = False

    def send(self, frames: list) -> bool:
        """Queue one message; False (nothing queued) while the consumer's queue is full."""
        try:
            if len(frames) == 1:  # a header alone (shared memory, end marker, latest-only)
                self.socket.send(frames[0], _NOBLOCK, copy=memoryview(frames[0]).nbytes < COPY_BELOW)
            else:
                _send_frames(self.socket, frames)
        except zmq.Again:
            return False
        return True

    def joined(self) -> bool:
        """True once the consumer has subscribed."""
        self._subscriptions()
        return self._joined

    def done(self) -> bool:
        """True once the consumer has unsubscribed (it took the end marker, or closed)."""
        self._subscriptions()
        return self._done

    def _subscriptions(self) -> None:
        while True:  # (un)subscriptions in order: a restarted consumer left a pair behind
            try:
                event = self.socket.recv(_NOBLOCK)[:1]
            except zmq.Again:
                return
            self._joined = self._joined or event == b"\x01"
            self._done = event == b"\x00"

    def room_fd(self) -> None:
        return None  # (ZeroMQ's sockets do not say when a queue has room)

    def close(self, linger: float = 0.0) -> None:
        self.socket.close(linger=int(linger * 1000))


@dataclass(eq=False)
class _Edge:
    """The producer's side of one edge: its socket and its delivery state."""

    consumer: Consumer
    link: ZmqOutlet | LocalOutlet
    address: str
    domain: str | None = None
    shm_index: int | None = None  # its index among the shared-memory readers
    joined: bool = False
    stalled: bool = False
    in_row: int = 0
    sent: int = 0
    dropped: int = 0
    stalls: int = 0
    latest: bool = field(init=False)  # latest-only delivery
    remote: bool = field(init=False)  # a consumer on another host

    def __post_init__(self) -> None:  # plain attributes: read for every message
        self.latest = self.consumer.mode.startswith("latest")
        self.remote = self.consumer.mode.endswith("-remote")


class Publisher:
    """Publishes one node's chunks to its consumers, each on an edge of its own.

    Args:
        context: the process's ZeroMQ context.
        name: the producing node's name (stamped on every message).
        consumers: who may subscribe, and how.
        host: the interface address for edges to other hosts (and debug streams).
        private_dir: the Worker's private folder for same-host ``ipc://`` endpoints (None: the
            Publisher makes one of its own).
        keypair: this node's CURVE keypair, required when a consumer is on another host.
        clock: Manager-aligned time, stamped on every chunk.
        endpoints: fixed endpoints by consumer name (a restarted node binds its predecessor's,
            so that its consumers reconnect by themselves); a ``"debug"`` consumer's may be a
            fixed TCP port as ``tcp://HOST:PORT``.
        stall_patience: seconds a lossless edge may keep the producer waiting (see module doc).
    """

    def __init__(
        self,
        context: zmq.Context,
        name: str,
        *,
        consumers: Iterable[Consumer],
        host: str = "127.0.0.1",
        private_dir: str | None = None,
        keypair: Keypair | None = None,
        clock: Callable[[], float] = time.time,
        endpoints: dict[str, str] | None = None,
        stall_patience: float = STALL_PATIENCE,
    ) -> None:
        self.name = name
        self.incarnation = uuid.uuid4().hex[:8]
        self.stall_patience = stall_patience
        self._clock = clock
        self._context = context
        self.seq = -1
        self.blocked_seconds = 0.0
        self._ended = False
        self._jpeg: JpegEncoder | None = None  # made when a remote consumer first needs one
        consumers = list(consumers)
        unknown = {c.mode for c in consumers} - set(MODES)
        if unknown:
            raise ValueError(f"unknown consumer modes {sorted(unknown)}; known: {MODES}")
        self._own_dir = PrivateDirectory() if private_dir is None and any(
            c.mode in ("lossless", "latest") for c in consumers) else None
        directory = private_dir if private_dir is not None else (str(self._own_dir.path) if self._own_dir else "")
        self._flusher: Flusher | None = Flusher()  # writes the rest of large messages to same-host consumers
        self._edges: list[_Edge] = []
        try:
            for consumer in consumers:
                fixed = (endpoints or {}).get(consumer.name)
                self._edges.append(self._open(consumer, host, directory, keypair, fixed))
        except Exception:
            self.close()
            raise
        self.addresses: dict[str, str] = {edge.consumer.name: edge.address for edge in self._edges}
        shm_edges = [edge for edge in self._edges if edge.consumer.mode == "lossless"][:MAX_CONSUMERS]
        for index, edge in enumerate(shm_edges):
            edge.shm_index = index
        self._shm_edges = shm_edges
        self._shm_indices = list(range(len(shm_edges)))
        self._over_budget = False  # some consumer held its whole slot budget at the last look
        self._shm_names = [edge.consumer.name for edge in shm_edges]
        self._pool: SlotPool | None = SlotPool(len(shm_edges), owner=name) if shm_edges else None
        self._lent: dict[str, np.ndarray] = {}  # output buffers not sent yet, by record name

    def _open(self, consumer: Consumer, host: str, directory: str, keypair: Keypair | None,
              fixed: str | None) -> _Edge:
        if consumer.mode in ("lossless", "latest"):
            endpoint = fixed or f"ipc://{directory}/{uuid.uuid4().hex[:12]}"
            if not is_ipc(endpoint):
                raise ValueError(f"{self.name} -> {consumer.name}: a same-host edge must use ipc://")
            return _Edge(consumer, LocalOutlet(endpoint, self._flusher), endpoint)
        socket = self._context.socket(zmq.XPUB)
        socket.setsockopt(zmq.LINGER, 0)
        socket.setsockopt(zmq.SNDHWM, LATEST_HWM if consumer.mode.startswith("latest") else LOSSLESS_HWM)
        socket.setsockopt(zmq.XPUB_VERBOSE, 1)
        socket.setsockopt(zmq.XPUB_NODROP, 1)  # a full queue says so; we decide what to drop
        edge = _Edge(consumer, ZmqOutlet(socket), "")
        try:
            if consumer.mode.endswith("-remote"):
                if keypair is None or not consumer.key:
                    raise ValueError(f"{self.name} -> {consumer.name}: an edge to another host needs "
                                     f"the session's keys (the producer's keypair and the consumer's key)")
                socket.curve_secretkey = keypair.secret.encode("ascii")
                socket.curve_publickey = keypair.public.encode("ascii")
                socket.curve_server = True
                edge.domain = authenticator(self._context).allow([consumer.key])
                socket.zap_domain = edge.domain.encode()
                endpoint = fixed or f"tcp://{host}:0"
            else:  # a debug stream
                endpoint = fixed or f"tcp://{host}:0"
            edge.address = bind(socket, endpoint)
        except Exception:
            if edge.domain is not None:
                authenticator(self._context).revoke(edge.domain)
            socket.close(linger=0)
            raise
        return edge

    def wait_for_subscribers(self, timeout: float) -> set[str]:
        """Block until every consumer has subscribed, or ``timeout`` passes.

        Returns:
            The names of the consumers still missing (empty on success).
        """
        deadline = time.monotonic() + timeout
        waiting = [edge for edge in self._edges if edge.consumer.mode != "debug"]
        while True:
            for edge in waiting:
                edge.joined = edge.joined or edge.link.joined()
            waiting = [edge for edge in waiting if not edge.joined]
            if not waiting or time.monotonic() >= deadline:
                return {edge.consumer.name for edge in waiting}
            time.sleep(0.001)

    def output_buffer(self, name: str, shape: tuple[int, ...], dtype: Any = np.uint8, *,
                      abort: Callable[[], bool] = lambda: False) -> np.ndarray:
        """A writable array for the record ``name`` of the next chunk, to fill in place.

        With consumers on this host reached through shared memory, it is a view of a free slot
        (waiting for one as :meth:`send` waits: backpressure, bounded by the stall patience),
        and sending it as a record's value hands the slot to them without a copy. Otherwise
        (no such consumer, a small array, ``/dev/shm`` full) it is an ordinary new array. A
        buffer taken for ``name`` before and not sent is given back first.
        """
        dtype = np.dtype(dtype)
        shape = tuple(int(n) for n in shape)
        pool = self._pool
        previous = self._lent.pop(name, None)
        if pool is not None and previous is not None:
            pool.give_back(previous)
        if pool is None or not pool.enabled or dtype.itemsize * math.prod(shape) < SHM_THRESHOLD or dtype.hasobject:
            return np.empty(shape, dtype)
        array = pool.lend(dtype, shape, grow=False)
        if array is None:  # every slot taken: wait for the consumers that are behind
            self._shm_groups(abort)
            array = pool.lend(dtype, shape)
        if array is None:
            return np.empty(shape, dtype)
        self._lent[name] = array
        return array

    def give_back(self) -> None:
        """Return every output buffer taken and not sent (after a step)."""
        if self._lent and self._pool is not None:
            self._pool.give_back()
        self._lent.clear()

    def send(self, chunk: DataChunk, *, abort: Callable[[], bool] = lambda: False) -> int:
        """Publish ``chunk`` and return its sequence number.

        Waits while a lossless consumer's queue is full (backpressure on that edge), for at most
        :attr:`stall_patience` per edge, or until ``abort()`` is true. The chunk's arrays are
        sent without copying: do not modify them afterwards.

        Raises:
            UnsendableRecordError: a record cannot be serialised; nothing was sent and the
                sequence number is not used.
        """
        seq = self.seq + 1  # taken only once the chunk is encoded: a refused chunk leaves no gap
        produced_at = self._clock()
        chunk.producer, chunk.seq, chunk.produced_at = self.name, seq, produced_at
        encode = functools.partial(wire.encode_chunk, seq=seq, producer=self.name,
                                   produced_at=produced_at, incarnation=self.incarnation)
        groups: dict[_Edge, str] = {}  # shared-memory edges: "shm", "bytes" or "drop"
        references: list[dict] = []
        in_place: list[dict] = []  # references of output buffers sent without a copy
        shared = None
        borrowed: list[str] = []  # records whose value lies in an output buffer
        if self._pool is not None and self._pool.lending:
            chunk, borrowed = self._split_lent(chunk)
        detached: list[DataChunk] = []

        def as_bytes() -> DataChunk:
            """The chunk to send as bytes: output buffers copied (their slots are reused)."""
            if not borrowed:
                return chunk
            if not detached:
                detached.append(chunk.detached(borrowed))
            return detached[0]

        if self._pool is not None:
            pool = self._pool

            def place(array: Any) -> dict | None:
                reference = None
                slot = pool.lent_slot(array) if pool.lending else None
                if slot is not None:  # an output buffer: hand its slot over, no copy
                    if not groups:
                        groups.update(self._shm_groups(abort) if self._over_budget
                                      else dict.fromkeys(self._shm_edges, "shm"))
                    reference = pool.claim(slot, [edge.shm_index for edge, group in groups.items()
                                                  if group == "shm" and edge.shm_index is not None])
                    if reference is not None:
                        references.append(reference)
                        in_place.append(reference)
                    return reference
                if not groups:
                    if not self._over_budget:  # the common case: a free slot for everyone
                        reference = pool.put(array, self._shm_indices, grow=False)
                        if reference is not None:
                            groups.update(dict.fromkeys(self._shm_edges, "shm"))
                    if reference is None:
                        groups.update(self._shm_groups(abort))
                if reference is None:
                    holders = [edge.shm_index for edge, group in groups.items()
                               if group == "shm" and edge.shm_index is not None]
                    reference = pool.put(array, holders)
                if reference is not None:
                    references.append(reference)
                return reference

            shared = encode(chunk, shm=place, consumers=self._shm_names)
        plain = shared if shared is not None and not references and not borrowed else None
        remote = None
        messages: dict[_Edge, list] = {}
        for edge in self._edges:
            if edge.remote:
                remote = remote or encode(as_bytes(), image_encoder=self._jpeg_encoder().encode)
                messages[edge] = remote
            elif shared is not None and edge.shm_index is not None and groups.get(edge, "shm") != "bytes":
                if groups.get(edge) == "drop":
                    self._drop(edge, [])
                    continue
                messages[edge] = shared
            else:
                plain = plain or encode(as_bytes())
                messages[edge] = plain
        if self._pool is not None and (borrowed or self._pool.keeping):
            self._pool.keep(in_place)  # the producer's last frame stays as it was sent
            self._return_unsent(chunk, borrowed)
        self.seq = seq
        self._deliver(messages, abort, claims=references)
        return self.seq

    def _split_lent(self, chunk: DataChunk) -> tuple[DataChunk, list[str]]:
        """The chunk to encode for shared memory, and the records whose value lies in an output
        buffer. A whole output buffer stays (it is sent in place); a part of one is copied, since
        its slot is given back after the send."""
        pool = self._pool
        assert pool is not None
        borrowed = []
        parts = []
        for name, record in chunk.items():
            value = record["value"]
            if isinstance(value, np.ndarray) and pool.overlaps_lent(value):
                borrowed.append(name)
                if pool.lent_slot(value) is None:
                    parts.append(name)
        return (chunk.detached(parts) if parts else chunk), borrowed

    def _return_unsent(self, chunk: DataChunk, borrowed: list[str]) -> None:
        """Give back the output buffers of ``chunk`` that did not go in place (they went as
        copies) and forget the ones that did."""
        pool = self._pool
        assert pool is not None
        for name in borrowed:
            pool.give_back(chunk.get(name)["value"])
        for key, array in list(self._lent.items()):
            if not pool.is_lent(array):
                del self._lent[key]

    def _shm_groups(self, abort: Callable[[], bool]) -> dict[_Edge, str]:
        """Which shared-memory edges claim a slot for this message ("shm"), get bytes because they
        keep every frame they hold ("bytes"), or get nothing (a stalled edge over its budget)."""
        pool = self._pool
        assert pool is not None
        groups = dict.fromkeys(self._shm_edges, "shm")
        full = pool.full_consumers()
        self._over_budget = bool(full)
        if not full:
            return groups
        waiting = []
        for edge in self._shm_edges:
            index = edge.shm_index
            if index not in full:
                continue
            if edge.stalled:
                groups[edge] = "drop"
            elif full[index]:  # behind: wait for it (backpressure on this edge)
                waiting.append(edge)
            else:  # it keeps every frame it holds: waiting would be pointless
                groups[edge] = "bytes"
        if waiting:  # until each has room, or has mapped all it holds (it keeps frames: bytes)
            def caught_up(edge: _Edge) -> bool:
                state = pool.full_consumers()
                return edge.shm_index not in state or not state[edge.shm_index]

            for edge in self._wait(waiting, caught_up, abort):
                groups[edge] = "drop"
            state = pool.full_consumers()
            for edge in waiting:
                if groups[edge] != "drop" and edge.shm_index in state:
                    groups[edge] = "bytes"
        return groups

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
        self._deliver({edge: frames for edge in self._edges}, abort, end=True)
        self._ended = True

    def _deliver(self, messages: dict[_Edge, list], abort: Callable[[], bool], *, end: bool = False,
                 claims: list[dict] | None = None) -> None:
        """Send each edge its message. A latest-only edge that is behind skips it; a lossless one
        is waited for (see :data:`STALL_PATIENCE`), a stalled one drops it; the end marker is
        waited for on every edge."""
        pending: list[_Edge] = []
        packed: dict[int, list] = {}
        outgoing: dict[_Edge, list] = {}
        for edge, frames in messages.items():
            if edge.latest:  # one frame: conflatable
                key = id(frames)
                if key not in packed:
                    packed[key] = [wire.pack(frames)]
                frames = packed[key]
            outgoing[edge] = frames
            if self._try(edge, frames):
                continue
            if edge.latest and not end:
                continue  # the consumer counts it as skipped
            if edge.stalled and not end:
                self._drop(edge, claims)
                continue
            pending.append(edge)
        if pending:
            for edge in self._wait(pending, lambda e: self._try(e, outgoing[e]), abort, end=end, room=True):
                if end:
                    log.warning("%s: consumer %s did not take the end of the stream", self.name, edge.consumer.name)
                else:
                    self._drop(edge, claims)

    def _try(self, edge: _Edge, frames: list) -> bool:
        if not edge.link.send(frames):
            return False
        edge.sent += 1
        if edge.stalled:
            edge.in_row += 1
            if edge.in_row >= RECOVER_AFTER:
                edge.stalled, edge.in_row = False, 0
                log.warning("%s: consumer %s reads again; its edge waits for it again", self.name, edge.consumer.name)
        return True

    def _wait(self, pending: list[_Edge], ready: Callable[[_Edge], bool], abort: Callable[[], bool],
              *, end: bool = False, room: bool = False) -> list[_Edge]:
        """Wait until ``ready(edge)`` for each of ``pending``, each at most the stall patience
        (lossless edges that run out of it become stalled); returns the edges that never were.
        ``room``: ready means room in the edges' sockets; same-host ones wake the wait at once."""
        started, pause = time.monotonic(), 0.00005
        failed: list[_Edge] = []
        while pending:
            if abort():
                log.warning("%s: gave up sending message %d to %s", self.name, self.seq,
                            ", ".join(edge.consumer.name for edge in pending))
                failed += pending
                break
            sockets = [edge.link.room_fd() for edge in pending] if room else []
            if sockets and None not in sockets:  # sleep until a consumer makes room (or the pause ends)
                poller = select.poll()
                for fd in sockets:
                    poller.register(cast(int, fd), select.POLLOUT)
                poller.poll(math.ceil(pause * 1000))
            else:
                time.sleep(pause)
            pause = min(pause * 2, 0.002)
            waited = time.monotonic() - started
            still = []
            for edge in pending:
                if ready(edge):
                    continue
                if waited > self.stall_patience:
                    if not end and not edge.stalled:
                        self._stall(edge, waited)
                    failed.append(edge)
                else:
                    still.append(edge)
            pending = still
        self.blocked_seconds += time.monotonic() - started
        return failed

    def _stall(self, edge: _Edge, waited: float) -> None:
        edge.stalled, edge.in_row = True, 0
        edge.stalls += 1
        log.warning("%s: consumer %s took no message for %.1f s; its edge now drops what does not fit in "
                    "its queue (counted as lost) so that %s's other consumers go on", self.name,
                    edge.consumer.name, waited, self.name)

    def _drop(self, edge: _Edge, claims: list[dict] | None) -> None:
        edge.dropped += 1
        edge.in_row = 0
        if edge.shm_index is not None and self._pool is not None:
            for reference in claims or ():
                self._pool.release(reference, edge.shm_index)

    def _await_receipts(self, timeout: float) -> None:
        """Wait until the consumer of each lossless edge has unsubscribed, which it does once it
        took the end marker (or when it closed), or ``timeout`` passes."""
        waiting = [edge.link for edge in self._edges if not edge.latest and edge.consumer.mode != "debug"]
        deadline, pause = time.monotonic() + timeout, 0.0001
        while True:
            waiting = [link for link in waiting if not link.done()]
            if not waiting or time.monotonic() >= deadline:
                return
            time.sleep(pause)
            pause = min(pause * 2, 0.005)

    def stats(self) -> dict[str, dict[str, Any]]:
        """Per consumer: messages sent, dropped (stalled edge), stall episodes, stalled now."""
        return {edge.consumer.name: {"sent": edge.sent, "dropped": edge.dropped, "stalls": edge.stalls,
                                     "stalled": edge.stalled} for edge in self._edges}

    def close(self) -> None:
        """Close the sockets.

        After :meth:`end`, the lossless edges get up to :data:`CLOSE_LINGER` seconds in all for
        their consumers to take the last chunks and the end marker (each says so by
        unsubscribing): over ``ipc://`` ZeroMQ drops what a consumer has not read yet once the
        producer's socket is gone, so waiting for the queues to leave this process is not enough.
        Without :meth:`end`, and on latest-only edges (whose consumers want no backlog), what is
        queued is dropped.
        """
        if self._ended:
            self._await_receipts(CLOSE_LINGER)
        if self._flusher is not None:
            self._flusher.close()
            self._flusher = None
        for edge in self._edges:
            edge.link.close(CLOSE_LINGER if self._ended and not edge.latest else 0.0)
            if edge.domain is not None:
                authenticator(self._context).revoke(edge.domain)
                edge.domain = None
        self._edges.clear()
        if self._own_dir is not None:
            self._own_dir.close()
            self._own_dir = None


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


class ZmqInlet:
    """The consumer's end of an edge over ZeroMQ (from another host, or a debug stream): a SUB
    socket, with the interface of :class:`~chimerapy.net.local_link.LocalInlet`."""

    garbage = 0  # (malformed messages are counted by the Subscriber)

    def __init__(self, socket: zmq.Socket) -> None:
        self.socket = socket

    def pollable(self) -> zmq.Socket:
        return self.socket

    def reconnect(self) -> bool:
        return False  # ZeroMQ reconnects by itself

    def buffered(self) -> bool:
        return False

    def read(self, limit: int) -> list[list]:
        """Up to ``limit`` messages that have arrived."""
        messages = []
        for _ in range(limit):
            try:
                messages.append(_receive_frames(self.socket))
            except zmq.Again:
                break
        return messages

    def acknowledge_end(self) -> None:
        self.socket.setsockopt(zmq.UNSUBSCRIBE, b"")  # tells the producer it may close

    def close(self) -> None:
        self.socket.close(linger=0)


class Subscriber:
    """Receives the chunks of a node's inputs and keeps per-edge delivery counters.

    Each input has its own connection, so a message is accepted only from the producer that
    connection was made (and, across hosts, authenticated) to.

    Args:
        context: the process's ZeroMQ context.
        name: the consuming node's name.
        clock: Manager-aligned time, stamped on each received chunk.
        keypair: this node's CURVE keypair, required to connect to a producer on another host.
    """

    def __init__(self, context: zmq.Context, name: str, *, clock: Callable[[], float] = time.time,
                 keypair: Keypair | None = None):
        self.name = name
        self._context = context
        self._clock = clock
        self._keypair = keypair
        self._inlets: dict[str, ZmqInlet | LocalInlet] = {}  # by producer
        self._polled: dict[str, Any] = {}  # by producer: the socket or descriptor in the poller
        self._by_pollable: dict[Any, str] = {}
        self._poller = zmq.Poller()
        self._latest_only: set[str] = set()
        self.edges: dict[str, EdgeStats] = {}
        self._garbage = 0
        self._jpeg: JpegDecoder | None = None  # made when a JPEG frame first arrives
        self._slots = SlotReader(name)

    @property
    def garbage(self) -> int:
        """Messages that were not ChimeraPy data (foreign or garbage frames): counted and dropped."""
        return self._garbage + sum(inlet.garbage for inlet in self._inlets.values())

    def connect(self, producer: str, address: str, *, latest_only: bool = False,
                server_key: str | None = None) -> None:
        """Connect to ``producer``'s edge for this node at ``address``.

        Args:
            server_key: the producer's CURVE public key: the connection is encrypted and only a
                peer holding the matching secret key can complete it. Required by the node
                runtime for every TCP edge; ``ipc://`` edges are authenticated by their folder.
        """
        if producer in self._inlets:
            raise ValueError(f"{self.name} is already connected to {producer!r}")
        if is_ipc(address):
            if server_key is not None:
                raise ValueError(f"{self.name}: {address} is on this host; it takes no CURVE key")
            self._inlets[producer] = LocalInlet(address)
        else:
            self._inlets[producer] = ZmqInlet(self._zmq_socket(producer, address, latest_only, server_key))
        self._repoll(producer)
        self.edges[producer] = EdgeStats()
        if latest_only:
            self._latest_only.add(producer)

    def _zmq_socket(self, producer: str, address: str, latest_only: bool, server_key: str | None) -> zmq.Socket:
        socket = self._context.socket(zmq.SUB)
        socket.setsockopt(zmq.LINGER, 0)
        socket.setsockopt(zmq.RCVHWM, LATEST_HWM if latest_only else LOSSLESS_HWM)
        if server_key is not None:
            if self._keypair is None:
                socket.close()
                raise ValueError(f"{self.name}: connecting to {producer!r} with CURVE needs this node's keypair")
            socket.curve_secretkey = self._keypair.secret.encode("ascii")
            socket.curve_publickey = self._keypair.public.encode("ascii")
            socket.curve_serverkey = server_key.encode("ascii")
        if latest_only:
            # keep draining the connection, holding only the newest message
            socket.setsockopt(zmq.CONFLATE, 1)
        socket.setsockopt(zmq.SUBSCRIBE, b"")
        socket.connect(address)
        return socket

    def _repoll(self, producer: str) -> None:
        """Keep the poller in step with the inlet's socket (a local one changes on reconnect)."""
        inlet = self._inlets[producer]
        current = inlet.pollable()
        previous = self._polled.pop(producer, None)
        if previous is not None:
            self._poller.unregister(previous)
            del self._by_pollable[previous]
        if current is not None:
            self._poller.register(current, zmq.POLLIN)
            self._polled[producer] = current
            self._by_pollable[current] = producer

    @property
    def all_ended(self) -> bool:
        """True once every producer has sent its end marker."""
        return all(edge.ended for edge in self.edges.values())

    def receive(self, timeout: float) -> list[DataChunk]:
        """Wait up to ``timeout`` seconds and return the chunks that arrived, in arrival order.

        On latest-only edges only the newest chunk of each burst is kept.
        """
        return list(self.stream(timeout))

    def _ready(self, timeout: float) -> set[str]:
        """The producers with messages to read, waiting up to ``timeout`` seconds for one."""
        ready, unreachable = set(), False
        for producer, inlet in self._inlets.items():
            if inlet.reconnect():
                self._repoll(producer)
            if inlet.buffered():
                ready.add(producer)
            unreachable = unreachable or producer not in self._polled
        if ready:
            timeout = 0.0
        elif unreachable:  # try again soon: its producer may be listening by then
            timeout = min(timeout, RECONNECT_EVERY)
        events = self._poller.poll(0)
        if not events and timeout > 0:
            # Nothing yet: let a producer that shares this core run first, then look again; a
            # consumer that keeps up is then often not put to sleep and woken for every message.
            os.sched_yield()
            events = self._poller.poll(int(timeout * 1000))
        for pollable, _ in events:
            ready.add(self._by_pollable[pollable])
        return ready

    def stream(self, timeout: float) -> Iterator[DataChunk]:
        """Like :meth:`receive`, but yields each chunk as soon as it is decoded, so that a node
        stepping on it lets go of its shared-memory buffers before the next one is mapped."""
        ready = self._ready(timeout)
        for producer, inlet in list(self._inlets.items()):
            if producer not in ready:
                continue
            latest = producer in self._latest_only
            newest: DataChunk | None = None
            messages = inlet.read(1024 if latest else LOSSLESS_HWM)  # a bounded batch; the rest stays queued
            if self._polled.get(producer) != inlet.pollable():
                self._repoll(producer)  # its producer went away: reconnect later
            for frames in messages:
                if latest:
                    try:
                        frames = wire.unpack(frames[0])
                    except ProtocolError:
                        self._garbage += 1
                        continue
                chunk = self._accept(frames, producer)
                if chunk is None:
                    continue
                if not latest:
                    yield chunk
                    continue
                if newest is not None:  # an older chunk of this burst: skipped by design
                    self.edges[producer].received -= 1
                    self.edges[producer].skipped += 1
                newest = chunk
            if newest is not None:
                yield newest

    def _decode_jpeg(self, data: memoryview):
        if self._jpeg is None:
            from .jpeg import JpegDecoder

            self._jpeg = JpegDecoder()
        return self._jpeg.decode(data)

    def _accept(self, frames: list, producer: str) -> DataChunk | None:
        try:
            message = wire.decode(frames, image_decoder=self._decode_jpeg, shm_view=self._slots.view,
                                  consumer=self.name, expected_producer=producer)
        except ProtocolError as error:
            self._garbage += 1
            log.debug("%s: dropped a malformed message: %s", self.name, error)
            return None
        edge = self.edges.get(message.producer)
        if edge is None or message.producer != producer:  # only the producer of this connection
            self._garbage += 1
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
            self._inlets[producer].acknowledge_end()  # the producer may close now
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
        """Close every connection."""
        for inlet in self._inlets.values():
            inlet.close()
        self._inlets.clear()
        self._polled.clear()
        self._by_pollable.clear()
