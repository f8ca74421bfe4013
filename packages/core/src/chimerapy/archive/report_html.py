"""``report.html`` for a checked session, with its plots saved as PNG files beside it.

Plots need matplotlib (the ``plot`` extra); without it the page is written without them.
Files are created readable by their owner only.
"""

from __future__ import annotations

import datetime
import html
import logging
import math
from pathlib import Path
from typing import Any

from chimerapy.archive.check import Problem, Report
from chimerapy.archive.files import private_file

__all__ = ["write_report"]

log = logging.getLogger(__name__)


def write_report(report: Report, folder: Path | None = None) -> Path:
    """Write ``report.html`` (and ``report-*.png``) into ``folder`` (default: the session's).

    Returns:
        The path of ``report.html``.
    """
    folder = Path(folder or report.path)
    images = _plots(report, folder)
    page = _page(report, images)
    target = folder / "report.html"
    with private_file(target) as file:
        file.write(page.encode("utf-8"))
    return target


def _plots(report: Report, folder: Path) -> list[tuple[str, str]]:
    try:
        from matplotlib.figure import Figure
    except ImportError:
        log.warning("matplotlib is not installed: report.html has no plots "
                    "(pip install 'chimerapy-core[plot]')")
        return []
    images = []
    streams = [s for s in report.streams if s.rates]
    if streams:
        figure = Figure(figsize=(9, 1.6 * len(streams) + 0.6), layout="constrained")
        axes = figure.subplots(len(streams), 1, squeeze=False, sharex=True)[:, 0]
        origin = report.start if math.isfinite(report.start) else streams[0].rate_times[0]
        for ax, stream in zip(axes, streams):
            ax.plot([t - origin for t in stream.rate_times], stream.rates, drawstyle="steps-post", linewidth=1)
            ax.set_ylabel("/s")
            ax.set_title(f"{stream.key} ({stream.kind})", fontsize=9, loc="left")
            for problem in _problems_of(report, stream.key):
                if problem.time is not None:
                    ax.axvline(problem.time - origin, color="red", linewidth=1)
        axes[-1].set_xlabel("seconds since the session's start")
        images.append(_save(figure, folder, "report-rates.png", "Rate of every stream over time (red: problems)"))
    timed = [s for s in report.streams if s.count]
    if timed and math.isfinite(report.start):
        figure = Figure(figsize=(9, 0.35 * len(timed) + 1.2), layout="constrained")
        ax = figure.subplots()
        for row, stream in enumerate(timed):
            ax.plot([stream.start - report.start, stream.end - report.start], [row, row], linewidth=6,
                    marker="|", markersize=12)
        ax.axvline(0, color="black", linewidth=1)
        if math.isfinite(report.end):
            ax.axvline(report.end - report.start, color="black", linewidth=1)
        for problem in report.problems:
            if problem.time is not None:
                ax.axvline(problem.time - report.start, color="red", linewidth=0.8, alpha=0.6)
        ax.set_yticks(range(len(timed)), [s.key for s in timed], fontsize=8)
        ax.set_xlabel("seconds since the session's start (black: start and stop; red: problems)")
        images.append(_save(figure, folder, "report-timeline.png", "Start and end of every stream"))
    clocks = [c for c in report.clocks if c.times]
    if clocks:
        figure = Figure(figsize=(9, 1.8 * len(clocks) + 0.6), layout="constrained")
        axes = figure.subplots(len(clocks), 1, squeeze=False)[:, 0]
        origin = report.start if math.isfinite(report.start) else clocks[0].times[0]
        for ax, clock in zip(axes, clocks):
            times = [t - origin for t in clock.times]
            offsets = [o * 1000 for o in clock.offsets]
            spread = [u * 1000 for u in clock.uncertainties]
            ax.plot(times, offsets, marker=".", linewidth=1)
            ax.fill_between(times, [o - u for o, u in zip(offsets, spread)],
                            [o + u for o, u in zip(offsets, spread)], alpha=0.3)
            ax.set_title(f"Worker {clock.worker}: offset (ms) ± uncertainty", fontsize=9, loc="left")
        axes[-1].set_xlabel("seconds since the session's start")
        images.append(_save(figure, folder, "report-clock.png", "Clock offset of every Worker over time"))
    return images


def _save(figure: Any, folder: Path, name: str, caption: str) -> tuple[str, str]:
    with private_file(folder / name) as file:
        figure.savefig(file, format="png", dpi=90)
    return name, caption


def _problems_of(report: Report, key: str) -> list[Problem]:
    return [p for p in report.problems if p.stream == key]


def _page(report: Report, images: list[tuple[str, str]]) -> str:
    def clock(t: float | None) -> str:
        if t is None or not math.isfinite(t):
            return "?"
        relative = f"t+{t - report.start:.3f} s" if math.isfinite(report.start) else ""
        stamp = datetime.datetime.fromtimestamp(t).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
        return f"{stamp} ({relative})" if relative else stamp

    def table(header: list[str], rows: list[list[Any]]) -> str:
        head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
        return f"<table><tr>{head}</tr>{body}</table>"

    verdict = "clean" if report.clean else f"{len(report.problems)} problem(s)"
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>ChimeraPy session {html.escape(report.session)}</title>",
        ("<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;margin:1em 0}"
        "td,th{border:1px solid #ccc;padding:2px 8px;font-size:90%}.bad{color:#b00}.ok{color:#070}"
        "</style></head><body>"),
        f"<h1>Session {html.escape(report.session)}</h1>",
        (f"<p>{html.escape(clock(report.start))} to {html.escape(clock(report.end))}: "
        f"<b class='{'ok' if report.clean else 'bad'}'>{verdict}</b></p>"),
        "<h2>Problems</h2>",
        table(["kind", "when", "until", "what"],
              [[p.kind, clock(p.time), clock(p.until) if p.until is not None else "", p.message]
               for p in report.problems]) if report.problems else "<p>None.</p>",
        "<h2>Streams</h2>",
        table(["worker", "stream", "kind", "count", "start", "end", "rate /s", "longest gap s",
               "longest gap at", "intervals > 2x median", "duplicates", "out of order"],
              [[s.worker, s.key, s.kind, s.count, clock(s.start), clock(s.end),
                f"{1 / s.median_interval:.2f}" if s.median_interval > 0 else "-",
                f"{s.longest_gap:.3f}", clock(s.longest_gap_at), s.long_intervals, s.duplicates,
                s.out_of_order] for s in report.streams]),
        "<h2>Edges</h2>",
        table(["source", "target", "received", "lost", "skipped", "out of order", "restarts",
               "latency p50 ms", "latency p99 ms"],
              [[e.source, e.target, e.received, e.lost, e.skipped, e.out_of_order, e.restarts,
                e.latency_p50_ms, e.latency_p99_ms] for e in report.edges]) if report.edges
        else "<p>No edge statistics in meta.json.</p>",
        "<h2>Clocks</h2>",
        table(["worker", "offset ms", "uncertainty ms", "largest jump ms", "estimates"],
              [[c.worker, f"{c.offset * 1000:.3f}", f"{c.uncertainty * 1000:.3f}",
                f"{c.largest_jump * 1000:.3f}", len(c.times)] for c in report.clocks]) if report.clocks
        else "<p>No clock offsets in meta.json.</p>",
    ]
    for name, caption in images:
        parts.append(f"<h2>{html.escape(caption)}</h2><img src='{html.escape(name)}' alt='{html.escape(caption)}'>")
    if report.notes:
        parts.append("<h2>Notes</h2><ul>" + "".join(f"<li>{html.escape(n)}</li>" for n in report.notes) + "</ul>")
    parts.append("</body></html>")
    return "\n".join(parts)
