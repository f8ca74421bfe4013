"""The printed tables: figures, ratios to the best limit, ratios of the subject to each peer.

Every cell that has no number says why through a numbered note (not supported,
skipped, failed); nothing is invented. Arrows tell the direction: ``↑`` higher is
better, ``↓`` lower is better. A ratio is ``system / reference`` for that figure.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from benchmarks.results import OK, Cell
from benchmarks.workloads import Figure, Workload

LABEL_WIDTH = 44
CELL_WIDTH = 11
RowsFor = Callable[[Workload, Figure], list[str] | None]


@dataclass(frozen=True)
class Column:
    """A system as the report sees it."""

    name: str
    kind: str
    skipped: str | None = None
    version: str | None = None
    machine: str = ""  # how busy the machine was before this system ran


class Notes:
    """Numbered reasons for empty cells, each written once."""

    def __init__(self) -> None:
        self._numbers: dict[str, int] = {}

    def ref(self, reason: str) -> str:
        number = self._numbers.setdefault(reason, len(self._numbers) + 1)
        return f"[{number}]"

    def render(self) -> list[str]:
        return [f"  [{n}] {reason}" for reason, n in self._numbers.items()]


def format_value(value: float, figure: Figure) -> str:
    """Human-sized number: counts as integers, others with 3-4 significant digits."""
    if not figure.ratio:
        return f"{value:,.0f}"
    magnitude = abs(value)
    if magnitude >= 1000:
        return f"{value:,.0f}"
    if magnitude >= 100:
        return f"{value:.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def format_ratio(value: float | None, reference: float | None) -> str:
    """``value / reference`` as ``1.23x``, or ``-`` when either is missing or zero."""
    if value is None or not reference:
        return "-"
    ratio = value / reference
    return f"{ratio:,.0f}x" if ratio >= 100 else f"{ratio:.2f}x"


class Report:
    """Lays out one run's summary for a terminal."""

    def __init__(
        self,
        summary: dict[str, dict[str, Cell]],
        workloads: list[Workload],
        columns: list[Column],
        subject: str,
    ) -> None:
        self.summary = summary
        self.workloads = workloads
        self.columns = columns
        self.subject = subject
        self.notes = Notes()

    # -- lookups -----------------------------------------------------------------------
    def value(self, system: str, workload: Workload, figure: Figure) -> tuple[float | None, str]:
        """The median of a figure, or ``None`` and the note explaining why."""
        column = next(c for c in self.columns if c.name == system)
        if column.skipped:
            return None, self.notes.ref(f"skipped: {column.skipped}")
        cell = self.summary.get(system, {}).get(workload.key)
        if cell is None:
            return None, "-"
        if cell.status != OK:
            return None, self.notes.ref(f"{cell.status}: {cell.reason}")
        value = cell.median.get(figure.metric)
        if value is None:
            why = cell.absent.get(figure.metric) or cell.reason
            return None, self.notes.ref(why or f"{figure.metric} not measured (too few frames)")
        return value, format_value(value, figure)

    def best_limit(self, workload: Workload, figure: Figure) -> float | None:
        values = [
            self.value(c.name, workload, figure)[0] for c in self.columns if c.kind == "limit"
        ]
        present = [v for v in values if v]
        if not present:
            return None
        return max(present) if figure.higher_is_better else min(present)

    def has_results(self, system: str) -> bool:
        return any(cell.status == OK for cell in self.summary.get(system, {}).values())

    # -- tables ------------------------------------------------------------------------
    def _table(self, title: str, heads: list[str], rows_for: RowsFor) -> list[str]:
        lines = ["", title, "=" * len(title)]
        for workload in self.workloads:
            rows = []
            for figure in workload.figures:
                cells = rows_for(workload, figure)
                if cells is None:
                    continue
                arrow = "↑" if figure.higher_is_better else "↓"
                unit = f" ({figure.unit})" if figure.unit else ""
                label = f"  {arrow} {figure.label}{unit}"
                rows.append(
                    f"{label:<{LABEL_WIDTH}}" + "".join(f"{c:>{CELL_WIDTH}}" for c in cells)
                )
            if rows:
                head = f"{workload.title:<{LABEL_WIDTH}}"
                lines += ["", head + "".join(f"{h:>{CELL_WIDTH}}" for h in heads), *rows]
        return lines

    def figures_table(self) -> list[str]:
        names = [c.name for c in self.columns]
        return self._table(
            "Figures (median over repeats)",
            names,
            lambda w, f: [self.value(n, w, f)[1] for n in names],
        )

    def limit_table(self) -> list[str]:
        names = [c.name for c in self.columns if c.kind != "limit"]
        if not names or not any(c.kind == "limit" for c in self.columns):
            return []

        def rows(workload: Workload, figure: Figure) -> list[str] | None:
            best = self.best_limit(workload, figure) if figure.ratio else None
            if best is None:
                return None
            return [format_ratio(self.value(n, workload, figure)[0], best) for n in names]

        return self._table("Ratio to the best limit (system / best of the limits)", names, rows)

    def peer_table(self) -> list[str]:
        candidates = [c.name for c in self.columns if c.kind != "limit"]
        subject = (
            self.subject
            if self.has_results(self.subject)
            else next((n for n in candidates if self.has_results(n)), None)
        )
        if subject is None:
            return []
        peers = [n for n in candidates if n != subject]
        if not peers:
            return []
        title = f"Ratio of {subject} to each peer ({subject} / peer)"
        if subject != self.subject:
            title += f" - {self.subject} has no results, so {subject} stands in"

        def rows(workload: Workload, figure: Figure) -> list[str] | None:
            if not figure.ratio:
                return None
            mine = self.value(subject, workload, figure)[0]
            if mine is None:
                return None
            return [format_ratio(mine, self.value(p, workload, figure)[0]) for p in peers]

        return self._table(title, peers, rows)

    def systems_table(self) -> list[str]:
        lines = ["", "Systems", "======="]
        for column in self.columns:
            state = f"skipped: {column.skipped}" if column.skipped else column.machine
            lines.append(f"  {column.name:<11} {column.kind:<8} {column.version or '-':<9} {state}")
        return lines

    def render(self) -> str:
        """All tables, then the numbered notes."""
        lines = self.systems_table() + self.figures_table() + self.limit_table()
        lines += self.peer_table()
        notes = self.notes.render()
        if notes:
            lines += ["", "Notes", "====="] + notes
        return "\n".join(lines)
