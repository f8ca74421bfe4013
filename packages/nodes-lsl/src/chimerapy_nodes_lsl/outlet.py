"""lsl.outlet: publishes one ChimeraPy input as a Lab Streaming Layer stream."""

from __future__ import annotations

from typing import Any

import chimerapy as cp
import numpy as np

from chimerapy_nodes_lsl.clock import ClockMap
from chimerapy_nodes_lsl.errors import LslFormatError
from chimerapy_nodes_lsl.formats import FORMATS, as_samples, format_of
from chimerapy_nodes_lsl.streams import load_pylsl

__all__ = ["LslOutlet"]

#: Records an input may carry about its samples; never published themselves.
_METADATA = frozenset(
    {"timestamps", "timestamp", "lsl_timestamps", "time_correction", "sample_index", "rate",
     "channels", "stream", "description", "gap"}
)
#: Records published when ``input_record`` is not given, in order of preference.
_PREFERRED = ("samples", "default")


class LslOutlet(cp.Node):
    """Publishes one input's numbers, arrays or strings as an LSL stream, on LSL's clock.

    The outlet is created at the first value, which fixes the stream's channel count and
    format (see :mod:`chimerapy_nodes_lsl.formats`: a scalar or string is one channel, a 1-D
    array one sample, a 2-D array ``(n, channels)`` n samples; ``float32`` stays ``float32``,
    Python floats go out as ``double64``, strings as ``string``). Later values must have the
    same channel count and a format that casts to the stream's ("same kind": ints into
    floats, but no floats into ints, no numbers into strings), else the step fails with
    :class:`~chimerapy_nodes_lsl.LslFormatError`.

    The nominal rate is ``rate`` if given, else the input's ``rate`` record (audio blocks and
    ``lsl.inlet`` chunks carry one), else 0 (irregular). Channel labels and units come from
    ``channel_labels`` or from an ``lsl.inlet``'s ``description``.

    Each sample is stamped with its ChimeraPy time converted to LSL's clock (see
    :mod:`chimerapy_nodes_lsl.clock`): the input's per-sample ``timestamps`` when it has them;
    else its ``timestamp`` (the first sample) plus ``i / rate``; else the time the chunk was
    produced (the last sample's, earlier ones ``1 / rate`` apart).

    Args:
        name: the node's name.
        stream: the LSL stream's name (None: the node's name).
        type: the LSL content type (e.g. ``"EEG"``, ``"Markers"``).
        source_id: the LSL source id (lets LSL consumers find the stream again after a
            restart); empty for none.
        input_record: the input record to publish (None: ``samples``, else ``default``, else
            the chunk's only data record).
        producer: the input node to publish when the node has several inputs.
        rate: the nominal sampling rate in Hz (None: from the input; 0: irregular).
        channel_labels: a label per channel, for the stream's description.
    """

    kind = "sink"

    def __init__(
        self,
        name: str = "lsl_outlet",
        *,
        stream: str | None = None,
        type: str = "",
        source_id: str = "",
        input_record: str | None = None,
        producer: str | None = None,
        rate: float | None = None,
        channel_labels: list[str] | None = None,
    ) -> None:
        super().__init__(name)
        for option, value in (("stream", stream), ("input_record", input_record), ("producer", producer)):
            if value is not None and (not isinstance(value, str) or not value):
                raise ValueError(f"LslOutlet {name!r}: {option} must be a non-empty str or None")
        if not isinstance(type, str) or not isinstance(source_id, str):
            raise TypeError(f"LslOutlet {name!r}: type and source_id must be str")
        if rate is not None and not rate >= 0:
            raise ValueError(f"LslOutlet {name!r}: rate must be >= 0 (0: irregular) or None")
        if channel_labels is not None and not all(isinstance(x, str) for x in channel_labels):
            raise ValueError(f"LslOutlet {name!r}: channel_labels must be a list of str")
        self.stream = stream
        self.type = type
        self.source_id = source_id
        self.input_record = input_record
        self.producer = producer
        self.rate = rate
        self.channel_labels = None if channel_labels is None else list(channel_labels)

    def prep(self) -> None:
        self._pylsl = load_pylsl()
        self._clock = ClockMap(self.now, self._pylsl.local_clock)
        self._outlet: Any = None
        self._format = ""
        self._channels = 0
        self._rate = 0.0
        self._last: tuple[str, int] | None = None
        self.samples = 0

    def step(self, data_chunks: dict[str, cp.DataChunk] | None = None) -> None:
        if not data_chunks:
            return
        producer, chunk = self._pick(data_chunks)
        if chunk.seq is not None:
            if self._last == (producer, chunk.seq):
                return  # stepped again for another input: this chunk was published already
            self._last = (producer, chunk.seq)
        record = self._record_of(chunk)
        samples = as_samples(chunk.get(record)["value"])
        if self._outlet is None:
            self._create(samples, chunk)
        samples = self._conform(samples, record)
        times = self._clock.to_lsl(self._times(chunk, len(samples)))
        if self._format == "string":
            self._outlet.push_chunk(samples.tolist(), times.tolist())
        else:
            self._outlet.push_chunk(samples, times.tolist())
        self.samples += len(samples)

    def teardown(self) -> None:
        self._outlet = None  # pylsl closes the outlet when its last reference goes
        self.logger.info("published %d samples on LSL", self.samples)

    # -- the input -------------------------------------------------------------------------------

    def _pick(self, data_chunks: dict[str, cp.DataChunk]) -> tuple[str, cp.DataChunk]:
        if self.producer is not None:
            if self.producer not in data_chunks:
                raise LookupError(
                    f"LslOutlet {self.name!r}: no input from {self.producer!r}; its inputs are "
                    f"{sorted(data_chunks)}"
                )
            return self.producer, data_chunks[self.producer]
        if len(data_chunks) != 1:
            raise LookupError(
                f"LslOutlet {self.name!r} has the inputs {sorted(data_chunks)}: set producer= "
                "to the one to publish"
            )
        ((producer, chunk),) = data_chunks.items()
        return producer, chunk

    def _record_of(self, chunk: cp.DataChunk) -> str:
        names = chunk.keys()
        if self.input_record is not None:
            if self.input_record not in names:
                raise LookupError(
                    f"LslOutlet {self.name!r}: the input has no record {self.input_record!r}; "
                    f"it has {sorted(names)}"
                )
            return self.input_record
        for name in _PREFERRED:
            if name in names:
                return name
        data = [name for name in names if name not in _METADATA]
        if len(data) != 1:
            raise LookupError(
                f"LslOutlet {self.name!r}: cannot tell which of the records {sorted(names)} to "
                "publish; set input_record="
            )
        return data[0]

    # -- the stream ------------------------------------------------------------------------------

    def _create(self, samples: np.ndarray, chunk: cp.DataChunk) -> None:
        pylsl = self._pylsl
        self._format = format_of(samples)
        self._channels = samples.shape[1]
        self._rate = self._nominal_rate(chunk)
        name = self.stream or self.name
        info = pylsl.StreamInfo(
            name, self.type, self._channels, self._rate, self._format, self.source_id
        )
        description = _value(chunk, "description")
        labels = self.channel_labels or (description or {}).get("channel_labels")
        units = (description or {}).get("channel_units")
        self._describe(info, labels, units)
        self._outlet = pylsl.StreamOutlet(info)
        self.logger.info(
            "publishing LSL stream %r (type %r): %d x %s at %s",
            name,
            self.type,
            self._channels,
            self._format,
            "irregular rate" if self._rate == 0 else f"{self._rate:g} Hz",
        )

    def _describe(self, info: Any, labels: Any, units: Any) -> None:
        if labels is not None and len(labels) != self._channels:
            self.logger.warning(
                "%d channel labels for %d channels: labels left out", len(labels), self._channels
            )
            labels = None
        if units is not None and len(units) != self._channels:
            units = None
        if labels is None and units is None:
            return
        channels = info.desc().append_child("channels")
        for index in range(self._channels):
            channel = channels.append_child("channel")
            if labels is not None and labels[index] is not None:
                channel.append_child_value("label", str(labels[index]))
            if units is not None and units[index] is not None:
                channel.append_child_value("unit", str(units[index]))

    def _nominal_rate(self, chunk: cp.DataChunk) -> float:
        if self.rate is not None:
            return float(self.rate)
        rate = _value(chunk, "rate")
        if isinstance(rate, (int, float, np.number)) and rate > 0:
            return float(rate)
        return 0.0

    def _conform(self, samples: np.ndarray, record: str) -> np.ndarray:
        """``samples`` in the stream's format, or an LslFormatError saying what differs."""
        if samples.shape[1] != self._channels:
            raise LslFormatError(
                f"LslOutlet {self.name!r}: record {record!r} has {samples.shape[1]} channels; "
                f"the stream has {self._channels} (fixed by the first value)"
            )
        if self._format == "string":
            if samples.dtype.kind != "U":
                raise LslFormatError(
                    f"LslOutlet {self.name!r}: record {record!r} holds {samples.dtype} values; "
                    "the stream carries strings"
                )
            return samples
        target = FORMATS[self._format]
        if samples.dtype.kind in "US" or not np.can_cast(samples.dtype, target, "same_kind"):
            raise LslFormatError(
                f"LslOutlet {self.name!r}: record {record!r} holds {samples.dtype} values; the "
                f"stream's format is {self._format} (fixed by the first value)"
            )
        return np.ascontiguousarray(samples, dtype=target)

    def _times(self, chunk: cp.DataChunk, count: int) -> np.ndarray:
        """The Manager times of the chunk's ``count`` samples."""
        stamps = _value(chunk, "timestamps")
        if stamps is not None and np.ndim(stamps) == 1 and len(stamps) == count:
            return np.asarray(stamps, dtype=np.float64)
        rate = self._rate or self._nominal_rate(chunk)
        first = _value(chunk, "timestamp")
        if isinstance(first, (int, float)) and rate > 0:
            return float(first) + np.arange(count) / rate
        last = chunk.produced_at if chunk.produced_at is not None else self.now()
        if rate > 0:
            return last - np.arange(count - 1, -1, -1) / rate
        return np.full(count, last, dtype=np.float64)


def _value(chunk: cp.DataChunk, name: str) -> Any:
    return chunk.get(name)["value"] if name in chunk else None
