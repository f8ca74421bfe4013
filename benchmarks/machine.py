"""The machine: what it is, and waiting until it is quiet enough to measure on."""

from __future__ import annotations

import os
import platform
import sys
import time
from dataclasses import dataclass

import psutil


@dataclass(frozen=True)
class Quiet:
    """Outcome of :func:`wait_quiet`."""

    quiet: bool
    waited_s: float
    busy_percent: float
    load1: float


def describe() -> dict[str, object]:
    """Cores, memory, OS and Python of this machine."""
    return {
        "cores": psutil.cpu_count(logical=True),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "load1": os.getloadavg()[0],
    }


def wait_quiet(*, max_busy_percent: float, settle: int, cap_s: float) -> Quiet:
    """Sample whole-machine CPU use once a second until it stays low, or until ``cap_s``.

    Args:
        max_busy_percent: Busy share of all cores (0-100) below which a sample is quiet.
        settle: Consecutive quiet samples required.
        cap_s: Give up waiting after this long (the run goes on, marked not quiet).
    """
    began = time.monotonic()
    streak = 0
    busy = 100.0
    while True:
        busy = psutil.cpu_percent(interval=1.0)
        streak = streak + 1 if busy <= max_busy_percent else 0
        waited = time.monotonic() - began
        if streak >= settle or waited >= cap_s:
            return Quiet(streak >= settle, round(waited, 1), busy, os.getloadavg()[0])
