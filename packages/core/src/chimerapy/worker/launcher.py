"""The node launcher: a fork server that starts node processes in milliseconds.

A Worker starts one ``python -m chimerapy.worker.launcher --replies FD`` when it starts. The
launcher imports what every node process needs (numpy, ZeroMQ, the node host) once, then forks a
node process per request, so that committing a graph does not wait for an interpreter to start
and import per node. A forked process runs :func:`chimerapy.node.host.run` exactly as a process
started with ``python -m chimerapy.node.host`` would (nodes still travel with cloudpickle).

The launcher is single-threaded and makes no ZeroMQ context before it forks. It talks JSON
lines: requests ``{"argv": [...]}`` on its stdin; on the replies pipe ``{"ready": pid}`` once,
``{"pid": pid}`` per request, in order, and ``{"exit": pid, "code": code}`` when a child ends
(``code`` as :attr:`subprocess.Popen.returncode`: negative for a signal). It ends when its stdin
closes or its Worker dies; its children then get SIGTERM (their parent-death signal) and stop.

:class:`Launcher` is the Worker's side; :class:`LaunchedProcess` stands for one child with the
part of the :class:`subprocess.Popen` interface the Worker uses.
"""

from __future__ import annotations

import asyncio
import json
import os
import select
import signal
import subprocess
import sys
import threading
import time

__all__ = ["LaunchedProcess", "Launcher"]


class LaunchedProcess:
    """A node process forked by a :class:`Launcher`: ``pid``, ``poll``, ``wait``, signals."""

    def __init__(self, launcher: Launcher, pid: int) -> None:
        self.launcher = launcher
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        """The exit code once the process has ended, else None."""
        if self.returncode is None:
            self.returncode = self.launcher.returncode(self.pid)
        return self.returncode

    def wait(self, timeout: float) -> int | None:
        """Block up to ``timeout`` seconds for the process to end; returns its code or None."""
        deadline = time.monotonic() + timeout
        while self.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.returncode

    def terminate(self) -> None:
        self._signal(signal.SIGTERM)

    def kill(self) -> None:
        self._signal(signal.SIGKILL)

    def _signal(self, signum: int) -> None:
        if self.poll() is None:
            try:
                os.kill(self.pid, signum)
            except ProcessLookupError:
                pass


class Launcher:
    """The Worker's side of a launcher process.

    Args:
        env: the environment of the launcher, and so of every node process.
    """

    def __init__(self, env: dict[str, str]) -> None:
        replies, self._reply_end = os.pipe()
        try:
            self._popen = subprocess.Popen(
                [sys.executable, "-m", "chimerapy.worker.launcher", "--replies", str(self._reply_end)],
                env=env, stdin=subprocess.PIPE, pass_fds=(self._reply_end,),
            )
        finally:
            os.close(self._reply_end)
        assert self._popen.stdin is not None
        self._stdin = self._popen.stdin
        os.set_blocking(replies, False)
        self._replies = replies
        self._buffer = b""
        self._pids: list[int] = []  # in the order of the requests: the n-th request's pid is [n]
        self._requests = 0
        self._exits: dict[int, int] = {}
        self._lock = threading.Lock()  # the Worker's loop and its shutdown path both read replies
        self.pid = self._popen.pid

    @property
    def alive(self) -> bool:
        return self._popen.poll() is None

    async def spawn(self, argv: list[str], timeout: float = 120.0) -> LaunchedProcess:
        """Fork a node process running ``python -m chimerapy.node.host`` with ``argv``."""
        with self._lock:
            ticket = self._requests  # concurrent spawns each take their own pid, never another's
            self._requests += 1
            self._stdin.write(json.dumps({"argv": argv}).encode() + b"\n")
            self._stdin.flush()
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                self._read()
                if len(self._pids) > ticket:
                    return LaunchedProcess(self, self._pids[ticket])
            if not self.alive:
                raise RuntimeError(f"the node launcher exited with code {self._popen.returncode}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the node launcher did not start a process within {timeout} s")
            await asyncio.sleep(0.002)

    def returncode(self, pid: int) -> int | None:
        """The exit code of the child ``pid`` once it has ended, else None."""
        with self._lock:
            self._read()
            code = self._exits.get(pid)
        if code is None and not self.alive and not os.path.exists(f"/proc/{pid}"):
            return -signal.SIGKILL  # the launcher died before it could report this child
        return code

    def close(self, timeout: float = 5.0) -> None:
        """Ask the launcher to end (its remaining children get SIGTERM), then make sure it did."""
        try:
            self._stdin.close()
        except OSError:
            pass
        try:
            self._popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self._popen.kill()
            self._popen.wait()
        with self._lock:
            self._read()  # the last exit reports
            os.close(self._replies)
            self._replies = -1

    def _read(self) -> None:
        if self._replies < 0:
            return
        try:
            while chunk := os.read(self._replies, 65536):
                self._buffer += chunk
        except (BlockingIOError, OSError):
            pass
        *lines, self._buffer = self._buffer.split(b"\n")
        for line in lines:
            reply = json.loads(line)
            if "pid" in reply:
                self._pids.append(reply["pid"])
            elif "exit" in reply:
                self._exits[reply["exit"]] = reply["code"]


# -- the launcher process ------------------------------------------------------------------------


def _serve(replies: int) -> None:
    """Fork a node process per request on stdin until stdin closes."""
    import gc

    import numpy.random  # noqa: F401 - each child seeds it (numpy loads it on first use)

    from ..node import host as node_host
    from ..records import recorder  # noqa: F401 - the imports every node needs, made once here

    gc.freeze()  # what the imports made stays shared with every child (no copy on write by the GC)

    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_write, False)
    signal.set_wakeup_fd(wake_write)  # SIGCHLD wakes the select below
    signal.signal(signal.SIGCHLD, lambda *_: None)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C goes to the Manager
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))

    def reply(message: dict) -> None:
        os.write(replies, json.dumps(message).encode() + b"\n")

    reply({"ready": os.getpid()})
    pending = b""
    while True:
        readable, _, _ = select.select([0, wake_read], [], [])
        if wake_read in readable:
            os.read(wake_read, 4096)
        for pid, code in _reap():
            reply({"exit": pid, "code": code})
        if 0 not in readable:
            continue
        data = os.read(0, 65536)
        if not data:
            return
        *lines, pending = (pending + data).split(b"\n")
        for line in lines:
            argv = json.loads(line)["argv"]
            pid = os.fork()
            if pid == 0:
                _child(node_host, argv, close=(replies, wake_read, wake_write))
            reply({"pid": pid})


def _child(node_host, argv: list[str], close: tuple[int, ...]) -> None:
    """In the forked process: shed the launcher's plumbing and run the node host."""
    code = 1
    try:
        launcher = os.getppid()
        signal.set_wakeup_fd(-1)
        for signum in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, signal.SIG_DFL)
        for descriptor in close:
            os.close(descriptor)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
        node_host.die_with_parent()
        if os.getppid() != launcher:  # the launcher died while this process was being made
            os._exit(1)
        import numpy

        numpy.random.seed()  # a fork copies the generator's state: give each node its own
        node_host.run(argv)
    finally:
        os._exit(code)


def _reap() -> list[tuple[int, int]]:
    ended: list[tuple[int, int]] = []
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return ended
        if pid == 0:
            return ended
        ended.append((pid, os.waitstatus_to_exitcode(status)))


def main() -> None:
    replies = int(sys.argv[sys.argv.index("--replies") + 1])
    from ..node.host import die_with_parent

    die_with_parent()
    try:
        _serve(replies)
    except SystemExit:
        pass
    os._exit(0)


if __name__ == "__main__":
    main()
