"""audio.microphone: records an input device through ``sounddevice`` (PortAudio)."""

from __future__ import annotations

import math
import queue
import time
from collections.abc import Mapping, Sequence
from types import ModuleType
from typing import Any, NamedTuple

import chimerapy as cp
import numpy as np

from chimerapy_nodes_audio.blocks import AudioBlock, check_dtype
from chimerapy_nodes_audio.drift import DriftMeter
from chimerapy_nodes_audio.errors import AudioDeviceError

__all__ = ["Microphone", "choose_input_device"]

#: Audio kept for a consumer that is slower than the device, in seconds; beyond it blocks are
#: dropped (and counted).
_QUEUE_SECONDS = 10.0
#: How often repeated overflows or drops are summarised in the log, in seconds.
_REPORT_EVERY = 5.0
#: After a stop, how long to wait for the device to deliver the audio captured before it.
_STOP_WAIT = 3.0
#: How long a step waits for a block, in seconds.
_POLL = 0.02
#: Without a block for this long, the device is reported as stalled, in seconds (longer than
#: the 2 s bursts of some sound servers).
_STALL = 5.0
#: PortAudio's input ADC time is trusted when it puts the block at most this far in the past.
_MAX_AGE = 10.0


class _Captured(NamedTuple):
    samples: np.ndarray
    device_frame: int  # index of the first frame among those delivered since capture began
    captured_at: float  # aligned time of the first sample (arrival minus the block's age)
    overflows: int  # input overflows so far, this block's included
    dropped: int  # blocks dropped before this one


class Microphone(cp.Node):
    """Records an audio input device through a ``sounddevice`` input stream.

    ``prep`` resolves the device, opens the stream and starts it, so that a missing or busy
    device fails the commit and recording begins without the device's start-up delay. A PortAudio
    callback queues each block (copied) with the aligned time of its first sample: its arrival
    time minus its age, from PortAudio's input ADC time where the host API gives one (else the
    block's duration). ``step`` emits one chunk per block with the records of
    :mod:`chimerapy_nodes_audio.blocks` plus

    * ``overflows``: int, input overflows up to this block (samples the device lost because they
      were not read in time); they are also logged (the first at once, then a summary every 5 s).
    * ``dropped_blocks``: int, blocks dropped before this one because the node fell more than
      10 s behind the device (their frames are skipped in ``sample_index``, so later timestamps
      stay right); logged like overflows.

    The stream covers exactly the time from the node's first step to its stop, as the device's
    timing places the samples: older samples that arrive after the start are discarded, the
    first block is cut at the start, and after the stop the node waits (up to 3 s) for the audio
    captured before it and cuts the last block there. A device that delivers nothing for 5 s is
    reported in the log (and its return too). Timestamps are anchored once, on the first
    sample: ``timestamp = t0 + sample_index / rate``, exactly contiguous. The device clock's drift
    from the Manager's clock is measured (``clock_drift`` record, seconds; see
    :mod:`chimerapy_nodes_audio.drift`) and summarised in the log at teardown, not absorbed. An
    overflow loses an unknown number of samples and shows up as a jump of ``clock_drift``.

    Args:
        name: the node's name.
        device: an input device index, a name (exact, or a unique case-insensitive part of one),
            or None for the default input device.
        samplerate: sample frames per second, or None for the device's default rate.
        channels: channel count.
        blocksize: frames per emitted chunk (the first and last chunks may be shorter).
        dtype: ``"float32"`` or ``"int16"`` samples.

    Raises (in prep, so the commit fails with the message):
        AudioDeviceError: no input device, an unknown or ambiguous name, a device without input
            channels, a format the device refuses, or PortAudio missing; the message lists the
            devices that exist.
    """

    kind = "source"

    def __init__(
        self,
        name: str = "microphone",
        *,
        device: int | str | None = None,
        samplerate: int | None = None,
        channels: int = 1,
        blocksize: int = 1024,
        dtype: str = "float32",
    ) -> None:
        super().__init__(name)
        if channels <= 0 or blocksize <= 0 or (samplerate is not None and samplerate <= 0):
            raise ValueError(
                f"Microphone {name!r}: samplerate, channels and blocksize must be positive"
            )
        self.device = device
        self.samplerate = None if samplerate is None else int(samplerate)
        self.channels = int(channels)
        self.blocksize = int(blocksize)
        self.dtype = check_dtype(dtype)

    # -- lifecycle -------------------------------------------------------------------------------

    def prep(self) -> None:
        sd = _import_sounddevice()
        devices = list(sd.query_devices())
        index = choose_input_device(devices, sd.default.device[0], self.device)
        info = devices[index]
        self._reset(self.samplerate or int(info["default_samplerate"]))
        stream = None
        try:
            stream = sd.InputStream(
                device=index,
                samplerate=self.rate,
                channels=self.channels,
                blocksize=self.blocksize,
                dtype=self.dtype,
                callback=self._on_block,
            )
            stream.start()
        except sd.PortAudioError as error:
            if stream is not None:
                stream.close()
            raise AudioDeviceError(
                f"Microphone {self.name!r}: cannot open input device {index} ({info['name']!r}) at "
                f"{self.rate} Hz, {self.channels} channel(s), {self.dtype}: {error}"
            ) from error
        self._stream = stream
        self.logger.info(
            "recording device %d (%s) at %d Hz, %d channel(s), blocks of %d, %s",
            index,
            info["name"],
            self.rate,
            self.channels,
            self.blocksize,
            self.dtype,
        )

    def _reset(self, rate: int) -> None:
        """The capture state of a new stream at ``rate``."""
        self.rate = rate
        self._queue: queue.Queue[_Captured] = queue.Queue(
            maxsize=max(2, math.ceil(_QUEUE_SECONDS * rate / self.blocksize))
        )
        self._start: float | None = None  # aligned time of the first step: capture begins
        self._capturing = False
        self._device_frames = 0  # frames delivered by the device since capture began
        self._first: int | None = None  # the device frame that is sample_index 0
        self._t0 = 0.0  # aligned time of sample_index 0
        self._overflows = self._dropped = 0
        self._reported = (0, 0, time.monotonic())  # overflows, drops, when last logged
        self._drift = DriftMeter()
        self._sent = 0  # frames emitted
        self._last_block = time.monotonic()
        self._stalled = False

    def step(self) -> cp.DataChunk | None:
        if self._start is None:
            self._start, self._capturing = self.now(), True
            self._last_block = time.monotonic()
        try:  # a short wait: the stop, seen between steps, marks where the recording ends
            captured = self._queue.get(timeout=_POLL)
        except queue.Empty:
            self._check_stall()
            return None
        return self._chunk_of(captured)

    def main(self) -> None:
        """The default loop; once stopped, emit what the device captured before the stop."""
        super().main()
        if self._start is None:
            return
        until, deadline = self.now(), time.monotonic() + _STOP_WAIT
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                captured = self._queue.get(timeout=min(remaining, 0.1))
            except queue.Empty:
                continue
            chunk = self._chunk_of(captured, until=until)
            if chunk is not None:
                self.publish(chunk)
            if self._end_of(captured) >= until:
                break
        else:
            self.logger.warning(
                "the device did not deliver the audio up to the stop within %.0f s; the recording "
                "ends %.3f s early",
                _STOP_WAIT,
                until - self._covered(),
            )
        self._capturing = False

    def teardown(self) -> None:
        stream = getattr(self, "_stream", None)
        if stream is not None:
            try:
                stream.stop()
            finally:
                stream.close()
        if getattr(self, "_start", None) is None:
            return  # prep failed, or the node never ran
        self._report_losses(final=True)
        self.logger.info(
            "captured %d frames (%.2f s); %d overflows, %d dropped blocks; "
            "clock drift %+.1f ms (%+.0f ppm)",
            self._sent,
            self._sent / self.rate,
            self._overflows,
            self._dropped,
            self._drift.drift * 1e3,
            self._drift.ppm,
        )

    # -- blocks to chunks ------------------------------------------------------------------------

    def _chunk_of(self, captured: _Captured, until: float | None = None) -> cp.DataChunk | None:
        """The chunk for ``captured``, cut to start at the first step and to end at ``until``."""
        samples, frame = captured.samples, captured.device_frame
        if self._first is None:
            start = self._start if self._start is not None else captured.captured_at
            skip = max(0, round((start - captured.captured_at) * self.rate))
            if skip >= len(samples):
                return None  # captured before the start
            samples, frame = samples[skip:], frame + skip
            self._first, self._t0 = frame, captured.captured_at + skip / self.rate
        index = frame - self._first
        timestamp = self._t0 + index / self.rate
        if until is not None:
            samples = samples[: max(0, round((until - timestamp) * self.rate))]
            if not len(samples):
                return None
        self._sent += len(samples)
        self._last_block = time.monotonic()
        if self._stalled:
            self._stalled = False
            self.logger.info("the device delivers audio again")
        block_index = captured.device_frame - self._first
        drift = self._drift.observe(block_index / self.rate, captured.captured_at - self._t0)
        self._report_losses()
        block = AudioBlock(samples, self.rate, self.channels, timestamp, index)
        return block.to_chunk(
            clock_drift=drift, overflows=captured.overflows, dropped_blocks=captured.dropped
        )

    def _end_of(self, captured: _Captured) -> float:
        """The aligned time at which ``captured`` ends (on the stream's time line, if any yet)."""
        frames = len(captured.samples)
        if self._first is None:
            return captured.captured_at + frames / self.rate
        return self._t0 + (captured.device_frame + frames - self._first) / self.rate

    def _covered(self) -> float:
        """The aligned time up to which the device delivered audio (the start if none)."""
        if self._first is None:
            return self._start or 0.0
        return self._t0 + (self._device_frames - self._first) / self.rate

    # -- the PortAudio thread --------------------------------------------------------------------

    def _on_block(self, indata: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
        arrival = self.now()
        if not self._capturing:
            return
        if status.input_overflow:
            self._overflows += 1
        first, self._device_frames = self._device_frames, self._device_frames + frames
        age = _age(time_info)
        captured_at = arrival - (age if age is not None else frames / self.rate)
        try:
            self._queue.put_nowait(
                _Captured(indata.copy(), first, captured_at, self._overflows, self._dropped)
            )
        except queue.Full:
            self._dropped += 1

    # -- reporting -------------------------------------------------------------------------------

    def _check_stall(self) -> None:
        silent = time.monotonic() - self._last_block
        if silent > _STALL and not self._stalled:
            self._stalled = True
            self.logger.warning(
                "no audio from the device for %.1f s: was it disconnected, or is its sound "
                "server gone?",
                silent,
            )

    def _report_losses(self, final: bool = False) -> None:
        overflows, dropped, when = self._reported
        new_overflows, new_dropped = self._overflows - overflows, self._dropped - dropped
        if not (new_overflows or new_dropped):
            return
        now = time.monotonic()
        first = overflows == 0 and dropped == 0
        if not (first or final or now - when >= _REPORT_EVERY):
            return
        self.logger.warning(
            "input overflow: %d more overflow(s) and %d more dropped block(s) (totals %d, %d); "
            "samples were lost",
            new_overflows,
            new_dropped,
            self._overflows,
            self._dropped,
        )
        self._reported = (self._overflows, self._dropped, now)


def _age(time_info: Any) -> float | None:
    """Seconds from the block's first sample to now, from PortAudio's stream times if sane."""
    try:
        adc, current = float(time_info.inputBufferAdcTime), float(time_info.currentTime)
    except (AttributeError, TypeError, ValueError):
        return None
    age = current - adc
    return age if adc > 0 and 0.0 <= age < _MAX_AGE else None


def _import_sounddevice() -> ModuleType:
    try:
        import sounddevice
    except OSError as error:  # the PortAudio shared library is missing
        raise AudioDeviceError(
            f"sounddevice cannot load PortAudio ({error}); "
            "install it: apt-get install libportaudio2"
        ) from error
    return sounddevice


def choose_input_device(
    devices: Sequence[Mapping[str, Any]], default: int, wanted: int | str | None
) -> int:
    """The index of the input device ``wanted`` among ``devices`` (``sounddevice.query_devices()``).

    Args:
        devices: one mapping per device with ``name`` and ``max_input_channels``.
        default: the default input device's index (-1: none).
        wanted: an index, a name (exact or a unique case-insensitive part), or None (default).

    Raises:
        AudioDeviceError: no input device at all, an unknown or ambiguous name, a device without
            input channels; the message lists the input devices that exist.
    """
    inputs = {i: str(d["name"]) for i, d in enumerate(devices) if d["max_input_channels"] > 0}
    listing = "; ".join(f"{i}: {name!r}" for i, name in inputs.items())
    if not inputs:
        found = ", ".join(repr(str(d["name"])) for d in devices) or "none"
        raise AudioDeviceError(
            "no audio input device: PortAudio sees no device with input channels "
            f"(devices: {found}). Connect a microphone, or check that the sound server "
            "(PulseAudio, PipeWire) is running and reachable from this process"
        )
    if wanted is None:
        if default in inputs:
            return default
        raise AudioDeviceError(f"no default audio input device; pass device= one of: {listing}")
    if isinstance(wanted, bool) or not isinstance(wanted, (int, str)):
        raise AudioDeviceError(
            f"device must be an index, a name or None, got {wanted!r}; input devices: {listing}"
        )
    if isinstance(wanted, int):
        if wanted in inputs:
            return wanted
        what = "has no input channels" if 0 <= wanted < len(devices) else "does not exist"
        raise AudioDeviceError(f"audio device {wanted} {what}; input devices: {listing}")
    exact = [i for i, name in inputs.items() if name.lower() == wanted.lower()]
    matches = exact or [i for i, name in inputs.items() if wanted.lower() in name.lower()]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise AudioDeviceError(f"unknown audio input device {wanted!r}; input devices: {listing}")
    names = ", ".join(f"{i}: {inputs[i]!r}" for i in matches)
    raise AudioDeviceError(
        f"audio input device name {wanted!r} is ambiguous ({names}); pass an index or a longer name"
    )
