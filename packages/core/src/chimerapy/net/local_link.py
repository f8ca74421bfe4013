"""Same-host edges without ZeroMQ: one Unix stream socket per edge, in the Worker's private folder.

The producer listens at an ``ipc://`` path in a private (0700) folder, so only this user can
connect or bind there (:mod:`chimerapy.net.endpoints`); each side also checks that its peer runs
as this user (``SO_PEERCRED``) before it trusts a byte. A message travels as an 8-byte length
followed by its frames laid out as :func:`chimerapy.net.wire.pack` does, written with one
scatter-gather ``sendmsg`` (the frames are not copied in user space). The consumer's thread is
woken by the kernel directly: ZeroMQ would add an I/O thread on each side, two more wake-ups per
message, which on a 2-core machine cost both CPU and latency.

A message too large for the socket's buffer goes out in parts: a :class:`Flusher` thread writes
the rest as the consumer makes room (as ZeroMQ's I/O thread would), so it does not wait for the
producer's next message; meanwhile the edge counts as full.

The consumer writes one byte back: ``\\x00`` once it has taken its producer's end marker, so
that the producer may close without dropping what is still queued (see
:meth:`LocalOutlet.done`).
"""

from __future__ import annotations

import errno
import os
import select
import socket
import stat
import struct
import threading
import time

from ..errors import ProtocolError
from . import wire
from .endpoints import ipc_path

__all__ = ["Flusher", "LocalInlet", "LocalOutlet"]

_LENGTH = struct.Struct("<Q")
#: The largest message accepted (a bigger length is garbage, not data).
MAX_MESSAGE = 1 << 32
#: Messages up to this size are gathered in the read buffer; larger ones get a buffer of their own.
SMALL_MESSAGE = 64 * 1024
_READ_SIZE = 256 * 1024
#: Seconds between attempts to reach a producer that is not listening (yet, or again).
RECONNECT_EVERY = 0.02
_SEND_FLAGS = socket.MSG_NOSIGNAL
_ENDED = b"\x00"


def _same_user(peer: socket.socket) -> bool:
    """True if the process at the other end of ``peer`` runs as this user."""
    creds = peer.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", creds)
    return uid == os.geteuid()


class LocalOutlet:
    """The producer's end of one same-host edge: it listens, takes one consumer, sends to it.

    :meth:`send` never blocks: it returns False when the consumer's queue (the socket's buffer)
    is full, the backpressure signal. A message partly written stays queued here and goes out
    first; the edge counts as full until it has.
    """

    def __init__(self, address: str, flusher: Flusher | None = None) -> None:
        path = ipc_path(address)
        try:  # a predecessor's socket (a restarted node binds the same path); nothing else
            if stat.S_ISSOCK(os.lstat(path).st_mode):
                os.unlink(path)
        except FileNotFoundError:
            pass
        self.address = address
        self._path = path
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_NONBLOCK)
        try:
            self._listener.bind(path)
            self._listener.listen(8)
            info = os.lstat(path)
        except OSError:
            self._listener.close()
            raise
        self._identity = (info.st_dev, info.st_ino)
        self._peer: socket.socket | None = None
        self._unsent: list[memoryview] = []  # the rest of a message partly written
        self._flusher = flusher  # writes that rest (without one: the next send or done() does)
        self._ended = False

    def joined(self) -> bool:
        """True once a consumer is connected."""
        return self._connected() is not None

    def send(self, frames: list) -> bool:
        """Queue one message; False (nothing queued) while the consumer's queue is full.

        With no consumer connected the message goes nowhere, as with a publisher that has no
        subscriber: a consumer that (re)connects sees the gap in the sequence numbers.
        """
        if self._unsent and not self.flush():
            return False
        views = [wire.as_bytes_view(frame) for frame in frames]
        head = wire.pack_head(views)
        body = len(head) + sum(len(view) for view in views)
        buffers = [memoryview(_LENGTH.pack(body) + head), *views]
        for _attempt in range(2):  # once more after a consumer that went away
            peer = self._connected()
            if peer is None:
                return True
            try:
                written = peer.sendmsg(buffers, (), _SEND_FLAGS)
            except BlockingIOError:
                return False
            except OSError as error:
                if error.errno not in (errno.EPIPE, errno.ECONNRESET, errno.ENOTCONN):
                    raise
                self._forget_peer()
                continue
            self._unsent = _after(buffers, written)
            if self._unsent and self._flusher is not None:
                self._flusher.hand(self)
            return True
        return True

    def done(self) -> bool:
        """True once the consumer took everything, end marker included, or is gone (checked
        without blocking; call it after the end marker was sent)."""
        if self._unsent and not self.flush():
            return False
        peer = self._peer
        if peer is None or self._ended:
            return True
        try:
            data = peer.recv(64)
        except BlockingIOError:
            return False
        except OSError:
            data = b""
        self._ended = not data or _ENDED in data
        return self._ended

    def close(self, linger: float = 0.0) -> None:
        """Close the edge and remove its path (unless a successor already listens there).

        What the socket holds stays readable by the consumer: only a message still partly
        unwritten here is lost, which :meth:`done` waits for (``linger`` is for the ZeroMQ
        outlet's sake)."""
        self._forget_peer()
        if self._listener.fileno() < 0:
            return  # closed before
        self._listener.close()
        try:
            info = os.lstat(self._path)
            if (info.st_dev, info.st_ino) == self._identity:
                os.unlink(self._path)
        except FileNotFoundError:
            pass

    def _connected(self) -> socket.socket | None:
        """The consumer's connection; without one, the newest waiting (a restarted consumer's:
        older ones are from its predecessors)."""
        if self._peer is not None:
            return self._peer
        while True:
            try:
                peer, _ = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return self._peer
            if not _same_user(peer):
                peer.close()
                continue
            if self._peer is not None:
                self._peer.close()
            peer.setblocking(False)
            self._peer, self._ended = peer, False

    def _forget_peer(self) -> None:
        if self._peer is not None:
            self._peer.close()
        self._peer, self._unsent = None, []

    def flush(self) -> bool:
        """Write more of a partly written message; True once it is all out."""
        if self._flusher is not None:
            return not self._unsent  # its thread writes the rest
        return self.write_rest()

    def write_rest(self) -> bool:
        """Write what the consumer has room for of a partly written message; True once it is all
        out (called by one thread only: the producer's, or the :class:`Flusher`'s)."""
        peer = self._peer
        if peer is None:
            self._unsent = []
            return True
        try:
            written = peer.sendmsg(self._unsent, (), _SEND_FLAGS)
        except BlockingIOError:
            return False
        except OSError:
            self._forget_peer()
            return True
        self._unsent = _after(self._unsent, written)  # set last: the producer's thread looks at it
        return not self._unsent

    def peer_fd(self) -> int | None:
        """The consumer's connection, None without one."""
        return self._peer.fileno() if self._peer is not None else None

    def room_fd(self) -> int | None:
        """The connection to wait on for room (``POLLOUT``): None without a consumer, or while a
        message is still partly unwritten (room then is not enough)."""
        return None if self._unsent else self.peer_fd()


class Flusher:
    """A thread that writes the rest of partly written messages as their consumers make room.

    It starts, with the pipe that wakes it, when first needed (small messages never need it)
    and sleeps in ``poll`` until a consumer's socket has room or an outlet is handed over.
    """

    def __init__(self) -> None:
        self._waiting: set[LocalOutlet] = set()
        self._lock = threading.Lock()
        self._wake_read = self._wake_write = -1  # made with the thread
        self._thread: threading.Thread | None = None
        self._closed = False

    def hand(self, outlet: LocalOutlet) -> None:
        """Write the rest of ``outlet``'s message (its producer's thread leaves it alone until
        :meth:`LocalOutlet.flush` is True)."""
        with self._lock:
            if self._closed:
                return
            self._waiting.add(outlet)
            if self._thread is None:
                self._wake_read, self._wake_write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
                self._thread = threading.Thread(target=self._run, name="chimerapy-flusher", daemon=True)
                self._thread.start()
        self._wake()

    def close(self) -> None:
        """Stop the thread (what it had not written yet stays unwritten)."""
        with self._lock:
            self._closed = True
            thread = self._thread
        if thread is None:
            return
        self._wake()
        thread.join(5)
        os.close(self._wake_read)
        os.close(self._wake_write)

    def _wake(self) -> None:
        if self._wake_write < 0:
            return
        try:
            os.write(self._wake_write, b"!")
        except BlockingIOError:
            pass  # already woken

    def _run(self) -> None:
        while not self._closed:
            with self._lock:
                outlets = list(self._waiting)
            poller = select.poll()
            poller.register(self._wake_read, select.POLLIN)
            for outlet in outlets:
                fd = outlet.peer_fd()
                if fd is not None:
                    poller.register(fd, select.POLLOUT)
            poller.poll(1000 if outlets else None)
            try:
                os.read(self._wake_read, 4096)
            except BlockingIOError:
                pass
            for outlet in outlets:
                if not self._closed and outlet.write_rest():
                    with self._lock:
                        self._waiting.discard(outlet)


def _after(buffers: list[memoryview], written: int) -> list[memoryview]:
    """What is left of ``buffers`` once their first ``written`` bytes are out."""
    for index, view in enumerate(buffers):
        if written < len(view):
            return [view[written:], *buffers[index + 1:]]
        written -= len(view)
    return []


class LocalInlet:
    """The consumer's end of one same-host edge: it connects (and reconnects, when its producer
    is restarted) and reads whole messages without blocking."""

    def __init__(self, address: str) -> None:
        self.address = address
        self._path = ipc_path(address)
        self._socket: socket.socket | None = None
        self._next_try = 0.0
        self._store = memoryview(bytearray(_READ_SIZE))  # received bytes: [_start, _end) unread
        self._start = self._end = 0
        self._large: bytearray | None = None  # a large message being filled
        self._filled = 0
        self.garbage = 0  # connections dropped for a malformed length
        self.reconnect()

    def pollable(self) -> int | None:
        """The connection's descriptor to wait on, None while not connected."""
        return self._socket.fileno() if self._socket is not None else None

    def reconnect(self) -> bool:
        """Try to connect if not connected (at most every :data:`RECONNECT_EVERY` s); True if
        the descriptor changed."""
        if self._socket is not None or time.monotonic() < self._next_try:
            return False
        self._next_try = time.monotonic() + RECONNECT_EVERY
        connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_NONBLOCK)
        try:  # (a full backlog fails at once: tried again later)
            connection.connect(self._path)
            if not _same_user(connection):
                raise ConnectionRefusedError(f"{self._path} is served by another user")
        except OSError:
            connection.close()
            return False
        self._socket = connection
        return True

    def read(self, limit: int) -> list[list[memoryview]]:
        """Up to ``limit`` whole messages (each a list of frames) from what has arrived."""
        messages: list[list[memoryview]] = []
        while len(messages) < limit and self._socket is not None:
            message = self._next()
            if message is None:
                break
            if message:  # (an empty one was malformed: counted, skipped)
                messages.append(message)
        return messages

    def buffered(self) -> bool:
        """True if a whole message is already read and waiting here."""
        if self._end - self._start < _LENGTH.size or self._large is not None:
            return False
        (length,) = _LENGTH.unpack_from(self._store, self._start)
        return self._end - self._start >= _LENGTH.size + length

    def acknowledge_end(self) -> None:
        """Tell the producer that its end marker arrived (it may close now)."""
        if self._socket is not None:
            try:
                self._socket.send(_ENDED, _SEND_FLAGS)
            except OSError:
                pass

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
        self._socket = None
        self._start = self._end = 0
        self._large = None

    def _next(self) -> list[memoryview] | None:
        """The next whole message, reading what is needed; None if it has not all arrived."""
        if self._large is not None:
            return self._fill_large()
        while self._end - self._start < _LENGTH.size or self._short_of_small():
            if not self._receive():
                return None
        (length,) = _LENGTH.unpack_from(self._store, self._start)
        if length > MAX_MESSAGE:
            self.garbage += 1
            self._disconnect()
            return None
        begin = self._start + _LENGTH.size
        if length > SMALL_MESSAGE:  # a buffer of its own: its frames are views of it
            self._large = bytearray(length)
            have = min(self._end - begin, length)
            self._large[:have] = self._store[begin:begin + have]
            self._filled = have
            self._start = begin + have
            return self._fill_large()
        body = self._store[begin:begin + length].tobytes()  # the frames outlive the buffer's reuse
        self._start = begin + length
        return self._unpack(body)

    def _short_of_small(self) -> bool:
        """True if the buffer holds a small message's length but not yet all of the message."""
        (length,) = _LENGTH.unpack_from(self._store, self._start)
        return length <= SMALL_MESSAGE and self._end - self._start < _LENGTH.size + length

    def _fill_large(self) -> list[memoryview] | None:
        large = self._large
        assert large is not None and self._socket is not None
        view = memoryview(large)
        while self._filled < len(large):
            try:
                count = self._socket.recv_into(view[self._filled:])
            except BlockingIOError:
                return None
            except OSError:
                count = 0
            if count == 0:
                self._disconnect()
                return None
            self._filled += count
        self._large = None
        return self._unpack(large)

    def _receive(self) -> bool:
        """Read what has arrived into the buffer; False if nothing had (or the producer left)."""
        assert self._socket is not None
        if self._start == self._end:
            self._start = self._end = 0
        elif self._end == len(self._store):  # full: move the unread part to the front
            unread = self._end - self._start
            self._store[:unread] = self._store[self._start:self._end].tobytes()
            self._start, self._end = 0, unread
        try:
            count = self._socket.recv_into(self._store[self._end:])
        except BlockingIOError:
            return False
        except OSError:
            count = 0
        if not count:  # the producer closed or died: it may be restarted at the same path
            self._disconnect()
            return False
        self._end += count
        return True

    def _unpack(self, body: bytes | bytearray) -> list[memoryview]:
        try:
            return wire.unpack(body)
        except ProtocolError:
            self.garbage += 1
            return []

    def _disconnect(self) -> None:
        self.close()
        self._next_try = 0.0
