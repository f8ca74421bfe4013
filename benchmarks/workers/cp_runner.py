"""Runner for the ChimeraPy family: Manager, Workers, graph, commit, start, stop, shutdown.

Written against the seed API (``Manager``, ``Worker``, ``Graph``, ``commit_graph``,
``start``, ``stop``, ``shutdown``). The differences between family members are kept
to three: which package is imported (see :mod:`cp_nodes`), whether the mapping names
Workers and Nodes by *name* (this project) or by *id* (0.0.10 and engine), and whether
calls return futures (engine), which :func:`resolve` waits for.

Usage: ``python -m benchmarks.workers.cp_runner SPEC.json``
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
from typing import Any

from benchmarks.workers import cp_nodes
from benchmarks.workers.cp_nodes import ROLES, cp
from benchmarks.workers.harness import Run, free_port, run_main

CALL_TIMEOUT_S = 180.0
QUIET_LOGGERS = (
    "chimerapy",
    "chimerapy-worker",
    "chimerapy-networking",
    "chimerapy-node",
    "chimerapy-subprocess",
    "chimerapy-engine",
    "chimerapy-engine-worker",
    "chimerapy-engine-networking",
    "chimerapy-engine-node",
)
MAP_BY_NAME = {"chimerapy": True, "cp0010": False, "engine": False}


def resolve(value: Any, timeout: float = CALL_TIMEOUT_S) -> Any:
    """Wait for a future (chimerapy-engine) or pass a plain return value through."""
    result = getattr(value, "result", None)
    return result(timeout=timeout) if callable(result) else value


def quiet_logging() -> None:
    """Raise framework loggers to WARNING (0.0.10 logs every message at DEBUG)."""
    names = set(QUIET_LOGGERS) | {
        n for n in logging.root.manager.loggerDict if n.startswith("chimerapy")
    }
    for name in names:
        logging.getLogger(name).setLevel(logging.WARNING)


class RemoteHosts:
    """Workers on hosts of their own: one network namespace each, joined to this one by a
    virtual cable (``tests/support/netns.py``), running ``cp-worker`` (this project only)."""

    def __init__(self, names: list[str]) -> None:
        self.names = list(names)
        self._hosts = None
        self._processes: list[subprocess.Popen] = []

    def start_workers(self, manager: Any) -> None:
        """Make the hosts, start a ``cp-worker`` on each and wait until all have joined."""
        if not self.names:
            return
        from tests.support import netns

        reason = netns.available()
        if reason:
            raise RuntimeError(f"cross-host workloads need network namespaces: {reason}")
        self._hosts = netns.Hosts(len(self.names))
        for name, host in zip(self.names, self._hosts.hosts):
            self._processes.append(subprocess.Popen(host.command(
                sys.executable, "-m", "chimerapy.cli.worker", "--ip", host.gateway, "--port",
                str(manager.port), "--name", name, "--fingerprint", manager.fingerprint),
                env={**os.environ, "CHIMERAPY_TOKEN": manager.token}))
        if not manager.wait_for_workers(self.names, timeout=60):
            raise RuntimeError(f"the Workers on {self.names} did not join within 60 s")

    def close(self) -> None:
        """End the remote Workers (they end their nodes), then remove the hosts."""
        for process in self._processes:
            process.send_signal(signal.SIGINT)
        for process in self._processes:
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._hosts is not None:
            self._hosts.close()


def body(run: Run) -> None:
    """Build the spec's graph over its Workers, then time each lifecycle step."""
    spec = run.spec
    quiet_logging()
    by_name = MAP_BY_NAME.get(spec.system, True)
    spec_path = str(spec.result_path.with_name("spec.json"))
    logdir = tempfile.mkdtemp(prefix="logs-", dir=spec.run_dir)
    run.note(f"package: {cp.__name__} (engine API: {cp_nodes.ENGINE})")

    hosts = RemoteHosts(spec.remote_workers)
    with run.phase("cluster"):
        port = free_port()
        manager = (cp.Manager(logdir=logdir, port=port, host="0.0.0.0") if hosts.names
                   else cp.Manager(logdir=logdir, port=port))
        host = getattr(manager, "host", "127.0.0.1")
        port = getattr(manager, "port", port)
        workers = {
            name: cp.Worker(name=name, port=0, delete_temp=True)
            for name in spec.worker_assignment() if name not in hosts.names
        }
        for worker in workers.values():
            if resolve(worker.connect(host=host, port=port)) is False:
                raise RuntimeError(f"{worker} could not connect to the Manager")
        hosts.start_workers(manager)

    def shutdown_all() -> None:
        try:
            resolve(manager.shutdown())
            for worker in workers.values():
                resolve(worker.shutdown())
        finally:
            hosts.close()

    shut_down = False
    try:
        nodes = {
            name: ROLES[spec.role_of(name)](name, spec_path=spec_path) for name in spec.node_names
        }
        graph = cp.Graph()  # add_node / add_edge: the graph calls all three members share
        for node in nodes.values():
            graph.add_node(node)
        for src, dst in spec.edges:
            graph.add_edge(nodes[src], nodes[dst])
        mapping = {  # Workers and Nodes by name (this project) or by id (0.0.10, engine)
            (name if by_name or name in hosts.names else workers[name].id):
                [n if by_name else nodes[n].id for n in names]
            for name, names in spec.worker_assignment().items()
        }
        run.setup_began_t = time.time()
        with run.phase("setup"):
            if resolve(manager.commit_graph(graph=graph, mapping=mapping)) is False:
                raise RuntimeError("commit_graph returned False")
        with run.phase("start"):
            resolve(manager.start())
        run.window_begin()
        time.sleep(spec.duration_s)
        run.window_end()
        with run.phase("stop"):
            with run.phase("stop_only"):
                resolve(manager.stop())
            with run.phase("shutdown"):
                shut_down = True
                shutdown_all()
    finally:
        if not shut_down:
            shutdown_all()


if __name__ == "__main__":
    run_main(body)
