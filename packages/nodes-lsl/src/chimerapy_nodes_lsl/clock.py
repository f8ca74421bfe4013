"""Mapping times between LSL's clock and the Manager's clock on one host.

LSL stamps samples with ``local_clock()`` of the computer that made them: a monotonic clock
(seconds since an arbitrary origin, usually the boot). ChimeraPy stamps with Manager time: the
wall clock of the Worker's host plus the Worker's estimated offset from the Manager, which is
what :meth:`chimerapy.Node.now` returns. A sample's time travels in three steps::

    remote LSL time  --(+ inlet.time_correction())-->  LSL time of this host
    LSL time of this host  --(+ ClockMap.offset())-->  Manager time

The first step is LSL's own clock correction (NTP-like probes between inlet and outlet, about
0.2 ms precise). The second is ``now() - local_clock()`` measured here and now: both clocks are
read back to back (five times; the reading with the shortest bracket is kept), so the map
follows the Worker's latest offset estimate and any step of the wall clock. An outlet runs the
second step backwards (Manager time minus the offset) to stamp samples on LSL's clock.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["ClockMap"]

_READINGS = 5


class ClockMap:
    """Converts between this host's LSL clock and the Manager's clock.

    Args:
        manager_now: the Manager-aligned clock (a node's ``now``).
        lsl_now: LSL's clock on this host (``pylsl.local_clock``).
    """

    def __init__(self, manager_now: Callable[[], float], lsl_now: Callable[[], float]) -> None:
        self._manager_now = manager_now
        self._lsl_now = lsl_now

    def offset(self) -> float:
        """Seconds to add to a time of this host's LSL clock to get Manager time."""
        best_width, best = float("inf"), 0.0
        for _ in range(_READINGS):
            before = self._lsl_now()
            manager = self._manager_now()
            after = self._lsl_now()
            if after - before < best_width:
                best_width, best = after - before, manager - (before + after) / 2.0
        return best

    def to_manager(self, lsl_times: np.ndarray, correction: float = 0.0) -> np.ndarray:
        """Manager times of samples stamped ``lsl_times`` by an outlet whose clock differs
        from this host's LSL clock by ``correction`` (``inlet.time_correction()``)."""
        return np.asarray(lsl_times, dtype=np.float64) + (correction + self.offset())

    def to_lsl(self, manager_times: np.ndarray) -> np.ndarray:
        """This host's LSL times of the Manager times ``manager_times``."""
        return np.asarray(manager_times, dtype=np.float64) - self.offset()
