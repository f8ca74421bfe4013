"""Bounded subprocesses for the driver: own process group, hard timeout, nothing left behind.

Every command runs in a new session (its own process group) with its output in a log
file, and carries ``CHIMERAPY_BENCH_SESSION=<id>`` in its environment. On timeout the
group gets SIGTERM, then SIGKILL after a grace period; the group is killed again after
a normal exit in case the leader left children behind. :func:`kill_all` (registered
at exit and run on SIGTERM / Ctrl-C) kills every live group and then any process that
still carries this session's id, whatever it did to its process group.
"""

from __future__ import annotations

import atexit
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

SESSION_ENV = "CHIMERAPY_BENCH_SESSION"
SESSION_ID = uuid.uuid4().hex[:12]
KILL_GRACE_S = 5.0
_LIVE: dict[int, subprocess.Popen[bytes]] = {}


@dataclass(frozen=True)
class Outcome:
    """How a bounded command ended."""

    returncode: int | None
    timed_out: bool
    seconds: float
    output_tail: str


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _ours(proc: psutil.Process) -> bool:
    try:
        return bool(proc.environ().get(SESSION_ENV) == SESSION_ID)
    except psutil.Error:
        return False


def _stragglers(pgid: int) -> list[psutil.Process]:
    """Processes of group ``pgid`` that carry this session's id."""
    found = []
    for proc in psutil.process_iter(["pid"]):
        try:
            if os.getpgid(proc.pid) == pgid and _ours(proc):
                found.append(proc)
        except (OSError, psutil.Error):
            continue
    return found


def kill_group(proc: subprocess.Popen[bytes], grace_s: float = KILL_GRACE_S) -> None:
    """SIGTERM the group led by ``proc``, SIGKILL it after ``grace_s``, then its stragglers.

    The group is signalled only while its leader is alive (so the id cannot have been
    reused); afterwards only members carrying this session's id are killed.
    """
    if proc.poll() is None:
        _signal_group(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            _signal_group(proc.pid, signal.SIGKILL)
            proc.wait(timeout=grace_s)
    for straggler in _stragglers(proc.pid):
        try:
            straggler.kill()
        except psutil.Error:
            pass


def run(
    cmd: Sequence[str],
    *,
    timeout_s: float,
    log_path: Path,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> Outcome:
    """Run ``cmd`` to completion or until ``timeout_s``, output appended to ``log_path``."""
    child_env = {**os.environ, **(env or {}), SESSION_ENV: SESSION_ID}
    began = time.monotonic()
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            list(cmd),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=child_env,
            cwd=cwd,
            start_new_session=True,
        )
    _LIVE[proc.pid] = proc
    timed_out = False
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        timed_out = True
    finally:
        kill_group(proc)
        _LIVE.pop(proc.pid, None)
    tail = log_path.read_text(errors="replace")[-3000:] if log_path.exists() else ""
    return Outcome(
        None if timed_out else proc.returncode, timed_out, time.monotonic() - began, tail
    )


def sweep() -> list[int]:
    """Kill every process (but this one) carrying this session's id; return their pids."""
    killed = []
    for proc in psutil.process_iter(["pid"]):
        if proc.pid != os.getpid() and _ours(proc):
            try:
                proc.kill()
                killed.append(proc.pid)
            except psutil.Error:
                continue
    return killed


def kill_all() -> None:
    """Kill every live group started here, then sweep stragglers of this session."""
    for proc in list(_LIVE.values()):
        kill_group(proc, grace_s=1.0)
        _LIVE.pop(proc.pid, None)
    sweep()


def _on_sigterm(signum: int, _frame: Any) -> None:
    raise SystemExit(f"benchmark driver stopped by signal {signum}")


def install_cleanup() -> None:
    """Kill children at exit and turn SIGTERM into a clean exit (Ctrl-C already is)."""
    atexit.register(kill_all)
    signal.signal(signal.SIGTERM, _on_sigterm)
