"""Pacing for sources: an absolute schedule of deadlines that never drifts.

Each deadline is the previous one plus the period (never "sleep one period after the work"), so
the time a step takes does not add up: over any run the rate stays the asked one. Sleeps are cut
into slices of at most :data:`MAX_SLEEP` seconds so that a stopping node notices within that time.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from typing import Literal, overload

__all__ = ["MAX_SLEEP", "Pacer", "check_fps"]

#: The longest single sleep of a waiting source, in seconds.
MAX_SLEEP = 0.1

log = logging.getLogger(__name__)


@overload
def check_fps(fps: float | None, what: str, *, optional: Literal[False] = ...) -> float: ...
@overload
def check_fps(fps: float | None, what: str, *, optional: bool) -> float | None: ...
def check_fps(fps: float | None, what: str, *, optional: bool = False) -> float | None:
    """Return ``fps`` as a float, or raise ValueError naming ``what`` (``None`` if ``optional``)."""
    if fps is None and optional:
        return None
    try:
        value = float(fps)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"{what}: fps must be a positive number, got {fps!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{what}: fps must be a positive number, got {fps!r}")
    return value


class Pacer:
    """Deadlines ``1 / fps`` apart, the first one at the first :meth:`wait`.

    A source that falls behind catches up at full speed, except after more than ``max_lag``
    seconds of lag: then the schedule restarts from now (the rate holds again from there) and the
    deadlines it gave up are counted in :attr:`skipped`.

    Args:
        fps: deadlines per second.
        max_lag: the lag (seconds) beyond which the schedule restarts instead of catching up.
        logger: where the restarts are reported (the node's logger).
    """

    def __init__(self, fps: float, *, max_lag: float = 0.5, logger: logging.Logger | None = None) -> None:
        self.period = 1.0 / fps
        self.max_lag = max(max_lag, 2 * self.period)
        self.log = logger or log
        self.skipped = 0
        self._next: float | None = None

    def wait(self, running: Callable[[], bool]) -> bool:
        """Sleep until the next deadline; False (at once) when ``running()`` turns False meanwhile."""
        now = time.monotonic()
        if self._next is None:
            self._next = now
        while now < self._next:
            if not running():
                return False
            time.sleep(min(self._next - now, MAX_SLEEP))
            now = time.monotonic()
        lag = now - self._next
        if lag > self.max_lag:
            missed = int(lag / self.period)
            self.skipped += missed
            self._next += missed * self.period
            self.log.warning("fell %.2f s behind the %.4g fps schedule; the schedule restarts from now",
                             lag, 1.0 / self.period)
        self._next += self.period
        return running()
