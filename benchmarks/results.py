"""Run records, their medians over repeats, and the JSON file a run writes."""

from __future__ import annotations

import json
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

OK, FAILED, UNSUPPORTED, SKIPPED = "ok", "failed", "unsupported", "skipped"
TEARDOWN_PHASES = ("stop", "stop_only", "shutdown")


@dataclass
class Record:
    """One attempt of one workload on one system (or why there was none)."""

    system: str
    workload: str
    repeat: int
    status: str
    reason: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    detail: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_result(
        cls, system: str, workload: str, repeat: int, result: dict[str, Any], quiet: dict[str, Any]
    ) -> Record:
        """A record from a runner's ``result.json`` (phases become metrics too).

        A run whose streaming figures are complete but whose stop or shutdown failed
        counts as successful for those figures; its tear-down figures stay empty and
        the failure is kept as the reason.
        """
        metrics = {**result.get("metrics", {}), **result.get("phases", {})}
        detail = {
            key: result.get(key)
            for key in ("notes", "absent", "leftover_processes", "wall_s", "traceback", "nodes")
        }
        detail["quiet"] = quiet
        teardown_only = result.get("phase") in TEARDOWN_PHASES and bool(result.get("metrics"))
        status = OK if result.get("ok") or teardown_only else FAILED
        return cls(system, workload, repeat, status, result.get("error"), metrics, detail)


@dataclass
class Cell:
    """All repeats of one workload on one system, reduced to medians."""

    status: str
    reason: str | None
    median: dict[str, float]
    values: dict[str, list[float]]
    runs_ok: int
    runs_failed: int
    absent: dict[str, str] = field(default_factory=dict)


def _median_by_metric(
    records: list[Record],
) -> tuple[dict[str, float], dict[str, list[float]]]:
    values: dict[str, list[float]] = {}
    for record in records:
        for metric, value in record.metrics.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                values.setdefault(metric, []).append(float(value))
    return {m: statistics.median(v) for m, v in values.items()}, values


def aggregate(records: list[Record]) -> dict[str, dict[str, Cell]]:
    """Cells by system, then workload key: medians over the successful repeats."""
    grouped: dict[tuple[str, str], list[Record]] = {}
    for record in records:
        grouped.setdefault((record.system, record.workload), []).append(record)
    summary: dict[str, dict[str, Cell]] = {}
    for (system, workload), group in grouped.items():
        ok = [r for r in group if r.status == OK]
        failed = [r for r in group if r.status == FAILED]
        median, values = _median_by_metric(ok)
        if ok:
            status = OK
            troubled = failed + [r for r in ok if r.reason]
            reason = (
                f"{len(troubled)} of {len(group)} runs had an error: {troubled[0].reason}"
                if troubled
                else None
            )
        else:
            status = group[0].status
            reason = group[0].reason
        absent = {k: v for r in group for k, v in (r.detail.get("absent") or {}).items()}
        summary.setdefault(system, {})[workload] = Cell(
            status, reason, median, values, len(ok), len(failed), absent
        )
    return summary


def load(path: Path) -> tuple[dict[str, Any], list[Record]]:
    """Header and records of a JSON file written by :func:`write`."""
    document = json.loads(path.read_text())
    records = [Record(**record) for record in document.pop("records")]
    document.pop("summary", None)
    return document, records


def write(
    path: Path,
    *,
    header: dict[str, Any],
    records: list[Record],
    summary: dict[str, dict[str, Cell]],
) -> None:
    """Write the run's JSON: header, medians per system and workload, then every record."""
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {
        **header,
        "summary": {s: {w: asdict(c) for w, c in cells.items()} for s, cells in summary.items()},
        "records": [asdict(r) for r in records],
    }
    path.write_text(json.dumps(document, indent=1, default=str))
