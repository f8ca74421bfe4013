"""The Manager's HTTP server: the Workers' WebSocket endpoint and the registry of connected Workers.

A Worker connects to ``/ws/worker`` over TLS, proves it holds the cluster token and checks the
Manager's proof (:mod:`chimerapy.net.handshake`, bound to the certificate's fingerprint), registers
(name, id, address, versions) and then keeps the socket open: the Manager sends requests (create, connect, start, stop ...) and the Worker sends
replies, clock probes and events (node states, errors, stats, logs).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from ..errors import ProtocolError, WorkerLostError
from ..names import RULE, name_problem
from ..net import auth, control, handshake
from ..net.control import Envelope, Requests

__all__ = ["ManagerServer", "WorkerLink"]

log = logging.getLogger(__name__)

REGISTER_TIMEOUT = 10.0
#: A Worker silent this long (it probes the clock every second) is marked lost.
LOST_AFTER = 3.5
#: Paths served without a bearer token: the dashboard's login page and its assets, and the Workers'
#: socket, whose peers prove the token in-band instead of sending it.
PUBLIC_PATHS = ("/login", "/assets/", "/ws/worker")


@dataclass
class WorkerLink:
    """A connected Worker, as the Manager sees it."""

    name: str
    id: str
    info: dict[str, Any]
    ws: web.WebSocketResponse
    requests: Requests = field(default_factory=Requests)
    last_seen: float = field(default_factory=time.monotonic)
    connected: bool = True
    silent: bool = False  # marked lost by the heartbeat watchdog
    leaving: bool = False  # told to shut down: its silence is expected, not a loss

    async def request(self, kind: str, data: dict[str, Any] | None = None, *, timeout: float = 30.0) -> Envelope:
        """Send a request and await the reply (raises WorkerLostError, TimeoutError)."""
        if not self.connected or self.ws.closed:
            raise WorkerLostError(f"Worker {self.name!r} is not connected", worker=self.name)
        envelope, future = self.requests.new(kind, data)
        await self.ws.send_str(control.encode(envelope))
        try:
            return await asyncio.wait_for(future, timeout)
        except asyncio.TimeoutError:
            self.requests.forget(envelope.id)
            raise TimeoutError(f"Worker {self.name!r} did not answer {kind!r} within {timeout} s") from None


EventHandler = Callable[[WorkerLink, Envelope], Awaitable[None]]


class ManagerServer:
    """Serves the Workers' endpoint; ``on_event`` gets every Worker event.

    Args:
        max_workers: the most Workers that may be connected at once.
        on_event: awaited for each event (stats, node_state, node_error, log) from a Worker.
        on_change: called when a Worker connects or disconnects.
        welcome: called with a newly registered Worker; what it returns is added to the reply
            (e.g. whether a Worker that comes back keeps its running nodes).
    """

    def __init__(self, *, token: str, max_workers: int, on_event: EventHandler,
                 on_change: Callable[[WorkerLink, bool], None], ssl_context: ssl.SSLContext | None = None,
                 fingerprint: str = "", welcome: Callable[[WorkerLink], dict[str, Any]] | None = None):
        self.max_workers = max_workers
        self._token = token
        self._ssl_context = ssl_context
        #: The fingerprint of the certificate served, which the token proofs are bound to.
        self.fingerprint = fingerprint
        self.workers: dict[str, WorkerLink] = {}
        self._on_event = on_event
        self._on_change = on_change
        #: One-time codes that sign a browser in to the dashboard (``/?code=...``).
        self.login_codes = auth.LoginCodes()
        self._welcome = welcome
        self.app = web.Application(client_max_size=control.MAX_MESSAGE_BYTES,
                                   middlewares=[auth.middleware(token, public=PUBLIC_PATHS, login_path="/login",
                                                                codes=self.login_codes)])
        self.app.router.add_get("/ws/worker", self._worker_socket)
        self.app.router.add_post("/login", auth.login_handler(lambda: token))
        self._runner: web.AppRunner | None = None
        self.host = ""
        self.port = 0
        self.changed = asyncio.Condition()
        self._watchdog: asyncio.Task | None = None
        #: Names of Workers marked lost (silent or disconnected mid-session), with the time.
        self.lost: dict[str, float] = {}

    async def start(self, host: str, port: int) -> None:
        """Listen on ``host:port``; if the port is taken, on a free one (see :attr:`port`)."""
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        for candidate in ([port, 0] if port else [0]):
            site = web.TCPSite(self._runner, host, candidate, ssl_context=self._ssl_context)
            try:
                await site.start()
            except OSError as error:
                log.info("Manager: port %s unavailable (%s); using a free port", candidate, error)
                continue
            self.host, self.port = host, self._runner.addresses[-1][1]
            self._watchdog = asyncio.create_task(self._watch_heartbeats())
            return
        raise OSError("Manager: no port available")

    async def _watch_heartbeats(self) -> None:
        """Mark Workers lost that stopped talking (a dead process, a cut cable)."""
        while True:
            await asyncio.sleep(0.5)
            now = time.monotonic()
            for link in list(self.workers.values()):
                if link.connected and not link.leaving and now - link.last_seen > LOST_AFTER:
                    log.error("Worker %s is lost: silent for %.1f s", link.name, now - link.last_seen)
                    link.connected, link.silent = False, True
                    asyncio.create_task(link.ws.close())

    async def close(self) -> None:
        """Close every Worker socket and the server."""
        if self._watchdog is not None:
            self._watchdog.cancel()
        for link in list(self.workers.values()):
            link.connected = False
            await link.ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _worker_socket(self, request: web.Request) -> web.WebSocketResponse:
        # a short close timeout: a lost Worker cannot answer the close handshake
        ws = web.WebSocketResponse(heartbeat=5.0, timeout=2.0, max_msg_size=control.MAX_MESSAGE_BYTES)
        await ws.prepare(request)
        link = await self._register(ws, request)
        if link is None:
            await ws.close()
            return ws
        try:
            await self._serve(link)
        finally:
            if link.silent or ws.close_code not in (1000, 1001):
                self.lost[link.name] = time.time()
            link.connected = False
            link.requests.fail_all(WorkerLostError(f"Worker {link.name!r} disconnected", worker=link.name))
            if self.workers.get(link.name) is link:
                del self.workers[link.name]
            self._on_change(link, False)
            async with self.changed:
                self.changed.notify_all()
        return ws

    async def _receive(self, ws: web.WebSocketResponse, request: web.Request, expected: str) -> Envelope | None:
        """The next message, which must be of type ``expected`` (None, answered with the reason, if not)."""
        try:
            message = await ws.receive(timeout=REGISTER_TIMEOUT)
        except asyncio.TimeoutError:
            log.warning("a client at %s did not send %r in time", request.remote, expected)
            return None
        if message.type != WSMsgType.TEXT:
            return None
        try:
            envelope = control.decode(message.data)
            if envelope.type != expected:
                raise ProtocolError(f"expected {expected!r}, got {envelope.type!r}")
        except ProtocolError as error:
            await ws.send_str(control.encode(_refusal(str(error))))
            return None
        return envelope

    async def _authenticate(self, ws: web.WebSocketResponse, request: web.Request) -> bool:
        """Run the token proof (see :mod:`chimerapy.net.handshake`): prove first, then check the Worker's."""
        hello = await self._receive(ws, request, "auth_hello")
        if hello is None:
            return False
        binding = {"fingerprint": self.fingerprint, "worker_nonce": str(hello.data["nonce"]),
                   "manager_nonce": handshake.new_nonce()}
        try:
            mine = handshake.proof(self._token, role="manager", **binding)
        except ValueError as error:
            await ws.send_str(control.encode(_refusal(f"auth_hello: {error}")))
            return False
        await ws.send_str(control.encode(Envelope("auth_challenge", {"nonce": binding["manager_nonce"],
                                                                     "proof": mine})))
        answer = await self._receive(ws, request, "auth_proof")
        if answer is None:
            return False
        if not handshake.verify(self._token, answer.data["proof"], role="worker", **binding):
            log.warning("refused a client at %s: it could not prove it holds the cluster token", request.remote)
            await ws.send_str(control.encode(_refusal(
                "refused: the proof of the cluster token is wrong; pass the Manager's token "
                "(CHIMERAPY_TOKEN or cp-worker --token-file)")))
            return False
        return True

    async def _register(self, ws: web.WebSocketResponse, request: web.Request) -> WorkerLink | None:
        if not await self._authenticate(ws, request):
            return None
        envelope = await self._receive(ws, request, "register")
        if envelope is None:
            return None
        name = str(envelope.data.get("name"))
        problem = None
        rule = name_problem(name)
        if rule is not None:  # a name becomes the Worker's folder in the archive: checked here too
            problem = f"Worker name {name!r} is refused: {rule.reason}; {RULE}"
        elif name in self.workers:
            problem = f"a Worker named {name!r} is already connected; give each Worker a unique name"
        elif len(self.workers) >= self.max_workers:
            problem = f"the Manager accepts at most {self.max_workers} Workers (max_num_of_workers)"
        if problem:
            await ws.send_str(control.encode(envelope.fail(problem)))
            log.warning("refused Worker %s: %s", name, problem)
            return None
        link = WorkerLink(name, str(envelope.data["id"]), dict(envelope.data), ws)
        self.workers[name] = link
        self.lost.pop(name, None)
        extra = self._welcome(link) if self._welcome is not None else {}
        await ws.send_str(control.encode(envelope.reply({"manager_time": time.time(), **extra})))
        log.info("Worker %s registered from %s", name, envelope.data.get("host"))
        self._on_change(link, True)
        async with self.changed:
            self.changed.notify_all()
        return link

    async def _serve(self, link: WorkerLink) -> None:
        async for message in link.ws:
            if message.type != WSMsgType.TEXT:
                continue
            link.last_seen = time.monotonic()
            try:
                envelope = control.decode(message.data)
            except ProtocolError as error:
                log.warning("Worker %s sent a malformed message: %s", link.name, error)
                continue
            if envelope.type == "reply":
                link.requests.resolve(envelope)
            elif envelope.type == "clock_probe":
                await link.ws.send_str(control.encode(envelope.reply({"manager": time.time()})))
            elif envelope.id is not None:
                await link.ws.send_str(control.encode(envelope.fail(f"unexpected request {envelope.type!r}")))
            else:
                try:
                    await self._on_event(link, envelope)
                except Exception:
                    log.exception("handling %s from Worker %s failed", envelope.type, link.name)


def _refusal(reason: str) -> Envelope:
    """The reply that ends a connection refused before it registered."""
    return Envelope("reply", reply_to=0, ok=False, error=reason)
