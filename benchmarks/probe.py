"""Node-side instrumentation, identical on every system: payloads, pacing and counters.

Imported inside node processes of every system (each with its own Python), so it
depends on numpy and the standard library only. A source calls
:meth:`NodeProbe.next_send` before each send; relays and sinks call
:meth:`NodeProbe.on_receive` with the sequence number and send time carried inside
the payload; every node calls :meth:`NodeProbe.dump` when it stops.

Counts of lost, duplicated and out-of-order frames cover the whole run; rate, CPU
and latency figures skip the first ``WARMUP_S`` after a node's first frame
(connection set-up, first allocations), unless fewer than two frames came after it,
in which case they cover every frame. Latency percentiles also leave out frames sent
after the runner's end of streaming (:func:`read_window_end`: frames that travel while
the system stops); ``p99_with_stop`` keeps them.
"""

from __future__ import annotations

import array
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.spec import RunSpec

FRAME_SHAPES: dict[str, tuple[int, int, int]] = {"vga": (480, 640, 3), "hd": (1080, 1920, 3)}
DICT_KEYS = 16
RSS_SAMPLE_PERIOD_S = 0.5
WARMUP_S = 0.5
_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


def make_payload(kind: str) -> Any:
    """Build the payload a source sends: a uint8 frame or a dict of about 1 KB.

    The frame is a smooth synthetic picture (so that JPEG peers compress it as they
    would a camera frame); the source sends the same buffer every time.
    """
    if kind == "dict1k":
        return {f"k{i:02d}": f"value-{i:02d}-" + "x" * 48 for i in range(DICT_KEYS)}
    height, width, _ = FRAME_SHAPES[kind]
    rows = np.linspace(0, 255, height, dtype=np.float32)[:, None]
    cols = np.linspace(0, 255, width, dtype=np.float32)[None, :]
    frame = np.empty(FRAME_SHAPES[kind], dtype=np.uint8)
    frame[..., 0] = rows.astype(np.uint8)
    frame[..., 1] = cols.astype(np.uint8)
    frame[..., 2] = ((rows + cols) / 2).astype(np.uint8)
    return frame


def payload_nbytes(kind: str) -> int:
    """Raw size of one payload in bytes (frames) or an estimate (dict)."""
    if kind == "dict1k":
        return 1024
    height, width, channels = FRAME_SHAPES[kind]
    return height * width * channels


def touch(value: Any) -> int:
    """Read one value from a received payload, as a user's node would."""
    if isinstance(value, dict):
        return len(value["k07"])
    flat = value.reshape(-1)
    return int(flat[flat.shape[0] // 2])


def window_end_path(spec: RunSpec) -> Path:
    """The file where the runner writes the wall time at which it began stopping the system."""
    return Path(spec.run_dir) / "window-end"


def read_window_end(spec: RunSpec) -> float | None:
    """The runner's end of streaming (``None`` if it has not written one)."""
    try:
        return float(window_end_path(spec).read_text())
    except (OSError, ValueError):
        return None


def _rss_bytes() -> int:
    with open("/proc/self/statm", "rb") as statm:
        return int(statm.read().split()[1]) * _PAGE_SIZE


class NodeProbe:
    """Counters of one node: sends, receptions, order, latency, CPU and memory.

    Args:
        spec: The run spec (gives the role, rate, payload and report path).
        name: This node's name in the graph.
    """

    def __init__(self, spec: RunSpec, name: str) -> None:
        self.spec = spec
        self.name = name
        self.role = spec.role_of(name)
        self.ready_t = time.time()
        self.payload: Any = make_payload(spec.payload) if self.role == "source" else None
        self.count = 0
        self.out_of_order = 0
        self.duplicates = 0
        self.min_seq: int | None = None
        self.max_seq = -1
        self.first_t: float | None = None
        self.last_t: float | None = None
        self.cpu_first = 0.0
        self.cpu_last = 0.0
        self.window_count = 0
        self.first_frame_t: float | None = None
        self.cpu_first_frame = 0.0
        self._warm_until: float | None = None
        self.rss_max = _rss_bytes()
        self.touched = 0
        self._seen = bytearray(1 << 16)
        self.worst_ms, self.worst_t = 0.0, 0.0  # the slowest frame and when it arrived
        self._latency_ms = array.array("d")
        self._latency_sent = array.array("d")  # send time of each sample of _latency_ms
        self._warmup_latency_ms = array.array("d")
        self._pace_start: float | None = None
        self._next_rss = 0.0

    # -- source side ---------------------------------------------------------------
    def next_send(self) -> tuple[int, float]:
        """Wait for the next slot (if paced) and return ``(seq, send_time)``."""
        seq = self.count
        rate = self.spec.rate_hz
        if rate:
            now = time.perf_counter()
            if self._pace_start is None:
                self._pace_start = now
            delay = self._pace_start + seq / rate - now
            if delay > 0:
                time.sleep(delay)
        self.count += 1
        self.max_seq = seq
        now = time.time()
        self._mark(now)
        return seq, now

    # -- receiving side ------------------------------------------------------------
    def on_receive(self, seq: int, sent_t: float, value: Any) -> None:
        """Account for one received payload and touch it."""
        now = time.time()
        self.touched = touch(value)
        latency_ms = (now - sent_t) * 1000.0
        if self._mark(now):
            self._latency_ms.append(latency_ms)
            self._latency_sent.append(sent_t)
        else:
            self._warmup_latency_ms.append(latency_ms)
        if latency_ms > self.worst_ms:
            self.worst_ms, self.worst_t = latency_ms, now
        self.count += 1
        if seq >= len(self._seen) * 8:
            self._seen.extend(bytes(max(len(self._seen), seq // 8 + 1 - len(self._seen))))
        byte, bit = divmod(seq, 8)
        if self._seen[byte] >> bit & 1:
            self.duplicates += 1
        self._seen[byte] |= 1 << bit
        if seq < self.max_seq:
            self.out_of_order += 1
        self.max_seq = max(self.max_seq, seq)
        self.min_seq = seq if self.min_seq is None else min(self.min_seq, seq)

    def _mark(self, now: float) -> bool:
        """Advance the measurement window; ``True`` once past the warm-up."""
        cpu = time.process_time()
        if now >= self._next_rss:
            self._next_rss = now + RSS_SAMPLE_PERIOD_S
            self.rss_max = max(self.rss_max, _rss_bytes())
        if self._warm_until is None:
            self._warm_until = now + WARMUP_S
            self.first_frame_t, self.cpu_first_frame = now, cpu
            self.first_t, self.cpu_first, self.last_t, self.cpu_last = now, cpu, now, cpu
            return False
        if now < self._warm_until:
            self.first_t, self.cpu_first, self.last_t, self.cpu_last = now, cpu, now, cpu
            return False
        self.window_count += 1
        self.last_t, self.cpu_last = now, cpu
        return True

    # -- report --------------------------------------------------------------------
    def report(self) -> dict[str, Any]:
        """The node's figures as a JSON-able dict."""
        unique = sum(b.bit_count() for b in self._seen) if self.role != "source" else 0
        span = (self.max_seq - self.min_seq + 1) if self.min_seq is not None else 0
        warmed = self.window_count >= 2
        if warmed:
            frames, began_t, cpu_began = self.window_count, self.first_t, self.cpu_first
        else:  # the run ended within the warm-up: fall back to every frame
            frames, began_t, cpu_began = self.count - 1, self.first_frame_t, self.cpu_first_frame
        span_t = (self.last_t or 0.0) - (began_t or 0.0)
        samples = self._latency_ms if warmed else self._warmup_latency_ms + self._latency_ms
        latency = np.frombuffer(samples, dtype=np.float64)
        lat: dict[str, float | None] = {"n": int(latency.size)}
        if latency.size:
            p99_all = float(np.percentile(latency, 99))
            window_end = read_window_end(self.spec)
            if warmed and window_end is not None:  # frames sent while the system was stopping:
                sent = np.frombuffer(self._latency_sent, dtype=np.float64)  # not steady state
                streaming = latency[sent <= window_end]
                latency = streaming if streaming.size else latency
            p50, p99 = np.percentile(latency, [50, 99])
            lat.update(
                p50=float(p50), p99=float(p99), max=float(latency.max()),
                mean=float(latency.mean()), n=int(latency.size), p99_with_stop=p99_all,
            )
        return {
            "name": self.name,
            "role": self.role,
            "pid": os.getpid(),
            "ready_t": self.ready_t,
            "first_frame_t": self.first_frame_t,
            "window_s": span_t,
            "count": self.count,
            "fps": frames / span_t if span_t > 0 else 0.0,
            "unique": unique,
            "min_seq": self.min_seq,
            "max_seq": self.max_seq,
            "lost": max(0, span - unique) if self.role != "source" else 0,
            "out_of_order": self.out_of_order,
            "duplicates": self.duplicates,
            "latency_ms": lat,
            "worst_latency_ms": self.worst_ms,  # warm-up included
            "worst_latency_t": self.worst_t,
            "cpu_util": (self.cpu_last - cpu_began) / span_t if span_t > 0 else 0.0,
            "rss_mb": max(self.rss_max, _rss_bytes()) / 2**20,
            "touched": self.touched,
        }

    def dump(self) -> None:
        """Write the report atomically to the path the spec gives for this node."""
        path = self.spec.report_path(self.name)
        tmp = Path(f"{path}.tmp")
        tmp.write_text(json.dumps(self.report()))
        tmp.replace(path)
