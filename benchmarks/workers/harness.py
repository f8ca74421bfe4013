"""What every runner does around its system: phases, CPU window, reports, cleanup.

A runner body receives a :class:`Run`, wraps each lifecycle step in
``run.phase(name)``, marks the streaming window with :meth:`Run.window_begin` /
:meth:`Run.window_end`, and returns; :func:`run_main` then collects node reports,
summarises them, kills whatever the system left behind and writes ``result.json``.
The result file is rewritten at every phase, so that a runner killed by the driver's
timeout still tells which phase hung.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

import psutil

from benchmarks.metrics import summarize
from benchmarks.probe import window_end_path
from benchmarks.spec import RunSpec

REPORT_WAIT_S = 15.0
REAP_GRACE_S = 3.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def free_ports(count: int) -> list[int]:
    """``count`` distinct TCP ports on 127.0.0.1 that were free a moment ago (all held
    open together while they are picked, so that none is handed out twice)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def tree_cpu_s(pid: int | None = None) -> float:
    """User + system CPU seconds of a process and all its live descendants."""
    root = psutil.Process(pid)
    total = 0.0
    for proc in [root, *root.children(recursive=True)]:
        try:
            times = proc.cpu_times()
            total += times.user + times.system
        except psutil.Error:
            continue
    return total


def _describe(proc: psutil.Process) -> str:
    try:
        return f"{proc.pid} {' '.join(proc.cmdline())[:120]}"
    except psutil.Error:
        return str(proc.pid)


def reap_descendants(grace_s: float = REAP_GRACE_S) -> list[str]:
    """Terminate, then kill, every descendant of this process; describe those found.

    multiprocessing's resource tracker is reaped too but not reported: it is a helper
    of the runner itself, not something the system under test left behind.
    """
    children = psutil.Process().children(recursive=True)
    found = [d for d in map(_describe, children) if "resource_tracker" not in d]
    for child in children:
        try:
            child.terminate()
        except psutil.Error:
            pass
    _, alive = psutil.wait_procs(children, timeout=grace_s)
    for child in alive:
        try:
            child.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(alive, timeout=grace_s)
    return found


class Run:
    """State of one runner process and its ``result.json``."""

    def __init__(self, spec: RunSpec) -> None:
        self.spec = spec
        self.setup_began_t = time.time()
        self.terminated = False
        self._window_begin: tuple[float, float] | None = None
        self.cpu_all_s: float | None = None
        self.window_s: float | None = None
        self.result: dict[str, Any] = {
            "spec": asdict(spec),
            "ok": False,
            "error": None,
            "phase": "init",
            "phases": {},
            "metrics": {},
            "nodes": {},
            "notes": [],
            "absent": {},
        }
        self.save()

    def save(self) -> None:
        """Rewrite ``result.json`` with what is known so far."""
        path = self.spec.result_path
        tmp = Path(f"{path}.tmp")
        tmp.write_text(json.dumps(self.result, indent=2, default=str))
        tmp.replace(path)

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Time one lifecycle step and record it as ``phases[name + '_s']``."""
        self.result["phase"] = name
        self.save()
        began = time.perf_counter()
        yield
        self.result["phases"][f"{name}_s"] = time.perf_counter() - began
        self.save()

    def note(self, text: str) -> None:
        """Attach a remark to the result (shown in the JSON)."""
        self.result["notes"].append(text)

    def absent(self, figure: str, reason: str) -> None:
        """Say why this system has no ``figure`` (e.g. no such lifecycle step)."""
        self.result["absent"][figure] = reason

    def window_begin(self) -> None:
        """Mark the start of streaming for the whole-tree CPU figure."""
        self._window_begin = (time.perf_counter(), tree_cpu_s())

    def window_end(self) -> None:
        """Mark the end of streaming (call before stopping the system); node probes leave
        frames sent after it out of their latency percentiles."""
        window_end_path(self.spec).write_text(repr(time.time()))
        if self._window_begin is not None:
            began, cpu = self._window_begin
            self.cpu_all_s = tree_cpu_s() - cpu
            self.window_s = time.perf_counter() - began

    def collect_reports(self) -> dict[str, dict[str, Any]]:
        """Read the node reports, waiting a little for slow teardowns."""
        deadline = time.monotonic() + (0.5 if self.terminated else REPORT_WAIT_S)
        names = self.spec.node_names
        while True:
            reports = {}
            for name in names:
                try:
                    reports[name] = json.loads(self.spec.report_path(name).read_text())
                except (OSError, ValueError):
                    pass
            if len(reports) == len(names) or time.monotonic() > deadline:
                return reports
            time.sleep(0.1)

    def finish(self) -> None:
        """Summarise, clean up the process tree and write the final result."""
        reports = self.collect_reports()
        missing = sorted(set(self.spec.node_names) - set(reports))
        if missing and not self.result["error"]:
            self.result["error"] = f"no report from node(s): {', '.join(missing)}"
        self.result["nodes"] = reports
        self.result["metrics"] = summarize(
            self.spec,
            reports,
            setup_began_t=self.setup_began_t,
            cpu_all_s=self.cpu_all_s,
            window_s=self.window_s,
        )
        self.result["leftover_processes"] = reap_descendants()
        self.result["ok"] = not self.result["error"] and bool(self.result["metrics"])
        self.save()


_RUNNER_PID = os.getpid()


def _terminate(signum: int, _frame: Any) -> None:
    if os.getpid() != _RUNNER_PID:
        # A node process forked by the system under test inherited this handler:
        # behave exactly as if it had never been installed.
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
        return
    raise SystemExit(f"runner terminated by signal {signum} (driver timeout or Ctrl-C)")


def run_main(body: Callable[[Run], None]) -> None:
    """Run ``body`` on the spec named by ``sys.argv[1]``, always writing a result."""
    run = Run(RunSpec.load(sys.argv[1]))
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGINT, _terminate)
    try:
        body(run)
    except BaseException as exc:  # noqa: BLE001 - every failure goes into the result
        run.terminated = isinstance(exc, (SystemExit, KeyboardInterrupt))
        message = str(exc) or "(no message)"
        run.result["error"] = f"{type(exc).__name__} in phase {run.result['phase']}: {message}"
        run.result["traceback"] = traceback.format_exc(limit=8)
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        try:
            run.finish()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(0)
