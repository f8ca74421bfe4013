"""The workloads of issue 10 and the figures each one reports.

=============  ==========================================  ============================
kind           graph                                       measures
=============  ==========================================  ============================
throughput     source -> sink, as fast as possible          fps, lost, order, CPU, RSS
latency        source -> sink at 30 fps                     one-way latency p50 / p99
chain          10-node chain over 3 Workers, 640x480, max   fps and latency over 9 hops
fanout         source -> 4 sinks, 640x480, max              fps per sink, lost, latency
graph2         2 nodes, 1 KB dict at 30 fps, short          commit, start, stop+shutdown
graph20        20-node chain over 3 Workers, short          commit, start, stop+shutdown
crosshost      2 sources on 2 hosts -> 2 sinks on a third   one-way latency p50 / p99
               (network namespaces), 640x480 ``image``
               at 30 fps: JPEG on the wire
parallel       N independent source -> sink pairs,         aggregate fps, slowest pair,
               640x480, max rate                            lost, order, CPU per frame
parallel30     8 independent pairs, 1920x1080 at 30 fps     latency p50 / p99 over pairs
=============  ==========================================  ============================

``throughput`` and ``latency`` run once per payload (``dict1k``, ``vga``, ``hd``);
``parallel`` once per pair count (``PAIRS``: 1, 2, 4, 8, 16), the same list on every
machine, so that its aggregate fps shows how the data plane grows with cores.
"""

from __future__ import annotations

from dataclasses import dataclass

from benchmarks.spec import Shape

PAYLOADS = ("dict1k", "vga", "hd")
PAYLOAD_TITLES = {"dict1k": "1 KB dict", "vga": "640x480x3", "hd": "1920x1080x3"}
KINDS = (
    "throughput", "latency", "chain", "fanout", "graph2", "graph20", "crosshost",
    "parallel", "parallel30",
)
PAIRS = (1, 2, 4, 8, 16)
PARALLEL30_PAIRS = 8


@dataclass(frozen=True)
class Figure:
    """One reported number: a key of the run's metrics and how to read it."""

    metric: str
    label: str
    unit: str
    higher_is_better: bool = False
    ratio: bool = True  # False for counts, where a ratio means nothing (0 lost...)


FPS = Figure("fps", "frames/s received", "fps", higher_is_better=True)
FPS_TOTAL = Figure("fps_total", "aggregate frames/s, all pairs", "fps", higher_is_better=True)
FPS_PAIR = Figure("fps", "frames/s of the slowest pair", "fps", higher_is_better=True)
LOST = Figure("lost", "frames lost (gaps in seq)", "", ratio=False)
UNDELIVERED = Figure("undelivered", "frames sent, never received", "", ratio=False)
OUT_OF_ORDER = Figure("out_of_order", "frames out of order", "", ratio=False)
P50 = Figure("latency_p50_ms", "latency p50", "ms")
P99 = Figure("latency_p99_ms", "latency p99", "ms")
CPU = Figure("cpu_ms_per_frame", "CPU/frame, node processes", "ms")
CPU_ALL = Figure("cpu_ms_per_frame_all", "CPU/frame, all processes", "ms")
RSS = Figure("rss_mb_max", "RSS, largest node process", "MB")
RSS_MEAN = Figure("rss_mb_mean", "RSS per node process, mean", "MB")
SETUP = Figure("setup_s", "commit_graph (dora: to nodes up)", "s")
START = Figure("start_s", "start()", "s")
FIRST = Figure("first_frame_s", "commit to first frame", "s")
STOP = Figure("stop_s", "stop + shutdown", "s")

STREAM_FIGURES = (FPS, LOST, OUT_OF_ORDER, P50, P99, CPU, CPU_ALL, RSS)
FIGURES = {
    "throughput": (FPS, LOST, UNDELIVERED, OUT_OF_ORDER, P50, CPU, CPU_ALL, RSS),
    "latency": (P50, P99, LOST, OUT_OF_ORDER, CPU_ALL),
    "chain": STREAM_FIGURES,
    "fanout": STREAM_FIGURES,
    "graph2": (SETUP, START, FIRST, STOP, RSS_MEAN),
    "graph20": (SETUP, START, FIRST, STOP, RSS_MEAN),
    "crosshost": (P50, P99, FPS, LOST, OUT_OF_ORDER, CPU_ALL),
    "parallel": (FPS_TOTAL, FPS_PAIR, LOST, UNDELIVERED, OUT_OF_ORDER, CPU, CPU_ALL, RSS),
    "parallel30": (P50, P99, FPS_PAIR, LOST, OUT_OF_ORDER, CPU_ALL),
}


@dataclass(frozen=True)
class Workload(Shape):
    """One workload: a :class:`Shape` plus the kind of question it answers."""

    kind: str

    @property
    def key(self) -> str:
        """Stable identifier, e.g. ``throughput/vga``, ``parallel/8`` or ``graph20``."""
        if self.kind == "parallel":
            return f"{self.kind}/{self.n_pairs}"
        return (
            f"{self.kind}/{self.payload}" if self.kind in ("throughput", "latency") else self.kind
        )

    @property
    def title(self) -> str:
        """Heading used in the table."""
        payload = PAYLOAD_TITLES[self.payload]
        rate = f"{self.rate_hz:g} fps" if self.rate_hz else "max rate"
        if self.kind in ("throughput", "latency"):
            return f"Source -> Sink, {rate}, {payload}"
        if self.kind == "chain":
            return f"{self.n_nodes}-node chain, {self.n_workers} Workers, {rate}, {payload}"
        if self.kind == "fanout":
            return f"fan-out 1 -> {self.n_nodes - 1}, {rate}, {payload}"
        if self.kind == "crosshost":
            return f"2 hosts -> a third (JPEG), {rate}, {payload}"
        if self.topology == "parallel":
            pairs = "1 pair" if self.n_pairs == 1 else f"{self.n_pairs} pairs"
            return f"{pairs} Source -> Sink, {rate}, {payload}"
        workers = f" over {self.n_workers} Workers" if self.n_workers > 1 else ""
        return f"{self.n_nodes}-node graph{workers}: set-up, tear-down"

    @property
    def figures(self) -> tuple[Figure, ...]:
        return FIGURES[self.kind]


def catalogue(
    kinds: tuple[str, ...],
    payloads: tuple[str, ...],
    *,
    quick: bool,
    duration_s: float | None = None,
    pairs: tuple[int, ...] = PAIRS,
) -> list[Workload]:
    """The selected workloads, with streaming times for a quick or a full run.

    ``pairs`` lists the pair counts of the ``parallel`` workload (default ``PAIRS``).
    """
    stream = duration_s or (2.0 if quick else 5.0)
    paced = duration_s or (3.0 if quick else 10.0)
    workloads: list[Workload] = []
    for kind in kinds:
        if kind == "throughput":
            workloads += [Workload(p, "pair", 2, 1, None, stream, kind) for p in payloads]
        elif kind == "latency":
            workloads += [Workload(p, "pair", 2, 1, 30.0, paced, kind) for p in payloads]
        elif kind == "chain":
            workloads.append(Workload("vga", "chain", 10, 3, None, stream, kind))
        elif kind == "fanout":
            workloads.append(Workload("vga", "fanout", 5, 1, None, stream, kind))
        elif kind == "graph2":
            workloads.append(Workload("dict1k", "pair", 2, 1, 30.0, 1.0, kind))
        elif kind == "graph20":
            workloads.append(Workload("dict1k", "chain", 20, 3, 30.0, 1.0, kind))
        elif kind == "crosshost":
            workloads.append(Workload("vga", "crosshost", 4, 3, 30.0, paced, kind))
        elif kind == "parallel":
            workloads += [Workload("vga", "parallel", 2 * n, 1, None, stream, kind) for n in pairs]
        elif kind == "parallel30":
            workloads.append(Workload("hd", "parallel", 2 * PARALLEL30_PAIRS, 1, 30.0, paced, kind))
        else:
            raise ValueError(f"unknown workload kind {kind!r}; choose from {', '.join(KINDS)}")
    return workloads
