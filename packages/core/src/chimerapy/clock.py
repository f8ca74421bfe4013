"""Clock alignment: NTP-style estimates of a Worker's offset from the Manager's clock.

The Manager's wall clock is the session's reference. A Worker sends a probe at local time ``t0``;
the Manager stamps it with its own time ``tm``; the reply arrives at local time ``t1``. Assuming a
symmetric path, ``offset = tm - (t0 + t1) / 2`` and the error is at most ``(t1 - t0) / 2``. Probes
with the smallest round trip are the most trustworthy, so the estimator keeps a window of recent
probes and uses the one with the minimum round trip.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass

__all__ = ["ClockEstimator", "ClockSample"]


@dataclass(frozen=True, slots=True)
class ClockSample:
    """One probe: local send and receive times and the Manager's stamp (seconds)."""

    sent: float
    manager: float
    received: float

    @property
    def round_trip(self) -> float:
        return self.received - self.sent

    @property
    def offset(self) -> float:
        return self.manager - (self.sent + self.received) / 2.0


class ClockEstimator:
    """Keeps recent probes and estimates the offset to add to local time to get Manager time.

    Args:
        window: how many recent probes to choose the minimum round trip from.
    """

    def __init__(self, window: int = 16) -> None:
        self._samples: deque[ClockSample] = deque(maxlen=window)
        #: Every estimate made, as ``(manager_time, offset, uncertainty)`` for the archive.
        self.history: list[tuple[float, float, float]] = []

    def add(self, sample: ClockSample) -> None:
        """Record a probe (probes with a negative round trip are ignored)."""
        if sample.round_trip < 0:
            return
        self._samples.append(sample)
        best = self.best()
        assert best is not None
        self.history.append((sample.manager, best.offset, best.round_trip / 2.0))

    def best(self) -> ClockSample | None:
        """The probe with the smallest round trip in the window, if any."""
        return min(self._samples, key=lambda s: s.round_trip, default=None)

    @property
    def offset(self) -> float:
        """Seconds to add to the local wall clock to get Manager time (0 before any probe)."""
        best = self.best()
        return best.offset if best else 0.0

    @property
    def uncertainty(self) -> float:
        """Half the round trip of the best probe: a bound on the offset's error (inf if none)."""
        best = self.best()
        return best.round_trip / 2.0 if best else float("inf")

    def now(self) -> float:
        """The current Manager-aligned time."""
        return time.time() + self.offset
