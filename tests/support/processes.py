"""Finding a test's processes, including orphans that left its process tree."""

from __future__ import annotations

import os
import time
import uuid

import psutil

MARK = "CHIMERAPY_TEST_MARK"


def new_marker() -> tuple[str, dict[str, str]]:
    """A unique marker and an environment carrying it (inherited by every descendant)."""
    marker = uuid.uuid4().hex
    return marker, {**os.environ, MARK: marker}


def processes_marked(marker: str) -> list[psutil.Process]:
    """Every live process whose environment carries ``marker``."""
    found = []
    for process in psutil.process_iter(["pid"]):
        try:
            if process.status() != psutil.STATUS_ZOMBIE and process.environ().get(MARK) == marker:
                found.append(process)
        except psutil.Error:
            continue
    return found


def wait_until_gone(marker: str, timeout: float = 15.0) -> list[psutil.Process]:
    """Wait for every marked process to end; return (and kill) those still alive."""
    deadline = time.monotonic() + timeout
    while processes_marked(marker) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = processes_marked(marker)
    for process in left:
        process.kill()
    return left


def end_process(process, grace: float = 15.0) -> None:
    """Ask a subprocess to terminate, wait ``grace`` seconds, then kill it; always reaped."""
    import subprocess

    if process.poll() is None:
        process.terminate()
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)
