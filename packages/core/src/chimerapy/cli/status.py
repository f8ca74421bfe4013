"""The live terminal status of a running pipeline: one row per node, redrawn in place."""

from __future__ import annotations

import sys
from typing import Any, TextIO

from .table import render

__all__ = ["StatusView", "node_rows"]

HEADERS = ["node", "worker", "state", "rate/s", "received", "lost", "skipped", "latency ms", "errors"]


def node_rows(status: dict[str, Any], placement: dict[str, str]) -> list[list[str]]:
    """Rows of the status table from ``Manager.status()`` and node -> Worker placement."""
    errors: dict[str, int] = {}
    for error in status.get("errors", []):
        errors[error["node"]] = errors.get(error["node"], 0) + 1
    rows = []
    for name, node in status.get("nodes", {}).items():
        stats = node.get("stats") or {}
        inputs = (stats.get("inputs") or {}).values()
        latencies = [i["latency_p50_ms"] for i in inputs if i.get("latency_p50_ms") is not None]
        rows.append([
            name,
            placement.get(name, "?"),
            node.get("state") or "?",
            f"{stats.get('rate', 0):.1f}",
            str(sum(i.get("received", 0) for i in inputs)) if inputs else "-",
            str(sum(i.get("lost", 0) for i in inputs)) if inputs else "-",
            str(sum(i.get("skipped", 0) for i in inputs)) if inputs else "-",
            f"{max(latencies):.2f}" if latencies else "-",
            str(errors.get(name, 0) + stats.get("step_errors", 0)),
        ])
    return rows


class StatusView:
    """Draws the table; on a terminal it redraws in place, elsewhere it prints now and then.

    Args:
        stream: where to draw.
        every: on a non-terminal, print one table per this many updates.
    """

    def __init__(self, stream: TextIO = sys.stdout, every: int = 5) -> None:
        self.stream = stream
        self.live = stream.isatty()
        self.every = every
        self._drawn_lines = 0
        self._updates = 0

    def update(self, title: str, rows: list[list[str]]) -> None:
        self._updates += 1
        if not self.live and (self._updates - 1) % self.every:
            return
        text = f"{title}\n{render(HEADERS, rows)}\n"
        if self.live and self._drawn_lines:
            self.stream.write(f"\x1b[{self._drawn_lines}F\x1b[J")
        self.stream.write(text)
        self.stream.flush()
        self._drawn_lines = text.count("\n")
