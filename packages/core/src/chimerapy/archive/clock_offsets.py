"""Each Worker's clock offset from the Manager over the session, as ``meta.json`` holds it.

``meta.json["clock_offsets"][worker]`` has the final ``offset`` and ``uncertainty`` (seconds)
and ``history``: ``[manager_time, offset, uncertainty]`` for every probe (see
:class:`chimerapy.clock.ClockEstimator`). Recorded times already include the offset: a time
``t`` saved on that Worker was its wall clock plus the offset in force then.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["ClockSeries", "clock_series"]


@dataclass(frozen=True)
class ClockSeries:
    """One Worker's offset estimates over time.

    Attributes:
        worker: the Worker's name.
        times: Manager time of each estimate.
        offsets: seconds to add to the Worker's clock to get Manager time.
        uncertainties: a bound on each estimate's error (half the best round trip).
    """

    worker: str
    times: np.ndarray
    offsets: np.ndarray
    uncertainties: np.ndarray

    @property
    def offset(self) -> float:
        """The last estimate (0 when there is none)."""
        return float(self.offsets[-1]) if len(self.offsets) else 0.0

    @property
    def uncertainty(self) -> float:
        """The last estimate's uncertainty (inf when there is none)."""
        return float(self.uncertainties[-1]) if len(self.uncertainties) else float("inf")


def clock_series(meta: dict[str, Any]) -> dict[str, ClockSeries]:
    """The offset series of every Worker in ``meta`` (empty for sessions without offsets)."""
    series = {}
    for worker, entry in (meta.get("clock_offsets") or {}).items():
        if not isinstance(entry, dict):
            continue
        rows = [row for row in entry.get("history") or [] if isinstance(row, (list, tuple)) and len(row) == 3]
        if rows:
            table = np.array(rows, dtype=np.float64)
            table = table[np.argsort(table[:, 0], kind="stable")]
            times, offsets, uncertainties = table[:, 0], table[:, 1], table[:, 2]
        elif "offset" in entry:
            when = float(meta.get("start_time") or meta.get("created") or 0.0)
            times = np.array([when])
            offsets = np.array([float(entry["offset"])])
            uncertainties = np.array([float(entry.get("uncertainty", np.inf))])
        else:
            continue
        series[worker] = ClockSeries(worker, times, offsets, uncertainties)
    return series
