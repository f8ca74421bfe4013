"""What a Worker costs its computer: CPU and memory of its process and its node processes.

Sent with the node statistics (see ``Worker._on_node_event``) for the dashboard's plots.
"""

from __future__ import annotations

import os
import time
from typing import Any

import psutil  # type: ignore[import-untyped]  # no stubs in the environment

__all__ = ["ResourceMeter"]


class ResourceMeter:
    """Measures the CPU and memory of a process and all its descendants, at most once per ``every``.

    CPU is the share of one core over the time since the previous measurement (100 = one core
    busy; several cores add up); memory is the sum of the processes' resident sets.

    Args:
        pid: the root process (default: this one).
        every: seconds between two measurements; calls in between return the last one.
    """

    def __init__(self, pid: int | None = None, every: float = 1.0) -> None:
        self.root = psutil.Process(pid or os.getpid())
        self.every = every
        self._known: dict[int, psutil.Process] = {}
        self._last: dict[str, Any] = {}
        self._when = float("-inf")

    def sample(self) -> dict[str, Any]:
        """``{"cpu_percent", "memory_bytes", "processes"}`` of the process tree."""
        now = time.monotonic()
        if now - self._when < self.every and self._last:
            return self._last
        self._when = now
        try:
            tree = [self.root, *self.root.children(recursive=True)]
        except psutil.Error:
            return self._last
        cpu, memory, alive = 0.0, 0, {}
        for process in tree:
            known = self._known.get(process.pid, process)  # the same object keeps its CPU baseline
            try:
                cpu += known.cpu_percent(interval=None)
                memory += known.memory_info().rss
            except psutil.Error:
                continue
            alive[process.pid] = known
        self._known = alive
        self._last = {"cpu_percent": round(cpu, 1), "memory_bytes": memory, "processes": len(alive)}
        return self._last
