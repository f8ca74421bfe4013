"""How fast an ML node works and how many inputs it skipped, for its log and its output records.

An ML node's inputs arrive on latest-only edges by default (``latest_only_inputs = True``): when the
model is slower than its source, the node works on the newest input and the older ones are
skipped. The runtime counts them per edge (``manager.final_stats[node]["inputs"][producer]``);
the node counts them too, from the gaps in the sequence numbers of the chunks it processed, so
that each result says how the node is keeping up:

=====================  ========================================================================
``processing_fps``     inputs processed per second over the last ``window`` seconds
``skipped``            inputs skipped so far (older inputs replaced by newer ones before a step)
``processing_time``    seconds the model took on this input
``latency``            seconds from the input's capture time to this result
=====================  ========================================================================
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import chimerapy as cp

from .inputs import Found, result_chunk

__all__ = ["ProcessingMeter"]


class ProcessingMeter:
    """Counts processed and skipped inputs and logs a summary every ``every`` seconds.

    Pure bookkeeping: times are passed in (``time.monotonic`` seconds for rates, Manager-clock
    seconds for latency), so it is tested without a clock.

    Args:
        logger: where the summaries go (the node's logger).
        every: seconds between two log lines (0: never log).
        window: the span, in seconds, over which ``processing_fps`` is measured.
    """

    def __init__(self, logger: logging.Logger, *, every: float = 5.0, window: float = 5.0) -> None:
        self.logger = logger
        self.every = every
        self.window = window
        self.processed = 0
        self.skipped = 0
        self._last_seq: dict[str, int] = {}
        self._done: deque[float] = deque()
        self._busy = 0.0
        self._latency = 0.0
        self._last_log: float | None = None

    def process(
        self, found: Found, work: Callable[[], dict[str, Any]], clock: Callable[[], float]
    ) -> cp.DataChunk:
        """Run ``work`` on ``found`` and return its records as a result chunk, measured.

        The chunk holds what ``work`` returned, the meter's records (see the module docstring),
        and the input's ``timestamp`` and ``frame_index``. ``clock`` gives Manager-clock time
        (``Node.now``), for the latency.
        """
        self.received(found.producer, found.chunk.seq)
        started = time.monotonic()
        records = work()
        finished = time.monotonic()
        records.update(
            self.processed_one(
                started=started, finished=finished, latency=clock() - found.timestamp
            )
        )
        return result_chunk(found, records)

    def received(self, producer: str, seq: int | None) -> int:
        """Note the input ``seq`` from ``producer``, about to be processed; returns the gap.

        Inputs whose sequence numbers lie between the previous processed one and ``seq`` were
        skipped. A repeated ``seq`` (the same chunk again) counts nothing.
        """
        if seq is None:
            return 0
        last = self._last_seq.get(producer)
        self._last_seq[producer] = seq
        gap = seq - last - 1 if last is not None and seq > last else 0
        self.skipped += gap
        return gap

    def passed_over(self, producer: str, seq: int | None) -> None:
        """Note the input ``seq`` from ``producer`` as skipped by the node itself (too late...)."""
        self.received(producer, seq)
        self.skipped += 1

    def processed_one(
        self, *, started: float, finished: float, latency: float
    ) -> dict[str, float | int]:
        """Note one processed input (monotonic ``started``, ``finished``); returns its records."""
        self.processed += 1
        self._done.append(finished)
        while len(self._done) > 2 and self._done[1] < finished - self.window:
            self._done.popleft()
        self._busy += finished - started
        self._latency = latency
        if self._last_log is None:
            self._last_log = started
        if self.every and finished - self._last_log >= self.every:
            self._last_log = finished
            self.log_summary()
        return {
            "processing_fps": round(self.fps, 3),
            "skipped": self.skipped,
            "processing_time": finished - started,
            "latency": latency,
        }

    @property
    def fps(self) -> float:
        """Inputs processed per second over the last ``window`` seconds (0.0 before two)."""
        if len(self._done) < 2 or self._done[-1] <= self._done[0]:
            return 0.0
        return (len(self._done) - 1) / (self._done[-1] - self._done[0])

    def log_summary(self, final: bool = False) -> None:
        """Log the rate, the skipped inputs and the latency (``final``: the totals of the run)."""
        seen = self.processed + self.skipped
        share = 100.0 * self.skipped / seen if seen else 0.0
        mean = self._busy / self.processed if self.processed else 0.0
        self.logger.info(
            "%s%d inputs processed at %.2f/s, %d skipped (%.0f%%), %.0f ms per input, "
            "latency %.0f ms",
            "in all: " if final else "",
            self.processed,
            self.fps,
            self.skipped,
            share,
            1000 * mean,
            1000 * self._latency,
        )
