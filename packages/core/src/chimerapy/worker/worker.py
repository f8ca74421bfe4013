"""Worker: hosts node processes on one computer and takes its orders from the Manager."""

from __future__ import annotations

import asyncio
import base64
import importlib.metadata
import logging
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from .. import shipping
from ..__about__ import __version__
from ..clock import ClockEstimator, ClockSample
from ..errors import ProtocolError
from ..loop_thread import LoopThread
from ..net import auth, control
from ..net.control import Envelope, Requests
from .files import FileStore
from .supervisor import NodeProcess, NodeSupervisor

__all__ = ["Worker"]

log = logging.getLogger(__name__)

PROBE_INTERVAL = 1.0
INITIAL_PROBES = 8
LOST_AFTER_PROBES = 2  # consecutive unanswered probes (5 s each) after which the Manager is lost


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[:100]


def host_key() -> str:
    """Identifies this host and network namespace: nodes with equal keys share memory and IPC."""
    try:
        netns = os.readlink("/proc/self/ns/net")
    except OSError:
        netns = ""
    try:
        machine = Path("/etc/machine-id").read_text().strip()
    except OSError:
        machine = ""
    return f"{socket.gethostname()}|{machine}|{netns}"


class Worker:
    """Hosts nodes on this computer for a Manager.

    To run nodes on another computer, start a Worker there from its terminal::

        cp-worker --ip <manager's IP> --port <manager's port> --name <name>

    Args:
        name: the Worker's name, used in mappings; unique within a cluster.
        port: the port of the Worker's HTTP server (file transfers); if taken, a free one is
            used. 0 picks a free port. The port in use is :attr:`port`.
        delete_temp: delete the Worker's temporary recordings once the Manager has them.
        id: a fixed id (default: a random one).
    """

    def __init__(self, name: str, port: int = 10000, delete_temp: bool = True, id: str | None = None):
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"a Worker needs a non-empty name, got {name!r}")
        self.name = name
        self.id = id or uuid.uuid4().hex[:12]
        self.delete_temp = delete_temp
        #: Recordings live here until the Manager confirms it has them; the folder is the same
        #: for every Worker of this name, so a Worker that restarts still has them to give.
        self.tempdir = Path(tempfile.gettempdir()) / f"chimerapy-worker-{_safe(name)}"
        self.tempdir.mkdir(parents=True, exist_ok=True)
        #: After losing the Manager, keep trying to reconnect for this many seconds (0: never).
        self.reconnect_timeout = 120.0
        self.host = "127.0.0.1"
        self.port = 0
        self.manager_address: tuple[str, int] | None = None
        self.clock = ClockEstimator()
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._http: aiohttp.ClientSession | None = None
        self._requests = Requests()
        self._tasks: list[asyncio.Task] = []
        self._bind_host = "127.0.0.1"
        self._shut = False
        self._ended = threading.Event()
        self._token: str | None = None
        self._run_mode: str | None = None  # "start" or "step" while the nodes run
        self._session = ""
        self._final_outputs: dict[str, Any] = {}  # node name -> its last output (JSON) once ended
        self._loop = LoopThread(f"chimerapy-worker-{name}")
        self.supervisor = NodeSupervisor(self._on_node_event)
        self.files = FileStore(self.tempdir)
        #: Shipped packages this Worker holds: content hash -> the folder on node PYTHONPATHs.
        self.packages: dict[str, Path] = {}
        self._session_packages: list[str] = []
        self._runner: web.AppRunner | None = None
        self._loop.run(self._setup(port), timeout=30)

    # -- public API ------------------------------------------------------------------------------

    def connect(self, host: str, port: int, timeout: float = 10.0, *, token: str | None = None) -> bool:
        """Connect to the Manager at ``host:port`` and register.

        ``token`` is the cluster's secret; by default that of a Manager in this process, else
        ``$CHIMERAPY_TOKEN``.

        Returns:
            True when registered; False (with a logged reason naming the address) otherwise.
        """
        if self._shut:
            raise RuntimeError(f"Worker {self.name!r} was shut down; create a new Worker")
        try:
            return self._loop.run(self._connect(host, port, timeout, auth.token_for(host, port, token)),
                                  timeout=timeout + 5)
        except (TimeoutError, OSError) as error:
            log.error("Worker %s could not reach the Manager at %s:%s: %s", self.name, host, port, error)
            return False

    def shutdown(self, msg: dict | None = None) -> None:
        """Stop the nodes (bounded), close the connections and the server, end the loop.

        ``msg`` is accepted for compatibility and ignored.
        """
        if self._shut:
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
            self._ended.set()

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

    def __enter__(self) -> Worker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    def __repr__(self) -> str:
        return f"<Worker {self.name!r} id={self.id} port={self.port}>"

    # -- setup and connection --------------------------------------------------------------------

    async def _setup(self, port: int) -> None:
        await self.supervisor.start()
        app = web.Application(middlewares=[auth.middleware(lambda: self._token, public=("/health",))])
        app.router.add_get("/health", self._health)
        self.files.add_routes(app)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        for candidate in ([port, 0] if port else [0]):
            site = web.TCPSite(self._runner, self.host, candidate)
            try:
                await site.start()
            except OSError as error:
                log.info("Worker %s: port %s unavailable (%s); using a free port", self.name, candidate, error)
                continue
            self.port = site._server.sockets[0].getsockname()[1]
            return
        raise OSError(f"Worker {self.name}: no port available for its HTTP server")

    async def _health(self, request: web.Request) -> web.Response:
        return web.json_response({"name": self.name, "id": self.id, "connected": self.connected})

    async def _connect(self, host: str, port: int, timeout: float, token: str | None) -> bool:
        if self.connected:
            return True
        self._http = self._http or aiohttp.ClientSession()
        url = f"http://{host}:{port}/ws/worker"
        try:
            ws = await asyncio.wait_for(self._http.ws_connect(
                url, timeout=aiohttp.ClientWSTimeout(ws_close=5.0), heartbeat=5.0,
                max_msg_size=control.MAX_MESSAGE_BYTES, headers=auth.bearer(token),
            ), timeout)
        except aiohttp.WSServerHandshakeError as error:
            reason = "it refused the cluster token" if error.status == 401 else f"HTTP {error.status}"
            if error.status == 401 and token is None:
                reason = "it requires a cluster token: pass --token (or set CHIMERAPY_TOKEN)"
            log.error("Worker %s could not join the Manager at %s:%s: %s", self.name, host, port, reason)
            return False
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as error:
            log.error("Worker %s could not reach the Manager at %s:%s: %s", self.name, host, port, error)
            return False
        self._ws = ws
        self._token = token
        sockname = ws.get_extra_info("sockname")
        self._bind_host = sockname[0] if sockname else "127.0.0.1"
        if self._bind_host != self.host:  # serve files on the interface that faces the Manager
            site = web.TCPSite(self._runner, self._bind_host, self.port)
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
        self.manager_address = (host, port)
        self._clock_ready = asyncio.Event()
        self._tasks.append(asyncio.create_task(self._probe_clock()))
        try:
            await asyncio.wait_for(self._clock_ready.wait(), timeout)
        except asyncio.TimeoutError:
            log.warning("Worker %s: the clock probes did not finish in time", self.name)
        log.info("Worker %s connected to the Manager at %s:%s", self.name, host, port)
        return True

    def _registration(self) -> dict[str, Any]:
        return {
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
        if self._ws is not None and not self._ws.closed:
            try:
                await self._ws.send_str(control.encode(Envelope(kind, data)))
            except (ConnectionError, RuntimeError) as error:
                log.debug("Worker %s: could not send %s: %s", self.name, kind, error)

    async def _serve_manager(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        handlers: dict[str, Any] = {
            "create_nodes": self._create_nodes,
            "connect_nodes": self._connect_nodes,
            "start": self._start_nodes,
            "step": self._start_nodes,
            "stop": self._stop_nodes,
            "gather": self._gather,
            "destroy_nodes": self._destroy_nodes,
            "offer_packages": self._offer_packages,
            "install_packages": self._install_packages,
            "list_files": self._list_files,
            "delete_files": self._delete_files,
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
        """The Manager is gone: stop the nodes, keep every file, try to reconnect, else end."""
        await self._stop_nodes({})
        await self.supervisor.end_all()
        kept = self.files.unconfirmed()
        if kept:
            log.warning("Worker %s keeps its recordings in %s until a Manager collects them",
                        self.name, ", ".join(map(str, kept)))
        if self.manager_address is not None and self.reconnect_timeout > 0:
            host, port = self.manager_address
            deadline = time.monotonic() + self.reconnect_timeout
            pause = 0.5
            while not self._shut and time.monotonic() < deadline:
                await asyncio.sleep(pause)
                pause = min(pause * 2, 5.0)
                if await self._connect(host, port, 5.0, self._token):
                    log.warning("Worker %s reconnected to the Manager at %s:%s", self.name, host, port)
                    return
            log.warning("Worker %s gives up reconnecting to %s:%s", self.name, host, port)
        self._ended.set()

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

    async def _probe_clock(self) -> None:
        """Probe a burst at once (a good first estimate), then once every PROBE_INTERVAL."""
        for index in range(INITIAL_PROBES):
            try:
                await self._probe_once()
            except (TimeoutError, ConnectionError):
                pass
            if index == INITIAL_PROBES - 1:
                self._clock_ready.set()
        failures = 0
        while self.connected:
            await asyncio.sleep(PROBE_INTERVAL)
            try:
                await self._probe_once()
                failures = 0
            except (TimeoutError, ConnectionError):
                failures += 1
                if failures >= LOST_AFTER_PROBES and self._ws is not None:
                    log.warning("Worker %s: the Manager stopped answering; treating it as lost", self.name)
                    await self._ws.close()
                    return

    # -- node events -----------------------------------------------------------------------------

    async def _on_node_event(self, process: NodeProcess, envelope: Envelope) -> None:
        data = envelope.data
        if envelope.type == "node_stats":
            await self._notify("stats", {"nodes": {process.name: data.get("stats", {})},
                                         "clock": {"offset": self.clock.offset, "uncertainty": self.clock.uncertainty}})
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
        ports = {mode: int(address.rsplit(":", 1)[1]) for mode, address in dead.addresses.items()}
        spec = {**dead.spec, "base_directory": base, "directory": f"{base}.restart{attempt}", "ports": ports,
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
                await self.supervisor.request(process, self._run_mode, timeout=10.0)
                process.state = "running"
        except Exception as error:
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
            folder = self.tempdir / "packages" / package["sha256"][:16]
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
        self._final_outputs = {}
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
        directory = self.tempdir / self._session / spec["name"]
        full = {**spec, "host": self._bind_host, "directory": str(directory), "offset": self.clock.offset,
                "pythonpath": self._session_packages}
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
        kind = "step" if data.get("mode") == "step" else "start"
        live = [p for p in self.supervisor.nodes.values() if p.state not in ("crashed", "exited", "stopped")]
        replies = await asyncio.gather(*(self.supervisor.request(p, kind, timeout=10.0) for p in live),
                                       return_exceptions=True)
        failures = [f"{p.name}: {r}" for p, r in zip(live, replies) if not isinstance(r, Envelope) or not r.ok]
        if failures:
            raise RequestFailed("; ".join(failures))
        for process in live:
            process.state = "running"
        self._run_mode = kind
        return {}

    async def _stop_nodes(self, data: dict[str, Any]) -> dict[str, Any]:
        self._run_mode = None  # no restarts once stopping
        grace = float(data.get("grace", 8.0))
        processes = list(self.supervisor.nodes.values())
        stop = {"at": data["at"]} if data.get("at") is not None else {}  # the Manager's time of the stop
        await asyncio.gather(*(self._stop_one(p, grace, stop) for p in processes))
        self._final_outputs.update({p.name: p.latest for p in processes})
        self.supervisor.remove_shared_memory()
        return {"nodes": {p.name: {"stats": p.stats, "files": p.files, "state": p.state} for p in processes}}

    async def _stop_one(self, process: NodeProcess, grace: float, stop: dict[str, Any] | None = None) -> None:
        if process.handle.poll() is None:
            try:
                await self.supervisor.request(process, "stop", stop, timeout=2.0)
            except (TimeoutError, ConnectionError):
                pass
            try:
                await asyncio.wait_for(process.stopped.wait(), grace)
            except asyncio.TimeoutError:
                log.warning("node %s did not stop within %.1f s; ending its process", process.name, grace)
        await self.supervisor.end(process, grace=5.0)

    async def _gather(self, data: dict[str, Any]) -> dict[str, Any]:
        """Each node's last output (for Manager.gather): asked of running nodes, kept for ended ones."""
        async def one(process: NodeProcess) -> Any:
            if process.state == "stopped" or process.handle.poll() is not None:
                return process.latest
            try:
                reply = await self.supervisor.request(process, "gather", timeout=5.0)
            except (TimeoutError, ConnectionError):
                return process.latest
            return reply.data.get("chunk") if reply.ok else process.latest

        processes = list(self.supervisor.nodes.values())
        results = await asyncio.gather(*(one(p) for p in processes))
        return {"nodes": {**self._final_outputs, **{p.name: r for p, r in zip(processes, results)}}}

    async def _list_files(self, data: dict[str, Any]) -> dict[str, Any]:
        listing = await asyncio.to_thread(self.files.list, str(data["session"]))
        return {
            "files": listing,
            "http": {"host": self._bind_host, "port": self.port},
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
        await self.supervisor.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._ws is not None:
            await self._ws.close()
        if self._http is not None:
            await self._http.close()
        if self._runner is not None:
            await self._runner.cleanup()


class RequestFailed(Exception):
    """A request handler's failure, with data for the reply."""

    def __init__(self, message: str, data: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.data = data or {}
