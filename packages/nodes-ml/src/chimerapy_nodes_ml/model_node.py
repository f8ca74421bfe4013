"""ModelNode: what the pack's nodes share: find the input, run the model on it measured, report."""

from __future__ import annotations

from typing import Any

import chimerapy as cp

from .inputs import Found, find_record
from .meter import ProcessingMeter
from .options import check_int, check_number

__all__ = ["ModelNode"]


class ModelNode(cp.Node):
    """Base of the pack's nodes: one result chunk per input, measured (see :mod:`.meter`).

    A subclass names the record it works on (:attr:`input_record`), loads its model in
    :meth:`prep` (calling ``super().prep()``), computes its records in :meth:`work`, saves what
    is worth keeping in :meth:`keep`, and frees the model in :meth:`release`. Each step takes
    the first input chunk holding :attr:`input_record`, whatever its producer is called.

    With :attr:`record` on (the nodes' ``record=True`` option, the default) every result is
    also written into the session archive by :meth:`keep`, stamped with the time of the frame or
    audio it was computed from, not the time it was computed.
    """

    #: Inputs arrive on latest-only edges: a model slower than its source skips, never lags.
    latest_only_inputs = True
    #: The record the node works on, and what it is, for the warning when no input holds it.
    input_record = "frame"
    input_kind = "video frames"
    #: Seconds between two log lines on rate and skipped inputs, and threads for the model (the
    #: options every node of the pack takes: see :meth:`take_model_options`).
    report_every = 5.0
    threads = 1
    #: Write each result into the session archive (see :meth:`keep`).
    record = True

    def prep(self) -> None:
        self._meter = ProcessingMeter(self.logger, every=self.report_every)
        self._warned = False
        self._record_warned = False

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
        result = self._meter.process(found, lambda: self.work(found), self.now)
        if self.record:
            self._keep(found, result)
        return result

    def teardown(self) -> None:
        meter = getattr(self, "_meter", None)
        if meter is not None:
            meter.log_summary(final=True)
        self.release()

    # -- for subclasses --------------------------------------------------------------------------

    def take_model_options(self, what: str, *, threads: Any, report_every: Any) -> None:
        """Check and keep the options every node of the pack takes (``what`` names the node in errors)."""
        self.threads = check_int(threads, "threads", what, low=1)
        self.report_every = check_number(report_every, "report_every", what)

    def accept(self, found: Found) -> bool:
        """Whether to work on ``found`` (False: it is skipped and counted); True by default."""
        return True

    def work(self, found: Found) -> dict[str, Any]:
        """The records of the result for the input in ``found``."""
        raise NotImplementedError

    def keep(self, found: Found, result: dict[str, Any]) -> None:
        """Save the records of ``result`` (name -> value) for the input in ``found``.

        Called after each result when :attr:`record` is on; save with ``timestamp=
        found.timestamp`` (the input's capture time). Saves nothing by default.
        """

    def release(self) -> None:
        """Free what :meth:`prep` loaded (runs in ``teardown``, also after a failed ``prep``)."""

    def keep_json(self, name: str, found: Found, result: dict[str, Any], *records: str) -> None:
        """Save ``records`` of ``result`` (and its ``frame_index``, if any) as a line of ``name``."""
        line = {"frame_index": result["frame_index"]} if "frame_index" in result else {}
        line.update((record, result[record]) for record in records)
        self.save_json(name, line, timestamp=found.timestamp)

    # -- internals -------------------------------------------------------------------------------

    def _keep(self, found: Found, chunk: cp.DataChunk) -> None:
        """:meth:`keep`, where a recording problem is logged once and never costs the result."""
        try:
            self.keep(found, {name: record["value"] for name, record in chunk.items()})
        except cp.RecordError as error:
            if not self._record_warned:
                self._record_warned = True
                self.logger.warning("a result could not be recorded (%s); the results still flow", error)
