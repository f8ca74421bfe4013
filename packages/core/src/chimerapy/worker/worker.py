"""Worker: hosts node processes on one computer and takes its orders from the Manager."""

from __future__ import annotations

import asyncio
import base64
import importlib.metadata
import logging
import os
import platform
import secrets
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp import web

from .. import shipping
from ..__about__ import __version__
from ..clock import ClockEstimator, ClockSample
from ..errors import AuthenticationError, ProtocolError
from ..loop_thread import LoopThread
from ..names import check_name
from ..net import auth, control, tls
from ..net.control import Envelope, Requests
from ..node import last_output
from .files import PACKAGES, FileStore
from .join import open_manager_socket
from .resources import ResourceMeter
from .scratch import claim_scratch
from .slow_steps import named_if_slow
from .supervisor import NodeProcess, NodeSupervisor

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["Worker"]

log = logging.getLogger(__name__)

PROBE_INTERVAL = 1.0
INITIAL_PROBES = 8
LOST_AFTER_PROBES = 2  # consecutive unanswered probes (5 s each) after which the Manager is lost
#: Events kept while the Manager is away (sent when it is back), and how many at most.
KEPT_WHILE_AWAY = frozenset({"node_error", "node_state"})
MAX_KEPT_EVENTS = 1000


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[:100]


def host_key() -> str:
    """Identifies this host, network namespace and user: nodes with equal keys share memory and
    ``ipc://`` endpoints (Workers of different users on one host talk as if on two hosts)."""
    try:
        netns = os.readlink("/proc/self/ns/net")
    except OSError:
        netns = ""
    try:
        machine = Path("/etc/machine-id").read_text().strip()
    except OSError:
        machine = ""
    return f"{socket.gethostname()}|{machine}|{netns}|{os.geteuid()}"


class Worker:
    """Hosts nodes on this computer for a Manager.

    To run nodes on another computer, start a Worker there from its terminal::

        cp-worker --ip <manager's IP> --port <manager's port> --name <name> --fingerprint sha256:... \
            --token-file <copy of the Manager's token file>

    Args:
        name: the Worker's name, used in mappings; unique within a cluster; it follows the name
            rule of :mod:`chimerapy.names` (else :class:`~chimerapy.errors.InvalidNameError`).
        port: the port of the Worker's HTTP server (file transfers); if taken, a free one is
            used. 0 picks a free port. The port in use is :attr:`port`.
        delete_temp: delete the Worker's temporary recordings once the Manager has them.
        id: a fixed id (default: a random one).
    """

    def __init__(self, name: str, port: int = 10000, delete_temp: bool = True, id: str | None = None):
        check_name("Worker", name)
        self.name = name
        self.id = id or uuid.uuid4().hex[:12]
        self.delete_temp = delete_temp
        #: Recordings live here until the Manager confirms it has them; a Worker that restarts
        #: under this name gets the same folder, so it still has them to give (while it runs, a
        #: second Worker of the name gets a folder of its own). Private: 0700 in this user's 0700
        #: base; one another user made is refused.
        self._scratch = claim_scratch(name)
        self.tempdir = self._scratch.folder
        #: After losing the Manager, keep trying to reconnect for this many seconds (0: never).
        self.reconnect_timeout = 120.0
        self.host = "127.0.0.1"
        self.port = 0
        self.manager_address: tuple[str, int] | None = None
        self.clock = ClockEstimator()
        #: CPU and memory of this Worker and its node processes, sent with the node statistics.
        self.resources = ResourceMeter()
        self._ws: aiohttp.ClientWebSocketResponse[bool] | None = None
        self._http: aiohttp.ClientSession | None = None
        self._requests = Requests()
        self._tasks: list[asyncio.Task] = []
        self._bind_host = "127.0.0.1"
        self._shut = False
        self._shut_down = threading.Event()  # set once shutdown() has finished
        self._ended = threading.Event()
        self._token: str | None = None
        #: The Manager certificate's fingerprint this Worker trusts (given, or proven on first join).
        self._pin: str | None = None
        #: What the Manager presents to fetch recordings (it is handed over the authenticated socket).
        self._files_key = secrets.token_urlsafe(24)
        self._files_ssl, self._files_fingerprint = tls.ephemeral_server_context(f"chimerapy-worker-{_safe(name)}")
        self._run_mode: str | None = None  # "start" or "step" while the nodes run
        self._recording = True  # False while the nodes preview (their save_* calls only counted)
        self._session = ""
        self._resumed = False
        self._ending: asyncio.Task | None = None  # nodes being ended for a Manager that did not resume
        #: Node errors and states that happened while no Manager was connected.
        self._away_events: list[tuple[str, dict[str, Any]]] = []
        self._final_outputs: dict[str, str | None] = {}  # node name -> its last output's file once ended
        self._loop = LoopThread(f"chimerapy-worker-{name}")
        self.supervisor = NodeSupervisor(self._on_node_event)
        self.files = FileStore(self.tempdir)
        #: Shipped packages this Worker holds: content hash -> the folder on node PYTHONPATHs.
        self.packages: dict[str, Path] = {}
        self._session_packages: list[str] = []
        self._runner: web.AppRunner | None = None
        try:
            self._loop.run(self._setup(port), timeout=30)
        except BaseException:
            self._loop.stop()
            self._scratch.release()
            raise

    # -- public API ------------------------------------------------------------------------------

    def connect(self, host: str, port: int, timeout: float = 10.0, *, token: str | None = None,
                fingerprint: str | None = None) -> bool:
        """Connect to the Manager at ``host:port`` over TLS, prove the token, and register.

        ``token`` is the cluster's secret (never sent: both sides prove they hold it); by default
        that of a Manager in this process, else ``$CHIMERAPY_TOKEN``. ``fingerprint`` pins the
        Manager's certificate (``sha256:...``, printed by the Manager); by default that of a
        Manager in this process, else the certificate proven at the first join is pinned for
        every reconnection.

        Returns:
            True when registered; False (with a logged reason naming the address) otherwise.
        """
        if self._shut:
            raise RuntimeError(f"Worker {self.name!r} was shut down; create a new Worker")
        pin = tls.parse_fingerprint(fingerprint) if fingerprint else tls.local_fingerprints.get(port)
        if pin is not None or self.manager_address != (host, port):
            self._pin = pin  # a pin learnt from one Manager never applies to another address
        try:
            return self._loop.run(self._connect(host, port, timeout, auth.token_for(host, port, token)),
                                  timeout=timeout + 5)
        except (TimeoutError, OSError) as error:
            log.error("Worker %s could not reach the Manager at %s:%s: %s", self.name, host, port, error)
            return False

    def shutdown(self, msg: dict | None = None) -> None:
        """Stop the nodes (bounded), close the connections and the server, end the loop.

        ``msg`` is accepted for compatibility and ignored. A call while another thread shuts the
        Worker down (the Manager asked) returns once that shutdown has finished.
        """
        if self._shut:
            self._shut_down.wait(45)
            return
        self._shut = True
        try:
            self._loop.run(self._shutdown(), timeout=30)
        except TimeoutError:
            log.error("Worker %s: shutdown timed out; killing node processes", self.name)
        finally:
            for process in list(self.supervisor.nodes.values()):
                if process.handle.poll() is None:
                    process.handle.kill()
                    process.handle.wait(5)
            self._loop.stop()
            self._remove_tempdir()
            self._scratch.release()
            self._ended.set()
            self._shut_down.set()

    def _remove_tempdir(self) -> None:
        """Delete the temporary folder unless it holds recordings the Manager has not confirmed."""
        kept = self.files.unconfirmed()
        if kept:
            log.warning("Worker %s keeps uncollected recordings in %s", self.name, ", ".join(map(str, kept)))
        elif self.delete_temp:
            shutil.rmtree(self.tempdir, ignore_errors=True)

    def wait_until_shutdown(self, timeout: float | None = None) -> bool:
        """Block until the Manager shuts this Worker down or the connection is lost."""
        return self._ended.wait(timeout)

    @property
    def connected(self) -> bool:
        return self._ws is not None and not self._ws.closed

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    def __repr__(self) -> str:
        return f"<Worker {self.name!r} id={self.id} port={self.port}>"

    # -- setup and connection --------------------------------------------------------------------

    async def _setup(self, port: int) -> None:
        await self.supervisor.start()
        app = web.Application(middlewares=[auth.middleware(self._files_key, public=("/health",))])
        app.router.add_get("/health", self._health)
        self.files.add_routes(app)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        for candidate in ([port, 0] if port else [0]):
            site = web.TCPSite(self._runner, self.host, candidate, ssl_context=self._files_ssl)
            try:
                await site.start()
            except OSError as error:
                log.info("Worker %s: port %s unavailable (%s); using a free port", self.name, candidate, error)
                continue
            self.port = self._runner.addresses[-1][1]
            return
        raise OSError(f"Worker {self.name}: no port available for its HTTP server")

    async def _health(self, request: web.Request) -> web.Response:
        return web.json_response({"name": self.name, "id": self.id, "connected": self.connected})

    async def _connect(self, host: str, port: int, timeout: float, token: str | None) -> bool:
        if self.connected:
            return True
        self._http = self._http or aiohttp.ClientSession()
        try:
            ws, fingerprint = await open_manager_socket(self._http, host, port, token=token, pin=self._pin,
                                                        timeout=timeout)
        except AuthenticationError as error:
            log.error("Worker %s did not join: %s", self.name, error)
            return False
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as error:
            log.error("Worker %s could not reach the Manager at %s:%s: %s", self.name, host, port,
                      error or f"no answer within {timeout} s")
            return False
        if self._pin is None:
            log.info("Worker %s pins the Manager's certificate %s (it proved the token)", self.name, fingerprint)
        self._pin = fingerprint
        self._ws = ws
        self._token = token
        sockname = ws.get_extra_info("sockname")
        self._bind_host = sockname[0] if sockname else "127.0.0.1"
        if self._bind_host != self.host and self._runner is not None:  # serve files facing the Manager
            site = web.TCPSite(self._runner, self._bind_host, self.port, ssl_context=self._files_ssl)
            try:
                await site.start()
            except OSError as error:
                log.warning("Worker %s: cannot serve files on %s:%s: %s", self.name, self._bind_host, self.port, error)
        self._tasks = [asyncio.create_task(self._serve_manager(ws))]
        try:
            reply = await self.request("register", self._registration(), timeout=timeout)
        except (TimeoutError, ConnectionError) as error:
            log.error("Worker %s: the Manager at %s:%s did not accept it: %s", self.name, host, port, error)
            await ws.close()
            return False
        if not reply.ok:
            log.error("Worker %s: the Manager at %s:%s refused it: %s", self.name, host, port, reply.error)
            await ws.close()
            return False
        self._resumed = bool(reply.data.get("resume"))
        if not self._resumed and self._running_nodes():  # before the new Manager asks for the files
            self._ending = asyncio.create_task(self._end_nodes("the Manager did not take the session back"))
        self.manager_address = (host, port)
        self._clock_ready = asyncio.Event()
        self._tasks.append(asyncio.create_task(self._probe_clock(ws)))
        try:
            await asyncio.wait_for(self._clock_ready.wait(), timeout)
        except asyncio.TimeoutError:
            log.warning("Worker %s: the clock probes did not finish in time", self.name)
        log.info("Worker %s connected to the Manager at %s:%s", self.name, host, port)
        return True

    def _running_nodes(self) -> list[str]:
        return sorted(p.name for p in self.supervisor.nodes.values()
                      if p.state == "running" and p.handle.poll() is None)

    def _registration(self) -> dict[str, Any]:
        running = self._running_nodes()
        return {
            "session": self._session if running else None,
            "running": running,
            "uncollected": sorted(path.name for path in self.files.unconfirmed()),
            "name": self.name,
            "id": self.id,
            "host": self._bind_host,
            "http_port": self.port,
            "pid": os.getpid(),
            "host_key": host_key(),
            "hostname": socket.gethostname(),
            "versions": {"chimerapy": __version__, "python": platform.python_version()},
        }

    async def request(self, kind: str, data: dict[str, Any], *, timeout: float = 10.0) -> Envelope:
        """Send a request to the Manager and await the reply."""
        if self._ws is None or self._ws.closed:
            raise ConnectionError(f"Worker {self.name} is not connected")
        envelope, future = self._requests.new(kind, data)
        await self._ws.send_str(control.encode(envelope))
        try:
            return await asyncio.wait_for(future, timeout)
        except asyncio.TimeoutError:
            self._requests.forget(envelope.id)
            raise TimeoutError(f"the Manager did not answer {kind!r} within {timeout} s") from None

    async def _notify(self, kind: str, data: dict[str, Any]) -> None:
        if (self._ws is None or self._ws.closed) and kind in KEPT_WHILE_AWAY:
            if len(self._away_events) < MAX_KEPT_EVENTS:
                self._away_events.append((kind, data))  # sent once the Manager is back
            return
        if self._ws is not None and not self._ws.closed:
            try:
                await self._ws.send_str(control.encode(Envelope(kind, data)))
            except (ConnectionError, RuntimeError) as error:
                log.debug("Worker %s: could not send %s: %s", self.name, kind, error)

    async def _serve_manager(self, ws: aiohttp.ClientWebSocketResponse[bool]) -> None:
        handlers: dict[str, Any] = {
            "create_nodes": self._create_nodes,
            "connect_nodes": self._connect_nodes,
            "start": self._start_nodes,
            "step": self._start_nodes,
            "record": self._record_nodes,
            "stop": self._stop_nodes,
            "gather": self._gather,
            "destroy_nodes": self._destroy_nodes,
            "offer_packages": self._offer_packages,
            "install_packages": self._install_packages,
            "list_files": self._list_files,
            "delete_files": self._delete_files,
            "call_method": self._call_method,
            "shutdown": self._shutdown_request,
        }
        try:
            async for message in ws:
                if message.type != aiohttp.WSMsgType.TEXT:
                    continue
                try:
                    envelope = control.decode(message.data)
                except ProtocolError as error:
                    log.warning("Worker %s: malformed message from the Manager: %s", self.name, error)
                    continue
                if envelope.type == "reply":
                    self._requests.resolve(envelope)
                elif envelope.type in handlers:
                    asyncio.create_task(self._answer(ws, envelope, handlers[envelope.type]))
                elif envelope.id is not None:
                    await ws.send_str(control.encode(envelope.fail(f"unknown request {envelope.type!r}")))
        finally:
            self._requests.fail_all(ConnectionError("the connection to the Manager closed"))
            if not self._shut:
                log.warning("Worker %s lost its connection to the Manager", self.name)
                asyncio.create_task(self._on_manager_lost())

    async def _answer(self, ws, envelope: Envelope, handler) -> None:
        try:
            data = await handler(envelope.data)
            reply = envelope.reply(data or {})
        except RequestFailed as failure:
            reply = envelope.fail(str(failure), failure.data)
        except Exception as error:
            log.exception("Worker %s: %s failed", self.name, envelope.type)
            reply = envelope.fail(f"{type(error).__name__}: {error}")
        if not ws.closed:
            await ws.send_str(control.encode(reply))

    async def _on_manager_lost(self) -> None:
        """The Manager is gone (a crash, a cut cable, or this process was stalled): keep the
        nodes running and reconnect; once back, resume if the Manager still runs the session,
        else stop the nodes. If it does not come back, stop them. Every file is kept."""
        running = self._running_nodes()
        if running:
            log.warning("Worker %s keeps its nodes %s running while it reconnects", self.name, running)
        if self.manager_address is not None and self.reconnect_timeout > 0:
            host, port = self.manager_address
            deadline = time.monotonic() + self.reconnect_timeout
            pause = 0.5
            while not self._shut and time.monotonic() < deadline:
                await asyncio.sleep(pause)
                pause = min(pause * 2, 5.0)
                if await self._connect(host, port, 5.0, self._token):
                    log.warning("Worker %s reconnected to the Manager at %s:%s", self.name, host, port)
                    if self._resumed:
                        log.warning("Worker %s resumes session %s: its nodes %s kept running",
                                    self.name, self._session, self._running_nodes())
                    elif self._ending is not None:
                        await self._ending
                    await self._send_away_events()
                    return
            log.warning("Worker %s gives up reconnecting to %s:%s", self.name, host, port)
        if not self._shut:  # a shutdown ends the nodes itself
            await self._end_nodes("the Manager is gone")
        self._ended.set()

    async def _end_nodes(self, why: str) -> None:
        """Stop and end the nodes running now (bounded; not those a new session creates
        meanwhile), keeping every file for a later collect."""
        processes = list(self.supervisor.nodes.values())
        if not processes:
            return
        log.warning("Worker %s stops its nodes %s: %s", self.name, sorted(p.name for p in processes), why)
        self._run_mode = None  # no restarts once stopping
        await asyncio.gather(*(self._stop_one(p, 8.0) for p in processes))
        self.supervisor.remove_shared_memory()
        kept = self.files.unconfirmed()
        if kept:
            log.warning("Worker %s keeps its recordings in %s until a Manager collects them",
                        self.name, ", ".join(map(str, kept)))

    async def _send_away_events(self) -> None:
        """Send the node errors and states that happened while the Manager was away."""
        events, self._away_events = self._away_events, []
        for kind, data in events:
            await self._notify(kind, data)

    async def _probe_once(self) -> None:
        """One clock probe; tell the nodes when the best estimate moved."""
        sent = time.time()
        reply = await self.request("clock_probe", {"sent": sent}, timeout=5.0)
        before = self.clock.offset
        self.clock.add(ClockSample(sent, float(reply.data["manager"]), time.time()))
        if abs(self.clock.offset - before) > 1e-4:
            for process in list(self.supervisor.nodes.values()):
                try:
                    await self.supervisor.notify(process, "clock", {"offset": self.clock.offset})
                except ConnectionError:
                    pass

    async def _probe_clock(self, ws: aiohttp.ClientWebSocketResponse[bool]) -> None:
        """Probe a burst at once (a good first estimate), then once every PROBE_INTERVAL."""
        for index in range(INITIAL_PROBES):
            try:
                await self._probe_once()
            except (TimeoutError, ConnectionError):
                pass
            if index == INITIAL_PROBES - 1:
                self._clock_ready.set()
        failures = 0
        while self._ws is ws and not ws.closed:  # this connection's probes only, not a later one's
            await asyncio.sleep(PROBE_INTERVAL)
            try:
                await self._probe_once()
                failures = 0
            except (TimeoutError, ConnectionError) as error:
                failures += 1
                log.debug("Worker %s: clock probe unanswered (%s: %s), %d in a row", self.name,
                          type(error).__name__, error, failures)
                if failures >= LOST_AFTER_PROBES and self._ws is ws:
                    log.warning("Worker %s: the Manager stopped answering; treating it as lost", self.name)
                    await ws.close()
                    return

    # -- node events -----------------------------------------------------------------------------

    async def _on_node_event(self, process: NodeProcess, envelope: Envelope) -> None:
        data = envelope.data
        if envelope.type == "node_stats":
            await self._notify("stats", {"nodes": {process.name: data.get("stats", {})},
                                         "clock": {"offset": self.clock.offset, "uncertainty": self.clock.uncertainty},
                                         "resources": self.resources.sample()})
        elif envelope.type == "stopped":
            await self._notify("node_state", {"node": process.name, "state": "stopped"})
        elif envelope.type in ("node_error", "node_state", "preview"):
            if envelope.type == "node_state" and process.restarts:
                data = {**data, "state": f"{data['state']} (restarted {process.restarts}x)"}
            await self._notify(envelope.type, {**data, "node": process.name})
            if envelope.type == "node_error" and data.get("phase") == "process" and self._may_restart(process):
                asyncio.create_task(self._restart(process))
        elif envelope.type == "log":
            await self._notify("log", {"records": data.get("records", []), "worker": self.name})

    def _may_restart(self, process: NodeProcess) -> bool:
        spec = process.spec
        return (self._run_mode is not None and spec.get("restart") == "on-failure"
                and process.restarts < int(spec.get("max_restarts", 3)))

    async def _restart(self, dead: NodeProcess) -> None:
        """Bring a crashed node back: same code, ports and wiring; recordings in a new folder."""
        attempt = dead.restarts + 1
        base = dead.spec.get("base_directory", dead.spec["directory"])
        spec = {**dead.spec, "base_directory": base, "directory": f"{base}.restart{attempt}",
                "endpoints": dict(dead.addresses),
                "offset": self.clock.offset}
        self.supervisor.nodes.pop(dead.id, None)
        log.warning("Worker %s restarts node %s (attempt %d)", self.name, dead.name, attempt)
        try:
            process = await self.supervisor.spawn(dead.name)
            process.restarts, process.connection = attempt, dead.connection
            reply = await self.supervisor.request(process, "load", {"spec": spec}, timeout=60.0)
            if not reply.ok:
                raise RuntimeError(f"{reply.error}\n{reply.data.get('traceback', '')}")
            process.spec, process.addresses = spec, reply.data.get("addresses", {})
            if process.connection is not None:
                await self.supervisor.request(process, "connect", process.connection, timeout=15.0)
            if self._run_mode is not None:
                await self.supervisor.request(process, self._run_mode, {"record": self._recording}, timeout=10.0)
                process.state = "running"
        except Exception as error:  # noqa: BLE001 - any failure to restart is reported
            await self._notify("node_error", {"node": dead.name, "phase": "restart",
                                              "traceback": f"restart {attempt} failed: {error}"})

    # -- requests from the Manager ---------------------------------------------------------------

    async def _offer_packages(self, data: dict[str, Any]) -> dict[str, Any]:
        """Say which offered packages this Worker lacks, and which clash with installed versions."""
        wanted, conflicts = [], []
        for package in data["packages"]:
            try:
                installed = importlib.metadata.version(package["name"])
            except importlib.metadata.PackageNotFoundError:
                installed = None
            if package["sha256"] in self.packages:
                continue
            if installed is not None and not package.get("override"):
                if installed != package["version"]:
                    conflicts.append(f"{package['name']}: this Worker has {installed} installed, the Manager "
                                     f"sends {package['version']}")
                continue
            wanted.append(package["sha256"])
        return {"wanted": wanted, "conflicts": conflicts}

    async def _install_packages(self, data: dict[str, Any]) -> dict[str, Any]:
        """Unpack shipped packages and check that each imports; fail with the traceback if not."""
        for package in data["packages"]:
            digest = str(package["sha256"])
            if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
                raise RequestFailed(f"package {package.get('name')!r}: its sha256 {digest[:80]!r} is not a hex digest")
            folder = self.tempdir / PACKAGES / digest[:16]
            await asyncio.to_thread(shipping.unpack, base64.b64decode(package["archive"]), folder)
            check = "import " + ", ".join(package["top_levels"]) if package["top_levels"] else "pass"
            env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(folder), *filter(None, [os.environ.get("PYTHONPATH")])])}
            result = await asyncio.to_thread(
                subprocess.run, [sys.executable, "-c", check], env=env, capture_output=True, text=True, timeout=120)
            if result.returncode != 0:
                raise RequestFailed(f"package {package['name']} {package['version']} fails to import on "
                                    f"Worker {self.name}:\n{result.stderr.strip()}")
            self.packages[package["sha256"]] = folder
            log.info("Worker %s received package %s %s", self.name, package["name"], package["version"])
        return {}

    async def _create_nodes(self, data: dict[str, Any]) -> dict[str, Any]:
        self._session = data["session"]
        self._forget_final_outputs()
        self._session_packages = [str(self.packages[h]) for h in data.get("packages", []) if h in self.packages]
        specs = data["nodes"]
        results = await asyncio.gather(*(self._create_node(spec) for spec in specs), return_exceptions=True)
        errors, created = [], {}
        for spec, result in zip(specs, results):
            if isinstance(result, BaseException):
                errors.append({"node": spec["name"], "phase": "load", "traceback": f"{type(result).__name__}: {result}"})
            elif not result.ok:
                errors.append({"node": spec["name"], "phase": result.data.get("phase", "load"),
                               "traceback": result.data.get("traceback", result.error or "")})
            else:
                created[spec["name"]] = {"addresses": result.data["addresses"], "pid": result.data.get("pid")}
        if errors:
            await self.supervisor.end_all(grace=1.0)
            raise RequestFailed(f"{len(errors)} node(s) failed on Worker {self.name}", {"errors": errors})
        return {"nodes": created, "host_key": host_key()}

    async def _create_node(self, spec: dict[str, Any]) -> Envelope:
        process = await self.supervisor.spawn(spec["name"])
        directory = self.files.session_dir(self._session) / check_name("node", spec["name"])
        full = {**spec, "host": self._bind_host, "directory": str(directory), "offset": self.clock.offset,
                "pythonpath": self._session_packages, "private_dir": str(self.supervisor.private_dir.path)}
        reply = await self.supervisor.request(process, "load", {"spec": full}, timeout=float(spec.get("prep_timeout", 60.0)))
        process.spec, process.addresses = full, reply.data.get("addresses", {}) if reply.ok else {}
        return reply

    def _process(self, name: str) -> NodeProcess:
        for process in self.supervisor.nodes.values():
            if process.name == name:
                return process
        raise RequestFailed(f"Worker {self.name} has no node named {name!r}")

    async def _connect_nodes(self, data: dict[str, Any]) -> dict[str, Any]:
        inputs: dict[str, list] = data["inputs"]
        consumers: dict[str, list] = data.get("consumers", {})
        names = set(inputs) | set(consumers)
        processes = {name: self._process(name) for name in names}
        for name in names:
            processes[name].connection = {"inputs": inputs.get(name, []), "consumers": consumers.get(name, []),
                                          "timeout": 10.0}
        replies = await asyncio.gather(*(
            self.supervisor.request(processes[name], "connect", processes[name].connection, timeout=15.0)
            for name in names
        ), return_exceptions=True)
        failures = [f"{name}: {r.error if isinstance(r, Envelope) else r}" for name, r in zip(names, replies)
                    if not isinstance(r, Envelope) or not r.ok]
        if failures:
            raise RequestFailed("; ".join(failures))
        return {}

    async def _start_nodes(self, data: dict[str, Any]) -> dict[str, Any]:
        """Start (or step) the nodes; with ``{"record": false}`` they preview: nothing is saved."""
        kind = "step" if data.get("mode") == "step" else "start"
        self._recording = bool(data.get("record", True))
        live = [p for p in self.supervisor.nodes.values() if p.state not in ("crashed", "exited", "stopped")]
        replies = await asyncio.gather(*(self.supervisor.request(p, kind, {"record": self._recording}, timeout=10.0)
                                         for p in live), return_exceptions=True)
        failures = [f"{p.name}: {r}" for p, r in zip(live, replies) if not isinstance(r, Envelope) or not r.ok]
        if failures:
            raise RequestFailed("; ".join(failures))
        for process in live:
            process.state = "running"
        self._run_mode = kind
        return {}

    async def _record_nodes(self, data: dict[str, Any]) -> dict[str, Any]:
        """Previewing nodes begin saving, in the processes they run in (no restart, no prep)."""
        self._recording = True  # a node restarted from now on records too
        live = [p for p in self.supervisor.nodes.values() if p.state == "running" and p.handle.poll() is None]
        order = {"at": data["at"]} if data.get("at") is not None else {}
        replies = await asyncio.gather(*(self.supervisor.request(p, "record", order, timeout=10.0) for p in live),
                                       return_exceptions=True)
        failures = [f"{p.name}: {r.error if isinstance(r, Envelope) else r}" for p, r in zip(live, replies)
                    if not isinstance(r, Envelope) or not r.ok]
        if failures:
            raise RequestFailed("; ".join(failures))
        return {"nodes": {p.name: p.pid for p in live}}

    async def _stop_nodes(self, data: dict[str, Any]) -> dict[str, Any]:
        self._run_mode = None  # no restarts once stopping
        grace = float(data.get("grace", 8.0))
        processes = list(self.supervisor.nodes.values())
        stop = {"at": data["at"]} if data.get("at") is not None else {}  # the Manager's time of the stop
        await asyncio.gather(*(self._stop_one(p, grace, stop) for p in processes))
        self._final_outputs.update({p.name: p.last_output for p in processes})
        self.supervisor.remove_shared_memory()
        return {"nodes": {p.name: {"stats": p.stats, "files": p.files, "state": p.state, "killed": p.killed,
                                   "ended_at": p.ended_at} for p in processes}}

    async def _stop_one(self, process: NodeProcess, grace: float, stop: dict[str, Any] | None = None) -> None:
        late = False
        if process.handle.poll() is None:
            try:
                await self.supervisor.request(process, "stop", stop, timeout=2.0)
            except (TimeoutError, ConnectionError):
                pass
            try:
                await asyncio.wait_for(process.stopped.wait(), grace)
            except asyncio.TimeoutError:
                late = True
                log.warning("node %s did not stop within %.1f s; ending its process", process.name, grace)
        ended = await self.supervisor.end(process, grace=5.0)
        if late:
            process.killed = f"did not stop within its grace period of {grace:.1f} s and was {ended}"
            process.ended_at = time.time() + self.clock.offset

    async def _call_method(self, data: dict[str, Any]) -> dict[str, Any]:
        """Forward a registered-method call to the node running it; answer its result."""
        name = str(data["node"])
        process = next((p for p in self.supervisor.nodes.values() if p.name == name), None)
        if process is None:
            raise RequestFailed(f"Worker {self.name} runs no node {name!r}")
        reply = await self.supervisor.request(process, "call", {"node": name, "method": data["method"],
                                                                "params": data.get("params") or {}},
                                              timeout=float(data.get("timeout", 10.0)))
        if not reply.ok:
            raise RequestFailed(reply.error or f"{name}.{data['method']} failed")
        return {"result": reply.data.get("result")}

    async def _gather(self, data: dict[str, Any]) -> dict[str, Any]:
        """Each node's last output (for Manager.gather): asked of running nodes, kept for ended ones."""
        def kept(path: str | None) -> dict[str, Any] | None:
            return last_output.read(path, self.supervisor.private_dir.path)

        async def one(process: NodeProcess) -> Any:
            if process.state == "stopped" or process.handle.poll() is not None:
                return kept(process.last_output)
            try:
                reply = await self.supervisor.request(process, "gather", timeout=5.0)
            except (TimeoutError, ConnectionError):
                return kept(process.last_output)
            return reply.data.get("chunk") if reply.ok else kept(process.last_output)

        processes = list(self.supervisor.nodes.values())
        results = await asyncio.gather(*(one(p) for p in processes))
        ended = {name: kept(path) for name, path in self._final_outputs.items()}
        return {"nodes": {**ended, **{p.name: r for p, r in zip(processes, results)}}}

    def _forget_final_outputs(self) -> None:
        for path in self._final_outputs.values():
            last_output.remove(path)
        self._final_outputs = {}

    async def _list_files(self, data: dict[str, Any]) -> dict[str, Any]:
        session = str(data["session"])
        if self._ending is not None:  # files still being finished by nodes that are ending
            await asyncio.shield(self._ending)
        problems = await asyncio.to_thread(self.files.repair, session)
        listing = await asyncio.to_thread(self.files.list, session)
        return {
            "files": listing,
            "problems": problems,
            "http": {"host": self._bind_host, "port": self.port, "fingerprint": self._files_fingerprint,
                     "key": self._files_key},
            "clock": {"offset": self.clock.offset, "uncertainty": self.clock.uncertainty,
                      "history": self.clock.history[-3600:]},
        }

    async def _delete_files(self, data: dict[str, Any]) -> dict[str, Any]:
        if self.delete_temp:
            await asyncio.to_thread(self.files.delete, str(data["session"]))
        else:
            self.files.confirmed.add(str(data["session"]))
        return {"deleted": self.delete_temp}

    async def _destroy_nodes(self, data: dict[str, Any]) -> dict[str, Any]:
        await self.supervisor.end_all(grace=1.0)
        return {}

    async def _shutdown_request(self, data: dict[str, Any]) -> dict[str, Any]:
        asyncio.get_running_loop().call_later(0.05, lambda: threading.Thread(target=self.shutdown, daemon=True).start())
        return {}

    async def _shutdown(self) -> None:
        who = f"Worker {self.name}"
        await named_if_slow(self.supervisor.close(), who, "closing the node supervisor")
        for task in self._tasks:
            task.cancel()
        await named_if_slow(asyncio.gather(*self._tasks, return_exceptions=True), who,
                            "ending the Manager connection's tasks")
        if self._ws is not None:
            await named_if_slow(self._ws.close(), who, "closing the Manager connection")
        if self._http is not None:
            await self._http.close()
        if self._runner is not None:
            await named_if_slow(self._runner.cleanup(), who, "closing the file server")


class RequestFailed(Exception):
    """A request handler's failure, with data for the reply."""

    def __init__(self, message: str, data: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.data = data or {}
