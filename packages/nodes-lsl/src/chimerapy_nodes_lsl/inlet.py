"""lsl.inlet: any Lab Streaming Layer stream as a ChimeraPy source, on the Manager's clock."""

from __future__ import annotations

from typing import Any

import chimerapy as cp
import numpy as np
from chimerapy.records.naming import check_name

from chimerapy_nodes_lsl.clock import ClockMap
from chimerapy_nodes_lsl.streams import (
    StreamQuery,
    describe,
    load_pylsl,
    not_found,
    resolve_one,
    summary,
)

__all__ = ["LslInlet"]

#: Longest wait of one step for samples (and of one resolve attempt while reconnecting).
_POLL = 0.1
_RESOLVE_SLICE = 0.5
#: Seconds to wait for the full description and the first clock correction of a new inlet.
_INFO_TIMEOUT = 5.0


class LslInlet(cp.Node):
    """Reads one LSL stream and emits its samples with Manager-aligned per-sample times.

    In ``prep`` the node resolves the first stream that fits ``stream`` (its name), ``type``
    and ``source_id`` (any of them; at least one) within ``resolve_timeout`` seconds; if none
    appears it fails with :class:`~chimerapy_nodes_lsl.LslStreamNotFoundError`, which lists the
    streams it does see. Each step then pulls what has arrived (waiting at most 0.1 s) and emits
    one DataChunk with these records:

    ==================  ===============================================================
    ``samples``         numpy ``(n, channels)``: the stream's dtype (``float32``,
                        ``float64``, ``int8`` .. ``int64``) or ``str`` for string streams
    ``timestamps``      float64 ``(n,)``: each sample's time on the Manager's clock
    ``timestamp``       float: the first sample's time (as audio blocks carry it)
    ``lsl_timestamps``  float64 ``(n,)``: the times the outlet stamped, on its own LSL clock
    ``time_correction`` float: LSL's outlet-to-this-host clock correction applied
    ``sample_index``    int: index of the first sample since the node started
    ``rate``            float: the nominal rate (0.0 for irregular streams such as markers)
    ``channels``        int: the channel count
    ``stream``          str: the stream's name
    ``description``     dict (first chunk of each connection only): see
                        :func:`chimerapy_nodes_lsl.streams.describe` (channel labels, units,
                        types, nominal rate, format, source id, host, full XML)
    ``gap``             dict (first chunk after a reconnection only): ``last_sample`` and
                        ``first_sample`` (Manager times around the gap), ``seconds``,
                        ``missing`` (estimated samples lost, None for irregular streams),
                        ``lost_at`` (when the loss was noticed), ``reconnects`` (count)
    ==================  ===============================================================

    Times: see :mod:`chimerapy_nodes_lsl.clock`: LSL's clock correction to this host, then this
    host's LSL clock to the Manager's clock through the Worker's offset (``now()``).

    If the outlet goes away (its program stopped or crashed), the loss is logged, the node
    resolves the same query again until an outlet reappears, and the first chunk after it
    carries ``gap``; samples the old outlet had not delivered are lost (and counted in
    ``missing`` for regular streams). ``reconnects`` counts these.

    With ``record=True`` every sample is saved with ``save_tabular`` into
    ``<record_name>.csv`` (columns ``timestamp`` (when written), ``time`` (the sample's
    Manager time), ``lsl_time`` (the outlet's stamp), then one column per channel, named by the
    stream's channel labels when they are unique, else ``ch0``, ``ch1``, ...); the stream's
    description goes to ``<record_name>.stream.jsonl`` and each gap to
    ``<record_name>.gaps.jsonl``. A stream that comes back with other channels (count or
    labels) is recorded on into ``<record_name>.<reconnections>.csv``.

    Args:
        name: the node's name.
        stream: the LSL stream's name, or None for any.
        type: the LSL stream's content type (e.g. ``"EEG"``, ``"Markers"``), or None for any.
        source_id: the LSL stream's source id, or None for any.
        resolve_timeout: seconds ``prep`` waits for the stream to appear.
        max_chunk: most samples in one emitted chunk.
        max_buffer: seconds of data (for irregular streams: hundreds of samples) LSL buffers
            for this inlet while the node is busy.
        record: save every sample into the session archive.
        record_name: the record's name (the file stem) when recording.
    """

    kind = "source"

    def __init__(
        self,
        name: str = "lsl_inlet",
        *,
        stream: str | None = None,
        type: str | None = None,
        source_id: str | None = None,
        resolve_timeout: float = 10.0,
        max_chunk: int = 4096,
        max_buffer: int = 360,
        record: bool = False,
        record_name: str = "lsl",
    ) -> None:
        super().__init__(name)
        try:
            StreamQuery(name=stream, type=type, source_id=source_id)
        except (TypeError, ValueError) as error:
            raise error.__class__(f"LslInlet {name!r}: {error}") from None
        if not resolve_timeout > 0:
            raise ValueError(f"LslInlet {name!r}: resolve_timeout must be > 0, got {resolve_timeout}")
        if max_chunk < 1 or max_buffer < 1:
            raise ValueError(f"LslInlet {name!r}: max_chunk and max_buffer must be >= 1")
        check_name(record_name)  # a RecordError (a ValueError) naming what to change
        self.stream = stream
        self.type = type
        self.source_id = source_id
        self.resolve_timeout = float(resolve_timeout)
        self.max_chunk = int(max_chunk)
        self.max_buffer = int(max_buffer)
        self.record = bool(record)
        self.record_name = record_name

    # -- lifecycle -------------------------------------------------------------------------------

    def prep(self) -> None:
        self._pylsl = load_pylsl()
        self._query = StreamQuery(name=self.stream, type=self.type, source_id=self.source_id)
        self._clock = ClockMap(self.now, self._pylsl.local_clock)
        self._inlet: Any = None
        self._description: dict[str, Any] | None = None
        self._send_description = False
        self._pending_gap: dict[str, Any] | None = None
        self._last_sample: float | None = None  # Manager time of the last sample emitted
        self._lost_at: float | None = None
        self._columns: list[str] | None = None
        self._table = self.record_name  # the CSV being written (another after a layout change)
        self.samples = 0
        self.reconnects = 0
        info = resolve_one(self._query, self.resolve_timeout, pylsl=self._pylsl)
        if info is None:
            raise not_found(self._query, self.resolve_timeout, pylsl=self._pylsl)
        self._open(info)

    def step(self, data_chunks: dict[str, cp.DataChunk] | None = None) -> cp.DataChunk | None:
        if self._inlet is None:
            self._reconnect()
            return None
        numeric = self._description is not None and self._description["channel_format"] != "string"
        try:
            samples, lsl_times = self._inlet.pull_chunk(
                timeout=_POLL, max_samples=self.max_chunk, min_samples=1, as_numpy=numeric
            )
            if not len(lsl_times):
                return None
            correction = self._correction()
        except self._pylsl.util.LostError:
            self._lose()
            return None
        return self._chunk(samples, np.asarray(lsl_times, dtype=np.float64), correction)

    def teardown(self) -> None:
        self._close()
        self.logger.info(
            "read %d samples from LSL stream %s (%d reconnections)",
            self.samples,
            self._query,
            self.reconnects,
        )

    # -- connection ------------------------------------------------------------------------------

    def _open(self, info: Any) -> None:
        pylsl = self._pylsl
        inlet = pylsl.StreamInlet(info, max_buflen=self.max_buffer, recover=False)
        try:
            full = inlet.info(timeout=_INFO_TIMEOUT)
            inlet.open_stream(timeout=_INFO_TIMEOUT)
            self._time_correction = inlet.time_correction(timeout=_INFO_TIMEOUT)
        except (pylsl.util.TimeoutError, pylsl.util.LostError) as error:
            inlet.close_stream()
            self.logger.warning("LSL stream %s did not answer (%s); resolving again", summary(info), error)
            return
        self._inlet = inlet
        self._description = describe(full)
        self._send_description = True
        self.logger.info("reading LSL stream %s", summary(full))
        if self.record:
            self.save_json(f"{self.record_name}.stream", self._description)

    def _correction(self) -> float:
        """LSL's current clock correction (instant after the first; the last one on a hiccup)."""
        try:
            self._time_correction = float(self._inlet.time_correction(timeout=0.0))
        except self._pylsl.util.TimeoutError:
            pass
        return self._time_correction

    def _lose(self) -> None:
        self._lost_at = self.now()
        self.logger.warning(
            "LSL stream %s was lost after %d samples; waiting for it to come back",
            self._query,
            self.samples,
        )
        self._close()

    def _close(self) -> None:
        inlet, self._inlet = getattr(self, "_inlet", None), None
        if inlet is not None:
            inlet.close_stream()

    def _reconnect(self) -> None:
        info = resolve_one(self._query, _RESOLVE_SLICE, pylsl=self._pylsl)
        if info is None or not self.running:
            return
        self._open(info)
        if self._inlet is not None and self._lost_at is not None:  # not the first connection
            self.reconnects += 1
            self._pending_gap = {"lost_at": self._lost_at, "reconnects": self.reconnects}

    # -- chunks ----------------------------------------------------------------------------------

    def _chunk(self, samples: Any, lsl_times: np.ndarray, correction: float) -> cp.DataChunk:
        assert self._description is not None
        description = self._description
        if description["channel_format"] == "string":
            array = np.array(samples, dtype=str).reshape(len(lsl_times), description["channel_count"])
        else:
            array = np.asarray(samples)
        times = self._clock.to_manager(lsl_times, correction)
        chunk = cp.DataChunk()
        chunk.add("samples", array)
        chunk.add("timestamps", times)
        chunk.add("timestamp", float(times[0]))
        chunk.add("lsl_timestamps", lsl_times)
        chunk.add("time_correction", float(correction))
        chunk.add("sample_index", self.samples)
        chunk.add("rate", description["nominal_rate"])
        chunk.add("channels", description["channel_count"])
        chunk.add("stream", description["name"])
        if self._send_description:
            chunk.add("description", description)
            self._send_description = False
        if self._pending_gap is not None:
            gap = self._finish_gap(self._pending_gap, float(times[0]))
            chunk.add("gap", gap)
            self._pending_gap = None
        if self.record:
            self._save(array, times, lsl_times)
        self.samples += len(lsl_times)
        self._last_sample = float(times[-1])
        return chunk

    def _finish_gap(self, gap: dict[str, Any], first: float) -> dict[str, Any]:
        assert self._description is not None
        rate = self._description["nominal_rate"]
        last = self._last_sample
        seconds = None if last is None else first - last
        missing = None
        if seconds is not None and rate > 0:
            missing = max(round(seconds * rate) - 1, 0)
        gap.update(last_sample=last, first_sample=first, seconds=seconds, missing=missing)
        self.logger.warning(
            "LSL stream %s is back after a gap of %s s (%s samples missing)",
            self._query,
            "?" if seconds is None else f"{seconds:.3f}",
            "?" if missing is None else missing,
        )
        if self.record:
            self.save_json(f"{self.record_name}.gaps", gap)
        return gap

    def _save(self, samples: np.ndarray, times: np.ndarray, lsl_times: np.ndarray) -> None:
        columns = ["time", "lsl_time", *self._channel_columns(samples.shape[1])]
        if self._columns is not None and columns != self._columns:
            self._table = f"{self.record_name}.{self.reconnects}"
            self.logger.warning(
                "LSL stream %s came back with the channels %s; recording on into %s.csv",
                self._query,
                columns[2:],
                self._table,
            )
        self._columns = columns
        for values, when, stamp in zip(samples.tolist(), times.tolist(), lsl_times.tolist()):
            self.save_tabular(self._table, dict(zip(columns, [when, stamp, *values])))

    def _channel_columns(self, count: int) -> list[str]:
        assert self._description is not None
        labels = self._description["channel_labels"] or []
        reserved = {"timestamp", "time", "lsl_time"}
        if (
            len(labels) == count
            and all(isinstance(label, str) and label and label not in reserved for label in labels)
            and len(set(labels)) == count
        ):
            return list(labels)
        return [f"ch{index}" for index in range(count)]
