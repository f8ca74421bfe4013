"""ModelNode: what the pack's nodes share: find the input, run the model on it measured, report."""

from __future__ import annotations

from typing import Any

import chimerapy as cp

from .inputs import Found, find_record
from .meter import ProcessingMeter

__all__ = ["ModelNode"]


class ModelNode(cp.Node):
    """Base of the pack's nodes: one result chunk per input, measured (see :mod:`.meter`).

    A subclass names the record it works on (:attr:`input_record`), loads its model in
    :meth:`prep` (calling ``super().prep()``), computes its records in :meth:`work`, and frees
    the model in :meth:`release`. Each step takes the first input chunk holding
    :attr:`input_record`, whatever its producer is called.
    """

    #: Inputs arrive on latest-only edges: a model slower than its source skips, never lags.
    latest_only_inputs = True
    #: The record the node works on, and what it is, for the warning when no input holds it.
    input_record = "frame"
    input_kind = "video frames"
    #: Seconds between two log lines on rate and skipped inputs (set by the subclass's options).
    report_every = 5.0

    def prep(self) -> None:
        self._meter = ProcessingMeter(self.logger, every=self.report_every)
        self._warned = False

    def step(self, data_chunks: dict[str, cp.DataChunk]) -> cp.DataChunk | None:
        found = find_record(data_chunks, self.input_record)
        if found is None:
            if not self._warned:
                self._warned = True
                self.logger.warning(
                    "no %r record in the inputs (records: %s); this node works on %s",
                    self.input_record,
                    {p: c.keys() for p, c in data_chunks.items()},
                    self.input_kind,
                )
            return None
        if not self.accept(found):
            self._meter.passed_over(found.producer, found.chunk.seq)
            return None
        return self._meter.process(found, lambda: self.work(found), self.now)

    def teardown(self) -> None:
        meter = getattr(self, "_meter", None)
        if meter is not None:
            meter.log_summary(final=True)
        self.release()

    # -- for subclasses --------------------------------------------------------------------------

    def accept(self, found: Found) -> bool:
        """Whether to work on ``found`` (False: it is skipped and counted); True by default."""
        return True

    def work(self, found: Found) -> dict[str, Any]:
        """The records of the result for the input in ``found``."""
        raise NotImplementedError

    def release(self) -> None:
        """Free what :meth:`prep` loaded (runs in ``teardown``, also after a failed ``prep``)."""
