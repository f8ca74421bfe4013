"""DriftMeter: how far the Manager-aligned clock has moved from an audio stream's own clock.

A stream's timestamps are anchored once, at its start: ``timestamp = t0 + sample_index / rate``.
They stay exactly contiguous, so they follow the stream's clock (the sound card's crystal, or
the host's monotonic clock for synthetic sources), not the Manager's. The two drift apart (tens
of ppm for a sound card; the Worker's clock offset estimate also moves). The meter measures that,
so it is reported rather than silently absorbed.

For each block, ``lag = aligned elapsed time - stream elapsed time`` at the moment the block
arrived. Scheduling delays only ever add to the lag, so the meter keeps the minimum lag over a
sliding window (as NTP keeps the minimum round trip): the drift is the current window's minimum
minus the first window's minimum. Pure arithmetic; no clock is read here.
"""

from __future__ import annotations

from collections import deque

__all__ = ["DriftMeter"]


class DriftMeter:
    """Estimates clock drift from ``(stream_elapsed, aligned_elapsed)`` pairs, in seconds.

    Args:
        window: seconds of stream time over which the minimum lag is taken; longer than the
            bursts in which some sound servers deliver audio (PulseAudio's virtual sources: 2 s).
    """

    def __init__(self, window: float = 5.0) -> None:
        if window <= 0:
            raise ValueError(f"window must be positive, got {window}")
        self.window = window
        self._recent: deque[tuple[float, float]] = deque()  # (stream_elapsed, lag)
        self._baseline: float | None = None
        self._first_min = float("inf")
        self._elapsed = 0.0

    def observe(self, stream_elapsed: float, aligned_elapsed: float) -> float:
        """Add one observation; returns the current :attr:`drift`."""
        lag = aligned_elapsed - stream_elapsed
        self._elapsed = stream_elapsed
        if self._baseline is None:
            self._first_min = min(self._first_min, lag)
            if stream_elapsed >= self.window:
                self._baseline = self._first_min
        self._recent.append((stream_elapsed, lag))
        while self._recent and self._recent[0][0] < stream_elapsed - self.window:
            self._recent.popleft()
        return self.drift

    @property
    def drift(self) -> float:
        """Seconds the aligned clock ran ahead of the stream's clock (0.0 for the first window).

        Positive: the aligned clock runs faster than the stream (e.g. a sound card slower than
        nominal); the stream's timestamps then fall behind the Manager's clock by this much.
        """
        if self._baseline is None or not self._recent:
            return 0.0
        return min(lag for _, lag in self._recent) - self._baseline

    @property
    def ppm(self) -> float:
        """The drift as parts per million of the elapsed stream time (0.0 before one window)."""
        return self.drift / self._elapsed * 1e6 if self._elapsed > 0 else 0.0
