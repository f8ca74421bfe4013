"""From node reports to the figures of one run (pure functions, standard library only).

Definitions (the README explains them to readers):

* ``fps``: frames received per second by the slowest sink, over the sink's own window
  from the end of its warm-up to its last reception (see :mod:`benchmarks.probe`).
* ``fps_total`` (``parallel`` graphs only): the sum of every sink's frames per second,
  i.e. what all the independent pairs move together.
* ``lost``: sequence numbers missing between the first and the last one a sink got
  (summed over sinks); ``undelivered``: frames the source sent that a sink never got,
  including the ones still in flight at stop or sent before the sink subscribed.
* ``latency_p50_ms`` / ``latency_p99_ms``: one-way, send to receive, on one host's
  wall clock; with several sinks, the median of their p50 and the worst of their p99.
* ``cpu_ms_per_frame``: CPU used by all node processes per second of streaming
  (each over its own window), divided by the frames per second a sink received
  (mean over sinks; for ``parallel`` graphs, by ``fps_total``, since every pair
  carries frames of its own); ``cpu_ms_per_frame_all`` counts every process of the system
  (Manager, Workers, daemons), sampled by the runner from start to stop.
* ``rss_mb_max``: the largest resident set size of one node process.
"""

from __future__ import annotations

import statistics
from typing import Any

from benchmarks.spec import RunSpec


def summarize(
    spec: RunSpec,
    reports: dict[str, dict[str, Any]],
    *,
    setup_began_t: float,
    cpu_all_s: float | None,
    window_s: float | None,
) -> dict[str, Any]:
    """Reduce the reports of one run to its figures.

    Args:
        spec: The run spec.
        reports: Node reports by node name (missing nodes are simply absent).
        setup_began_t: Wall time when the runner began building the graph.
        cpu_all_s: CPU seconds of the whole process tree from start to stop.
        window_s: Wall seconds from start to stop, as seen by the runner.
    """
    sinks = [reports[name] for name in spec.sinks if name in reports]
    if not sinks:
        return {}
    sent_by_sink = [int(reports.get(spec.source_of(name), {}).get("count", 0))
                    for name in spec.sinks if name in reports]
    sent = sum(sent_by_sink)
    received = statistics.mean(s["count"] for s in sinks)
    latencies = [s["latency_ms"] for s in sinks if s["latency_ms"].get("n")]
    first = [s["first_frame_t"] for s in sinks if s["first_frame_t"]]
    fps_total = sum(s["fps"] for s in sinks)
    fps = fps_total if spec.topology == "parallel" else statistics.mean(s["fps"] for s in sinks)
    per_frame = 1000.0 / fps if fps else None
    cores_all = cpu_all_s / window_s if cpu_all_s and window_s else None
    return {
        "fps": min(s["fps"] for s in sinks),
        **({"fps_total": fps_total, "pairs": len(sinks)} if spec.topology == "parallel" else {}),
        "sent": sent,
        "received": received,
        "lost": sum(s["lost"] for s in sinks),
        "undelivered": sum(max(0, n - s["unique"]) for n, s in zip(sent_by_sink, sinks)) if sent else None,
        "out_of_order": sum(s["out_of_order"] for s in sinks),
        "duplicates": sum(s["duplicates"] for s in sinks),
        "latency_p50_ms": statistics.median(l["p50"] for l in latencies) if latencies else None,
        "latency_p99_ms": max(l["p99"] for l in latencies) if latencies else None,
        "cpu_ms_per_frame": (
            sum(r["cpu_util"] for r in reports.values()) * per_frame if per_frame else None
        ),
        "cpu_ms_per_frame_all": cores_all * per_frame if per_frame and cores_all else None,
        "rss_mb_max": max(r["rss_mb"] for r in reports.values()),
        "rss_mb_mean": statistics.mean(r["rss_mb"] for r in reports.values()),
        "first_frame_s": min(first) - setup_began_t if first else None,
    }
