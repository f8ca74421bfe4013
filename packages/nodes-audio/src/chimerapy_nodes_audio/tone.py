"""audio.tone: a synthetic sine or white-noise source, paced in real time."""

from __future__ import annotations

import time

import chimerapy as cp
import numpy as np

from chimerapy_nodes_audio.blocks import AudioBlock, check_dtype, convert
from chimerapy_nodes_audio.pacing import BlockPacer

__all__ = ["Tone"]

_WAVEFORMS = ("sine", "noise")


class Tone(cp.Node):
    """A synthetic sine or white-noise audio source: the embedded default for demos and tests.

    Emits blocks of ``blocksize`` frames on an absolute real-time schedule (see
    :mod:`chimerapy_nodes_audio.pacing`) with the audio records of
    :mod:`chimerapy_nodes_audio.blocks`; every channel carries the same signal. The sine's phase
    is continuous across blocks. With ``duration`` the stream ends after exactly
    ``round(duration * samplerate)`` frames (the last block is shortened) and the node then
    idles until stopped.

    Args:
        name: the node's name.
        frequency: the sine's frequency in Hz (ignored for noise).
        amplitude: peak amplitude as a fraction of full scale, in [0, 1]; for noise, the
            standard deviation (clipped to full scale).
        waveform: ``"sine"`` or ``"noise"`` (Gaussian white noise).
        samplerate: sample frames per second.
        channels: channel count.
        blocksize: frames per emitted chunk.
        dtype: ``"float32"`` or ``"int16"`` samples.
        duration: seconds of audio to emit, or None for an endless stream.
        seed: the noise generator's seed (None: a random one).
        realtime: False emits as fast as the consumers take it (offline rendering).
    """

    kind = "source"

    def __init__(
        self,
        name: str = "tone",
        *,
        frequency: float = 440.0,
        amplitude: float = 0.5,
        waveform: str = "sine",
        samplerate: int = 48000,
        channels: int = 1,
        blocksize: int = 1024,
        dtype: str = "float32",
        duration: float | None = None,
        seed: int | None = None,
        realtime: bool = True,
    ) -> None:
        super().__init__(name)
        if waveform not in _WAVEFORMS:
            raise ValueError(
                f"Tone {name!r}: waveform must be one of {_WAVEFORMS}, got {waveform!r}"
            )
        if not 0.0 <= amplitude <= 1.0:
            raise ValueError(f"Tone {name!r}: amplitude must be in [0, 1], got {amplitude}")
        if samplerate <= 0 or channels <= 0 or blocksize <= 0:
            raise ValueError(f"Tone {name!r}: samplerate, channels and blocksize must be positive")
        if duration is not None and duration < 0:
            raise ValueError(f"Tone {name!r}: duration must be >= 0 or None, got {duration}")
        self.frequency = float(frequency)
        self.amplitude = float(amplitude)
        self.waveform = waveform
        self.samplerate = int(samplerate)
        self.channels = int(channels)
        self.blocksize = int(blocksize)
        self.dtype = check_dtype(dtype)
        self.duration = duration
        self.seed = seed
        self.realtime = realtime

    def prep(self) -> None:
        self._pacer = BlockPacer(
            self.samplerate, clock=self.now, logger=self.logger, realtime=self.realtime
        )
        self._rng = np.random.default_rng(self.seed)
        self._total = None if self.duration is None else round(self.duration * self.samplerate)
        self._frame = 0

    def step(self) -> cp.DataChunk | None:
        frames = (
            self.blocksize
            if self._total is None
            else min(self.blocksize, self._total - self._frame)
        )
        if frames <= 0:
            time.sleep(0.05)
            return None
        if not self._pacer.started:
            self._pacer.start()
        if not self._pacer.wait(self._frame + frames, lambda: self.running):
            return None
        block = AudioBlock(
            convert(self._render(self._frame, frames), self.dtype),
            self.samplerate,
            self.channels,
            self._pacer.timestamp(self._frame),
            self._frame,
        )
        self._frame += frames
        return block.to_chunk(clock_drift=self._pacer.measure_drift())

    def _render(self, first: int, frames: int) -> np.ndarray:
        if self.waveform == "noise":
            mono = np.clip(self._rng.normal(0.0, self.amplitude, frames), -1.0, 1.0)
        else:
            index = np.arange(first, first + frames, dtype=np.float64)
            cycles = np.mod(index * (self.frequency / self.samplerate), 1.0)
            mono = self.amplitude * np.sin(2.0 * np.pi * cycles)
        mono = mono.astype(np.float32)
        return np.repeat(mono[:, None], self.channels, axis=1)
