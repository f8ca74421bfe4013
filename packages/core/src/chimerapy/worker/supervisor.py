"""NodeSupervisor: a Worker's node processes: spawn, talk to, watch, and end them (bounded).

Each node runs in its own process running :mod:`chimerapy.node.host` (the node travels with
cloudpickle, so classes from ``__main__`` and notebooks work), forked in milliseconds by the
Worker's launcher (:mod:`chimerapy.worker.launcher`), which has made the imports every node needs
once. All node processes of a Worker connect to one ROUTER socket at an ``ipc://`` endpoint in
the Worker's private folder (:class:`chimerapy.net.endpoints.PrivateDirectory`, 0700), where
the nodes' same-host data-plane endpoints live too: no other user can reach them. Ending a process
is bounded: ask it to stop, wait a grace period, SIGTERM, wait, SIGKILL, reap; no process
outlives the supervisor.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import zmq
import zmq.asyncio

from ..errors import ProtocolError
from ..net import control
from ..net.control import Envelope, Requests
from ..net.endpoints import PrivateDirectory
from ..net.shm import remove_orphaned_segments, remove_segments
from .launcher import LaunchedProcess, Launcher
from .slow_steps import named_if_slow

__all__ = ["NodeProcess", "NodeSupervisor"]

log = logging.getLogger(__name__)

EventHandler = Callable[["NodeProcess", Envelope], Awaitable[None]]


@dataclass
class NodeProcess:
    """One node's process, as the Worker sees it."""

    id: str
    name: str
    handle: LaunchedProcess
    hello: asyncio.Event = field(default_factory=asyncio.Event)
    stopped: asyncio.Event = field(default_factory=asyncio.Event)
    requests: Requests = field(default_factory=Requests)
    state: str = "spawned"
    stats: dict[str, Any] = field(default_factory=dict)
    last_output: str | None = None  # the file of the node's last output, kept when it stopped
    files: list[str] = field(default_factory=list)
    expected_exit: bool = False
    #: What the node was loaded and connected with, to restart it the same way.
    spec: dict[str, Any] = field(default_factory=dict)
    connection: dict[str, Any] | None = None
    addresses: dict[str, str] = field(default_factory=dict)
    restarts: int = 0
    #: Set when the node had to be ended at stop: how (e.g. "did not stop within ... and was killed").
    killed: str | None = None
    #: Manager-aligned time at which a killed node was ended.
    ended_at: float | None = None

    @property
    def pid(self) -> int:
        return self.handle.pid


class NodeSupervisor:
    """Spawns node processes and exchanges control messages with them.

    Args:
        on_event: awaited for every event (not reply) a node sends: stats, logs, errors, states.
        env: extra environment variables for the node processes (e.g. ``PYTHONPATH``).
    """

    def __init__(self, on_event: EventHandler, *, env: dict[str, str] | None = None) -> None:
        self._on_event = on_event
        self._env = env or {}
        self._context = zmq.asyncio.Context()
        self._router: zmq.asyncio.Socket | None = None
        self._launcher: Launcher | None = None
        #: The private folder of this Worker's ``ipc://`` endpoints.
        self.private_dir = PrivateDirectory()
        self.address = ""
        #: Processes running a node, by process identity.
        self.nodes: dict[str, NodeProcess] = {}
        self._tasks: list[asyncio.Task] = []
        self._early_hellos: dict[str, asyncio.Event] = {}
        #: Processes ended since the last :meth:`remove_shared_memory`.
        self.ended_pids: list[int] = []

    def remove_shared_memory(self) -> None:
        """Delete the shared-memory segments of ended node processes (once no node reads them)."""
        for pid in self.ended_pids:
            remove_segments(pid)
        self.ended_pids.clear()

    async def start(self) -> None:
        """Bind the ROUTER socket, start listening and start the launcher (after clearing the
        shared memory that nodes of earlier Workers left when they were killed)."""
        removed = remove_orphaned_segments()
        if removed:
            log.info("removed %d shared-memory segments left by ended node processes", removed)
        self._router = self._context.socket(zmq.ROUTER)
        self._router.setsockopt(zmq.LINGER, 0)
        self._router.setsockopt(zmq.ROUTER_MANDATORY, 1)
        self.address = self.private_dir.endpoint("control")
        self._router.bind(self.address)
        self._tasks = [asyncio.create_task(self._receive()), asyncio.create_task(self._watch())]
        self._live_launcher()

    def _live_launcher(self) -> Launcher:
        """The launcher, started again if it has died."""
        if self._launcher is None or not self._launcher.alive:
            if self._launcher is not None:
                log.warning("the node launcher (pid %d) died; starting a new one", self._launcher.pid)
            self._launcher = Launcher({**os.environ, **self._env})
        return self._launcher

    async def spawn(self, name: str, *, timeout: float = 120.0) -> NodeProcess:
        """A new process for the node ``name``, once it has said hello."""
        identity = uuid.uuid4().hex[:16]
        hello = self._early_hellos[identity] = asyncio.Event()  # a quick child may say hello before
        try:                                                     # its launcher has told us its pid
            handle = await self._live_launcher().spawn(["--control", self.address, "--node-id", identity], timeout)
        finally:
            self._early_hellos.pop(identity, None)
        process = NodeProcess(identity, name, handle, hello=hello)
        self.nodes[process.id] = process
        try:
            await asyncio.wait_for(process.hello.wait(), timeout)
        except asyncio.TimeoutError:
            await self.end(process, grace=0)
            raise RuntimeError(f"node {name}: its process did not start within {timeout} s") from None
        if handle.poll() is not None:
            raise RuntimeError(f"node {name}: its process exited with code {handle.returncode} at start")
        return process

    async def request(
        self, process: NodeProcess, kind: str, data: dict[str, Any] | None = None, *, timeout: float = 30.0
    ) -> Envelope:
        """Send a request to a node and await its reply (raises TimeoutError)."""
        envelope, future = process.requests.new(kind, data)
        await self._send(process, envelope)
        try:
            return await asyncio.wait_for(future, timeout)
        except asyncio.TimeoutError:
            process.requests.forget(envelope.id)
            raise TimeoutError(f"node {process.name} did not answer {kind!r} within {timeout} s") from None

    async def notify(self, process: NodeProcess, kind: str, data: dict[str, Any] | None = None) -> None:
        """Send an event (no reply expected) to a node."""
        await self._send(process, Envelope(kind, data or {}))

    async def _send(self, process: NodeProcess, envelope: Envelope) -> None:
        assert self._router is not None
        try:
            await self._router.send_multipart([process.id.encode(), control.encode(envelope).encode()])
        except zmq.ZMQError as error:
            raise ConnectionError(f"node {process.name} is not reachable: {error}") from error

    async def _receive(self) -> None:
        assert self._router is not None
        while True:
            identity, raw = await self._router.recv_multipart()
            key = identity.decode(errors="replace")
            process = self.nodes.get(key)
            if process is None:
                early = self._early_hellos.get(key)
                if early is not None and _is_hello(raw):
                    early.set()
                continue
            try:
                envelope = control.decode(raw)
            except Exception as error:  # noqa: BLE001 - a malformed message is logged and skipped
                log.warning("node %s sent a malformed message: %s", process.name, error)
                continue
            if envelope.type == "reply":
                process.requests.resolve(envelope)
            elif envelope.type == "hello":
                process.hello.set()
            else:
                if envelope.type == "stopped":
                    process.stats = envelope.data.get("stats", {})
                    process.files = envelope.data.get("files", [])
                    process.last_output = envelope.data.get("last_output")
                    process.state = "stopped"
                    process.expected_exit = True
                    process.stopped.set()
                elif envelope.type == "node_stats":
                    process.stats = envelope.data.get("stats", {})
                try:
                    await self._on_event(process, envelope)
                except Exception:
                    log.exception("handling %s from node %s failed", envelope.type, process.name)

    async def _watch(self) -> None:
        """Notice node processes that exit on their own (crashes)."""
        while True:
            await asyncio.sleep(0.2)
            for process in list(self.nodes.values()):
                code = process.handle.poll()
                if code is None or process.state in ("exited", "crashed"):
                    continue
                if not process.expected_exit:  # its last words ("stopped") may still be unread
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(process.stopped.wait(), 1.0)
                crashed = not process.expected_exit
                process.state = "crashed" if crashed else "exited"
                process.requests.fail_all(ConnectionError(f"node {process.name} exited with code {code}"))
                process.hello.set()
                process.stopped.set()
                if crashed:
                    event = Envelope("node_error", {
                        "node": process.name, "phase": "process",
                        "traceback": f"the node process {process.pid} exited unexpectedly with code {code}",
                        "exit_code": code,
                    })
                    await self._on_event(process, event)

    async def end(self, process: NodeProcess, *, grace: float = 3.0) -> str:
        """End ``process``: ask it to exit, wait ``grace``, then SIGTERM, then SIGKILL, and reap.

        Returns:
            How it ended: ``"exited"`` (by itself or when asked), ``"terminated"`` (SIGTERM)
            or ``"killed"`` (SIGKILL).
        """
        process.expected_exit = True
        handle = process.handle
        how = "exited"
        if handle.poll() is None and grace > 0:
            try:
                await self.notify(process, "exit")
            except ConnectionError:
                pass
            await _wait_exit(handle, grace)
        for signal_it, wait, verb in ((handle.terminate, 1.0, "terminated"), (handle.kill, 2.0, "killed")):
            if handle.poll() is not None:
                break
            log.warning("node %s (pid %d) did not exit; %s", process.name, handle.pid, signal_it.__name__)
            signal_it()
            how = verb
            await _wait_exit(handle, wait)
        self.nodes.pop(process.id, None)
        self.ended_pids.append(handle.pid)
        return how

    async def end_all(self, *, grace: float = 3.0) -> None:
        """End every node process concurrently."""
        await asyncio.gather(*(self.end(p, grace=grace) for p in list(self.nodes.values())))

    async def close(self) -> None:
        """End every process and the launcher, stop listening and close the socket."""
        who = "node supervisor"
        await named_if_slow(self.end_all(grace=1.0), who, "ending the node processes")
        if self._launcher is not None:  # waits for it to exit: not on the loop
            await named_if_slow(asyncio.to_thread(self._launcher.close), who, "closing the launcher")
        self.remove_shared_memory()
        for task in self._tasks:
            task.cancel()
        await named_if_slow(asyncio.gather(*self._tasks, return_exceptions=True), who,
                            "ending the node channel's tasks")
        if self._router is not None:
            self._router.close(linger=0)
        self._context.term()
        self.private_dir.close()


def _is_hello(raw: bytes) -> bool:
    try:
        return control.decode(raw).type == "hello"
    except ProtocolError:  # a malformed message is no hello
        return False


async def _wait_exit(handle: LaunchedProcess, timeout: float) -> None:
    """Wait up to ``timeout`` seconds for ``handle`` to end: looks often at first (a node that
    was asked to exit usually has within a few milliseconds), then every 20 ms."""
    deadline, pause = time.monotonic() + timeout, 0.001
    while handle.poll() is None and time.monotonic() < deadline:
        await asyncio.sleep(pause)
        pause = min(pause * 1.5, 0.02)
