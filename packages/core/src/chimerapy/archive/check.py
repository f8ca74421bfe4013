"""Verifying a session: per-stream timing, per-edge delivery, per-Worker clocks, named problems.

:func:`check_session` reads only what the archive holds (stream times, ``meta.json``'s node
statistics and clock offsets, the session log) and returns a :class:`Report`. A problem is
something that cost or may have cost data, named with when it happened:

* a **gap** in a stream: an interval longer than ``gap_factor`` times the median interval and
  at least ``min_gap`` seconds longer than it (streams of at least 10 items);
* **duplicate** times (video, audio, image) and times **out of order**;
* a stream that **ended early** (before its node was asked to stop, by more than a gap) or
  whose times lie **outside the session** (a wrong clock);
* files the loader had to work around (cut short by a crash, transfers never finished);
* per edge (``meta.json["node_stats"]``): chunks **lost**, **skipped** on a latest-only edge,
  **out of order**, producer **restarts**; the statistics hold totals, so these are placed in
  the run's interval;
* per Worker: a **clock jump** (consecutive offset estimates that differ by more than
  ``clock_jump`` plus twice their uncertainties), a Worker **lost** or a node **crashed** (from
  the log), a collection that is **incomplete**, a Worker absent at stop.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from chimerapy.archive.audio import AudioStream
from chimerapy.archive.session import Session, open_session
from chimerapy.archive.stream import Stream

log = logging.getLogger(__name__)

__all__ = ["ClockCheck", "EdgeCheck", "Problem", "Report", "StreamCheck", "check_collected", "check_session"]

_STRICT_KINDS = ("video", "audio", "image")  # kinds where two items at one time are a fault
_MIN_ITEMS = 10


@dataclass(frozen=True)
class Problem:
    """One problem: ``kind`` (e.g. ``"gap"``), a message, and when (Manager time) it began
    (``time``) and ended (``until``; equal for an instant, None when unknown)."""

    kind: str
    message: str
    time: float | None
    until: float | None = None
    stream: str | None = None
    worker: str | None = None
    edge: str | None = None


@dataclass
class StreamCheck:
    """Timing figures of one stream; ``rates`` is its rate in the second from each ``rate_times``."""

    key: str
    worker: str
    node: str
    name: str
    kind: str
    count: int
    start: float
    end: float
    median_interval: float
    longest_gap: float
    longest_gap_at: float | None
    long_intervals: int
    duplicates: int
    out_of_order: int
    notes: list[str]
    rate_times: list[float] = field(default_factory=list, repr=False)
    rates: list[float] = field(default_factory=list, repr=False)


@dataclass
class EdgeCheck:
    """Delivery figures of one edge from the final node statistics."""

    source: str
    target: str
    received: int
    lost: int
    skipped: int
    out_of_order: int
    restarts: int
    latency_p50_ms: float | None
    latency_p99_ms: float | None


@dataclass
class ClockCheck:
    """One Worker's clock offset series and its largest jump."""

    worker: str
    offset: float
    uncertainty: float
    times: list[float] = field(repr=False)
    offsets: list[float] = field(repr=False)
    uncertainties: list[float] = field(repr=False)
    largest_jump: float = 0.0


@dataclass
class Report:
    """What :func:`check_session` found. ``clean`` when there is no problem."""

    session: str
    path: str
    start: float
    end: float
    streams: list[StreamCheck]
    edges: list[EdgeCheck]
    clocks: list[ClockCheck]
    problems: list[Problem]
    notes: list[str]

    @property
    def clean(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        """A few lines for a terminal: the verdict, each stream, each problem with its time."""
        lines = [
            f"session {self.session}: {len(self.streams)} streams, {_duration(self)} s, "
            + ("clean" if self.clean else f"{len(self.problems)} problem(s)")
        ]
        for s in self.streams:
            rate = 1.0 / s.median_interval if s.median_interval > 0 else math.nan
            lines.append(
                f"  {s.worker + '/' if s.worker else ''}{s.key:<28} {s.kind:<8} {s.count:>8} items "
                f"{rate:8.2f}/s  longest gap {s.longest_gap:.3f} s"
            )
        for e in self.edges:
            lines.append(
                f"  edge {e.source} -> {e.target}: received {e.received}, lost {e.lost}, "
                f"skipped {e.skipped}, latency p50 {_ms(e.latency_p50_ms)} p99 {_ms(e.latency_p99_ms)}"
            )
        for c in self.clocks:
            lines.append(
                f"  clock {c.worker}: offset {c.offset * 1000:.3f} ms "
                f"± {c.uncertainty * 1000:.3f} ms, largest jump {c.largest_jump * 1000:.3f} ms"
            )
        for p in self.problems:
            lines.append(f"  PROBLEM {p.kind} {_when(p, self.start)}: {p.message}")
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: the verdict, the problems and every figure except the rate series."""
        data = asdict(self)
        for stream in data["streams"]:
            stream.pop("rate_times"), stream.pop("rates")
        for clock in data["clocks"]:
            clock.pop("times"), clock.pop("offsets"), clock.pop("uncertainties")
        data["clean"] = self.clean
        return _finite(data)


def check_session(
    session: Session | str | Path,
    *,
    gap_factor: float = 5.0,
    min_gap: float = 0.5,
    clock_jump: float = 0.005,
) -> Report:
    """Check a session (a :class:`Session` or its folder); see the module docstring.

    Args:
        gap_factor: an interval is a gap when it exceeds this many median intervals ...
        min_gap: ... and the median by at least this many seconds.
        clock_jump: seconds by which consecutive offset estimates may differ (beyond twice
            their uncertainties) before it counts as a jump.
    """
    if not isinstance(session, Session):
        session = open_session(session)
    problems: list[Problem] = []
    start, end = session.start, session.end
    stop_requests = _stop_requests(session.meta)
    streams = []
    for stream in session.streams:
        check, found = _check_stream(stream, gap_factor, min_gap)
        streams.append(check)
        problems += found
        problems += _placement(stream, check, session, stop_requests.get(stream.node, end), gap_factor, min_gap)
    edges, edge_problems = _check_edges(session.meta, start, end)
    clocks, clock_problems = _check_clocks(session, clock_jump)
    problems += edge_problems + clock_problems + _check_workers(session)
    if not session.complete:
        problems.append(Problem("no_stop", "meta.json has no stop time: the session was cut short",
                                _last_time(session)))
    problems.sort(key=lambda p: (p.time is None, p.time or 0.0))
    return Report(session.id, str(session.path), start, end, streams, edges, clocks, problems,
                  list(session.notes))


def check_collected(path: Path) -> Report | None:
    """Check a session just collected; log the summary. ``None`` if the check itself failed
    (which never fails the collection: the files are already safe)."""
    try:
        report = check_session(path)
    except Exception:
        log.exception("the check of session %s failed", path)
        return None
    log.info("session check:\n%s", report.summary())
    if not report.clean:  # one line: the summary is in meta.json, chimerapy run's output and report
        log.warning("session %s: the check found %d problem(s), the first: %s", report.session,
                    len(report.problems), report.problems[0].message)
    return report


def _check_stream(stream: Stream, gap_factor: float, min_gap: float) -> tuple[StreamCheck, list[Problem]]:
    times = stream.times
    problems: list[Problem] = []
    where = {"stream": stream.key, "worker": stream.worker or None}
    intervals = np.diff(times)
    positive = intervals[intervals > 0]
    median = float(np.median(positive)) if len(positive) else 0.0
    longest, longest_at = (float(intervals.max()), float(times[int(intervals.argmax())])) if len(intervals) else (0.0, None)
    duplicates = int((intervals == 0).sum())
    backwards = np.flatnonzero(intervals < 0)
    threshold = max(gap_factor * median, median + min_gap)
    if len(times) >= _MIN_ITEMS and median > 0:
        for i in np.flatnonzero(intervals > threshold):
            problems.append(Problem("gap", f"{stream.key}: nothing for {intervals[i]:.3f} s "
                                    f"(usually every {median:.3f} s)", float(times[i]),
                                    float(times[i + 1]), **where))
    if len(backwards):
        first = int(backwards[0])
        problems.append(Problem("out_of_order", f"{stream.key}: {len(backwards)} times go backwards "
                                f"(first by {-intervals[first]:.3f} s)", float(times[first + 1]),
                                float(times[first]), **where))
    if duplicates and stream.kind in _STRICT_KINDS:
        first = int(np.flatnonzero(intervals == 0)[0])
        problems.append(Problem("duplicate", f"{stream.key}: {duplicates} items share a time with "
                                "the one before", float(times[first]), None, **where))
    for note in stream.notes:
        problems.append(Problem("file", f"{stream.key}: {note}", stream.end if stream.count else None,
                                stream=stream.key, worker=stream.worker or None))
    rate_times, rates = _rate_series(stream)
    check = StreamCheck(stream.key, stream.worker, stream.node, stream.name, stream.kind, stream.count,
                        stream.start, stream.end, median, longest, longest_at,
                        int((intervals > 2 * median).sum()) if median > 0 else 0,
                        duplicates, len(backwards), list(stream.notes), rate_times, rates)
    return check, problems


def _rate_series(stream: Stream) -> tuple[list[float], list[float]]:
    """Items per second (samples per second for audio) in one-second bins."""
    times = stream.times
    if len(times) < 2 or not np.isfinite(times).all():
        return [], []
    first, last = float(times.min()), float(times.max())
    edges = np.arange(first, last + 1.0, 1.0)
    weights = None
    if isinstance(stream, AudioStream):
        index = stream.samples().block_index
        weights = np.diff(np.append(index, stream.layout.frames)).astype(np.float64)
    counts, _ = np.histogram(times, bins=edges, weights=weights)
    return edges[:-1].tolist(), counts.astype(float).tolist()


def _placement(stream: Stream, check: StreamCheck, session: Session, stop: float,
               gap_factor: float, min_gap: float) -> list[Problem]:
    if not stream.count:
        return []
    where = {"stream": stream.key, "worker": stream.worker or None}
    problems = []
    created = session.meta.get("created")
    low = float(created) - 1.0 if isinstance(created, (int, float)) else session.start - 60.0
    high = session.end + 5.0 if session.complete else math.inf
    outside = (stream.times < low) | (stream.times > high)
    if outside.any():
        first = float(stream.times[int(np.argmax(outside))])
        problems.append(Problem("outside_session", f"{stream.key}: {int(outside.sum())} times lie "
                                "outside the session (is a clock wrong?)", first, None, **where))
    threshold = max(gap_factor * check.median_interval, check.median_interval + min_gap)
    if (session.complete and check.count >= _MIN_ITEMS and check.median_interval > 0
            and math.isfinite(stop) and stop - stream.end > threshold):
        problems.append(Problem("ended_early", f"{stream.key}: ended {stop - stream.end:.3f} s "
                                "before its node was asked to stop", stream.end, stop, **where))
    return problems


def _stop_requests(meta: dict[str, Any]) -> dict[str, float]:
    stats = meta.get("node_stats") or {}
    return {node: float(s["stop_requested_at"]) for node, s in stats.items()
            if isinstance(s, dict) and isinstance(s.get("stop_requested_at"), (int, float))}


def _check_edges(meta: dict[str, Any], start: float, end: float) -> tuple[list[EdgeCheck], list[Problem]]:
    edges, problems = [], []
    for target, stats in sorted((meta.get("node_stats") or {}).items()):
        if not isinstance(stats, dict):
            continue
        for source, e in sorted((stats.get("inputs") or {}).items()):
            check = EdgeCheck(source, target, int(e.get("received", 0)), int(e.get("lost", 0)),
                              int(e.get("skipped", 0)), int(e.get("out_of_order", 0)),
                              int(e.get("restarts", 0)), e.get("latency_p50_ms"), e.get("latency_p99_ms"))
            edges.append(check)
            name = f"{source} -> {target}"
            for kind, count, what in (("lost", check.lost, "chunks lost"),
                                      ("skipped", check.skipped, "chunks skipped (latest-only edge)"),
                                      ("edge_out_of_order", check.out_of_order, "chunks out of order"),
                                      ("producer_restarted", check.restarts, "producer restarts")):
                if count:
                    problems.append(Problem(kind, f"edge {name}: {count} {what} during the run "
                                            "(the statistics give totals, not times)", start, end, edge=name))
    return edges, problems


def _check_clocks(session: Session, clock_jump: float) -> tuple[list[ClockCheck], list[Problem]]:
    checks, problems = [], []
    for worker, series in sorted(session.clock_offsets.items()):
        steps = np.abs(np.diff(series.offsets))
        allowed = clock_jump + 2 * (series.uncertainties[1:] + series.uncertainties[:-1])
        largest = float(steps.max()) if len(steps) else 0.0
        for i in np.flatnonzero(steps > allowed):
            problems.append(Problem("clock_jump", f"the clock of Worker {worker} jumped by "
                                    f"{(series.offsets[i + 1] - series.offsets[i]) * 1000:.1f} ms "
                                    f"(uncertainty {series.uncertainties[i + 1] * 1000:.1f} ms)",
                                    float(series.times[i]), float(series.times[i + 1]), worker=worker))
        checks.append(ClockCheck(worker, series.offset, series.uncertainty, series.times.tolist(),
                                 series.offsets.tolist(), series.uncertainties.tolist(), largest))
    return checks, problems


def _check_workers(session: Session) -> list[Problem]:
    problems = []
    lost: dict[str, float] = {}
    for record in session.log():
        if record.message.startswith("Worker LOST"):
            lost.setdefault(record.worker, record.time)
            problems.append(Problem("worker_lost", f"Worker {record.worker} was lost (stopped answering)",
                                    record.time, worker=record.worker))
        elif record.level == "ERROR" and " raised in " in record.message:
            first = record.message.splitlines()[0]
            problems.append(Problem("node_error", first, record.time, worker=record.worker))
    meta = session.meta
    collected = meta.get("collected") or {}
    for worker, result in sorted(collected.items()):
        if isinstance(result, dict) and not result.get("complete", True):
            detail = result.get("error") or f"missing {result.get('missing')}"
            problems.append(Problem("collect_incomplete", f"files of Worker {worker} did not all "
                                    f"arrive: {detail}", _worker_time(session, worker, lost), worker=worker))
    mapping = meta.get("mapping") or {}
    stats = meta.get("node_stats")
    if session.complete and isinstance(stats, dict):
        for worker, nodes in sorted(mapping.items()):
            absent = [n for n in nodes if n not in stats]
            if absent and len(absent) == len(nodes):
                problems.append(Problem("worker_absent_at_stop", f"Worker {worker} sent no final "
                                        f"statistics for {', '.join(absent)} (it was gone at stop)",
                                        _worker_time(session, worker, lost), worker=worker))
    return problems


def _worker_time(session: Session, worker: str, lost: dict[str, float]) -> float | None:
    """When a Worker went: the log's "Worker LOST", else the end of its last stream."""
    return lost.get(worker, _last_time(session, worker))


def _last_time(session: Session, worker: str | None = None) -> float | None:
    ends = [s.end for s in session.streams if s.count and (worker is None or s.worker == worker)]
    return max(ends) if ends else None


def _duration(report: Report) -> str:
    value = report.end - report.start
    return f"{value:.1f}" if math.isfinite(value) else "?"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} ms"


def _when(problem: Problem, start: float) -> str:
    if problem.time is None:
        return "(time unknown)"
    offset = f"t+{problem.time - start:.3f} s" if math.isfinite(start) else f"t={problem.time:.3f}"
    if problem.until is not None and problem.until != problem.time:
        return f"{offset} .. t+{problem.until - start:.3f} s" if math.isfinite(start) else offset
    return offset


def _finite(value: Any) -> Any:
    """Replace NaN and infinities (not valid JSON) by None, recursively."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value
