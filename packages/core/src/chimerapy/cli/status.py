"""What ``chimerapy run`` shows while it runs and collects, drawn with :mod:`rich`.

:class:`StatusView` keeps one table per node (Worker, state, rate, received, lost, skipped,
latency, errors) redrawn in place on a terminal, printed now and then elsewhere (a log file, a
pipe); :class:`CollectProgress` shows each Worker's collection with bytes, speed and time left.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any, TextIO

from rich import box
from rich.console import Console
from rich.live import Live
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["HEADERS", "CollectProgress", "StatusView", "node_rows", "node_table"]

HEADERS = ["node", "worker", "state", "rate", "recv", "lost", "skip", "p50 ms", "err"]
LEGEND = "rate: steps/s · recv, lost, skip: input chunks · p50: input latency"


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


def node_table(title: str, rows: list[list[str]]) -> Table:
    """The status table: names on the left, numbers right-aligned, problems in colour."""
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False,
                  padding=(0, 1, 0, 0), caption=LEGEND, caption_justify="left")  # fits 80 columns
    for header in HEADERS:
        table.add_column(header, justify="left" if header in ("node", "worker", "state") else "right",
                         no_wrap=True)
    for row in rows:
        styles = {"lost": "yellow", "skip": "yellow", "err": "bold red"}
        cells = [f"[{styles[h]}]{c}[/]" if h in styles and c not in ("0", "-") else c for h, c in zip(HEADERS, row)]
        table.add_row(*cells, style="red" if row[2] in ("failed", "error") else None)
    return table


class StatusView:
    """Draws the node table; on a terminal it redraws in place, elsewhere it prints now and then.

    Use as a context manager around the updates.

    Args:
        stream: where to draw.
        every: on a non-terminal, print one table per this many updates.
    """

    def __init__(self, stream: TextIO = sys.stdout, every: int = 5) -> None:
        self.console = Console(file=stream, width=None if stream.isatty() else 120)
        self.live = self.console.is_terminal
        self.every = every
        self._updates = 0
        self._display: Live | None = None

    def __enter__(self) -> Self:
        if self.live:
            self._display = Live(console=self.console, auto_refresh=False, transient=False)
            self._display.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._display is not None:
            self._display.stop()
            self._display = None

    def update(self, title: str, rows: list[list[str]]) -> None:
        self._updates += 1
        table = node_table(title, rows)
        if self._display is not None:
            self._display.update(table, refresh=True)
        elif (self._updates - 1) % self.every == 0:
            self.console.print(table)


class CollectProgress:
    """Each Worker's collection as a bar with bytes done, speed and time left (a line per Worker
    when not on a terminal). Call it as the ``progress`` callback of ``Manager.collect``."""

    def __init__(self, stream: TextIO = sys.stdout) -> None:
        self.console = Console(file=stream)
        self._progress: Progress | None = None
        self._tasks: dict[str, TaskID] = {}
        self._done: set[str] = set()

    def __enter__(self) -> Self:
        if self.console.is_terminal:
            self._progress = Progress(TextColumn("collecting {task.description}"), BarColumn(), DownloadColumn(),
                                      TransferSpeedColumn(), TimeRemainingColumn(), console=self.console)
            self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    def __call__(self, worker: str, path: str, done: int, total: int) -> None:
        if self._progress is None:
            if done >= total and worker not in self._done:
                self._done.add(worker)
                self.console.print(f"collected {worker}: {total / 1e6:.1f} MB")
            return
        if worker not in self._tasks:
            self._tasks[worker] = self._progress.add_task(worker, total=total)
        self._progress.update(self._tasks[worker], completed=done, total=total)
