"""BlockPacer: real-time pacing and timestamps for the synthetic sources (tone, file).

Block ``k`` ends at stream frame ``end``; it is released when its last sample is due, at
``start + end / rate`` on the monotonic clock: an absolute schedule (the next deadline moves on
by exactly one block's duration), so the time spent producing a block never accumulates into
the rate. A source that fell behind (a stall) releases the late blocks at once until it has
caught up, and says so in its log. Waiting happens in slices of at most 0.1 s so that a stop is
seen promptly.

Timestamps are anchored once, when the stream starts: ``t0 + frame / rate`` on the Manager's
clock; the aligned clock's drift from the monotonic clock is measured by a
:class:`~chimerapy_nodes_audio.drift.DriftMeter`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from chimerapy_nodes_audio.drift import DriftMeter

__all__ = ["BlockPacer"]

_SLICE = 0.1
_LATE = 0.5


class BlockPacer:
    """Paces one stream of ``rate`` frames per second and stamps its blocks.

    Args:
        rate: sample frames per second.
        clock: the Manager-aligned clock (``Node.now``).
        logger: where falling behind the schedule is reported.
        realtime: False releases blocks at once (offline rendering); timestamps are unchanged.
    """

    def __init__(
        self,
        rate: int,
        *,
        clock: Callable[[], float],
        logger: logging.Logger,
        realtime: bool = True,
    ) -> None:
        self.rate = rate
        self.realtime = realtime
        self.drift = DriftMeter()
        self._clock = clock
        self._logger = logger
        self._t0: float | None = None
        self._mono0 = 0.0
        self._late = False

    @property
    def started(self) -> bool:
        return self._t0 is not None

    def start(self) -> None:
        """Anchor the stream: frame 0 is now, on both clocks."""
        self._mono0 = time.monotonic()
        self._t0 = self._clock()

    def timestamp(self, frame: int) -> float:
        """The aligned time of stream frame ``frame``."""
        assert self._t0 is not None, "BlockPacer.start() first"
        return self._t0 + frame / self.rate

    def wait(self, end_frame: int, running: Callable[[], bool]) -> bool:
        """Sleep until the block ending at ``end_frame`` is due; False if stopped meanwhile."""
        assert self._t0 is not None, "BlockPacer.start() first"
        if not self.realtime:
            return running()
        deadline = self._mono0 + end_frame / self.rate
        while (remaining := deadline - time.monotonic()) > 0:
            if not running():
                return False
            time.sleep(min(remaining, _SLICE))
        self._note_lateness(-remaining)
        return True

    def measure_drift(self) -> float:
        """Observe the clocks now; returns the drift in seconds (see DriftMeter)."""
        assert self._t0 is not None, "BlockPacer.start() first"
        mono, aligned = time.monotonic(), self._clock()
        return self.drift.observe(mono - self._mono0, aligned - self._t0)

    def _note_lateness(self, late: float) -> None:
        if late > _LATE and not self._late:
            self._logger.warning("%.2f s behind the real-time schedule; catching up", late)
        elif late <= _LATE / 10 and self._late:
            self._logger.info("back on the real-time schedule")
        self._late = late > _LATE or (self._late and late > _LATE / 10)
