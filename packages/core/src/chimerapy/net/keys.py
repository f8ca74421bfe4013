"""Session keys for the data plane: ZeroMQ CURVE keypairs and the ZAP check of who may subscribe.

At commit the Manager makes one CURVE keypair per node (:func:`node_keypairs`) and sends each
node, over the authenticated control plane, its own keypair, the public keys of the consumers it
may serve and, for each input, the public key of its producer. Across hosts a publisher's socket
is a CURVE server whose ZAP domain admits exactly one client key (that edge's consumer), and a
subscriber is a CURVE client that pins its producer's public key: no process without the
session's keys can publish to, subscribe to or pose as a node, and the frames are encrypted.

:class:`Authenticator` is the ZAP handler of one ZeroMQ context: a thread answering libzmq's
authentication requests (RFC 27) from an allow-list per domain. It runs while some socket needs
it and is stopped when the last one is closed, so that ``Context.term()`` never waits for it.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
import weakref
from dataclasses import dataclass

import zmq
from zmq.utils import z85

from ..errors import CommitError

__all__ = ["Authenticator", "Keypair", "authenticator", "new_keypair", "node_keypairs", "require_curve"]

log = logging.getLogger(__name__)

ZAP_ENDPOINT = "inproc://zeromq.zap.01"
_POLL_MS = 100


@dataclass(frozen=True)
class Keypair:
    """A CURVE keypair in Z85 text (40 characters each). ``secret`` must never be logged."""

    public: str
    secret: str

    def __repr__(self) -> str:  # keeps the secret out of logs and tracebacks
        return f"Keypair(public={self.public!r}, secret=...)"


def require_curve() -> None:
    """Raise unless this pyzmq's libzmq can do CURVE (the wheels on PyPI can)."""
    if not zmq.has("curve"):
        raise CommitError(
            "this pyzmq's libzmq has no CURVE security, which the data plane needs; "
            "install pyzmq from its PyPI wheels (pip install --force-reinstall pyzmq)"
        )


def new_keypair() -> Keypair:
    """A fresh CURVE keypair."""
    require_curve()
    public, secret = zmq.curve_keypair()
    return Keypair(public.decode("ascii"), secret.decode("ascii"))


def node_keypairs(names: list[str]) -> dict[str, Keypair]:
    """One fresh keypair per node of a session."""
    return {name: new_keypair() for name in names}


class Authenticator:
    """The ZAP handler of one context: admits CURVE clients whose key the domain allows.

    Args:
        context: the ZeroMQ context whose CURVE servers ask this handler.
    """

    def __init__(self, context: zmq.Context) -> None:
        self._context = context
        self._allowed: dict[bytes, frozenset[bytes]] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._serving = False
        #: Refused handshakes, by domain (a wrong key, or a client the session never named).
        self.refused: dict[str, int] = {}

    def allow(self, client_keys: list[str]) -> str:
        """Open a new domain admitting exactly ``client_keys`` (Z85 public keys); returns it for
        ``socket.zap_domain``. The handler runs from the first domain on."""
        domain = f"chimerapy-{uuid.uuid4().hex}"
        keys = frozenset(z85.decode(key.encode("ascii")) for key in client_keys)
        with self._lock:
            self._allowed[domain.encode()] = keys
            if self._thread is None:
                self._stop.clear()
                self._ready.clear()
                self._thread = threading.Thread(target=self._serve, name="chimerapy-zap", daemon=True)
                self._thread.start()
                started = True
            else:
                started = False
        if started:
            self._ready.wait(10.0)
        if not self._serving:  # fail closed: without a handler libzmq would admit any client key
            self.revoke(domain)
            raise CommitError("cannot start the data plane's authentication handler "
                              f"({ZAP_ENDPOINT} is taken in this ZeroMQ context); nothing was bound")
        return domain

    def revoke(self, domain: str) -> None:
        """Close ``domain``; the handler stops when no domain is left."""
        with self._lock:
            self._allowed.pop(domain.encode(), None)
            thread = self._thread if not self._allowed else None
            if thread is not None:
                self._thread = None
                self._stop.set()
        if thread is not None and thread is not threading.current_thread():
            thread.join(5.0)

    def _serve(self) -> None:
        socket = self._context.socket(zmq.REP)
        socket.setsockopt(zmq.LINGER, 0)
        for attempt in range(50):  # a handler closed a moment ago may still hold the endpoint
            try:
                socket.bind(ZAP_ENDPOINT)
                break
            except zmq.ZMQError as error:
                if error.errno != zmq.EADDRINUSE or attempt == 49:
                    log.error("cannot serve ZeroMQ authentication: %s", error)
                    socket.close()
                    self._serving = False
                    self._ready.set()
                    return
                time.sleep(0.05)
        self._serving = True
        self._ready.set()
        try:
            while not self._stop.is_set():
                if socket.poll(_POLL_MS, zmq.POLLIN):
                    socket.send_multipart(self._answer(socket.recv_multipart()))
        finally:
            self._serving = False
            socket.close(linger=0)

    def _answer(self, request: list[bytes]) -> list[bytes]:
        """The reply to one ZAP request: 200 for an allowed CURVE client key, 400 otherwise."""
        if len(request) < 6:
            return [b"1.0", b"", b"500", b"malformed ZAP request", b"", b""]
        version, request_id, domain, _address, _identity, mechanism = request[:6]
        credentials = request[6:]
        with self._lock:
            allowed = self._allowed.get(domain, frozenset())
        if version == b"1.0" and mechanism == b"CURVE" and credentials and credentials[0] in allowed:
            return [b"1.0", request_id, b"200", b"OK", z85.encode(credentials[0]), b""]
        name = domain.decode(errors="replace")
        self.refused[name] = self.refused.get(name, 0) + 1
        log.warning("refused a data-plane connection without a session key (mechanism %s)",
                    mechanism.decode(errors="replace"))
        return [b"1.0", request_id, b"400", b"not a key of this session", b"", b""]


_AUTHENTICATORS: weakref.WeakKeyDictionary[zmq.Context, Authenticator] = weakref.WeakKeyDictionary()
_AUTHENTICATORS_LOCK = threading.Lock()


def authenticator(context: zmq.Context) -> Authenticator:
    """The one :class:`Authenticator` of ``context`` (made on first use)."""
    with _AUTHENTICATORS_LOCK:
        handler = _AUTHENTICATORS.get(context)
        if handler is None:
            handler = _AUTHENTICATORS[context] = Authenticator(context)
        return handler
