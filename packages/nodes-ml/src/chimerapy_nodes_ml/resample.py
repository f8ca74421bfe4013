"""A streaming resampler for audio blocks: the model's rate from any source rate, block by block.

Output sample ``j`` lies exactly at input position ``j * rate_in / rate_out`` (the filter's delay is
compensated), so a time computed from output samples is the time of the input samples it came
from. Downsampling first low-passes with a short windowed-sinc FIR (enough for voice activity, not
for hi-fi); both stages keep their state across blocks, so block boundaries leave no trace.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["StreamResampler"]


class StreamResampler:
    """Resamples a mono float stream from ``rate_in`` to ``rate_out``, one block at a time.

    Args:
        rate_in: the source's sample rate.
        rate_out: the wanted sample rate.
    """

    def __init__(self, rate_in: int, rate_out: int) -> None:
        if rate_in <= 0 or rate_out <= 0:
            raise ValueError(f"sample rates must be positive, got {rate_in} -> {rate_out}")
        self.rate_in, self.rate_out = rate_in, rate_out
        #: Input samples per output sample.
        self.step = rate_in / rate_out
        self.taps = (
            _lowpass(0.45 / self.step, 2 * math.ceil(4 * self.step) + 1) if self.step > 1 else None
        )
        self.delay = (len(self.taps) - 1) / 2 if self.taps is not None else 0.0
        self.reset()

    def reset(self) -> None:
        """Start a new stream (after a gap): the next block's first sample is input position 0."""
        keep = len(self.taps) - 1 if self.taps is not None else 0
        self._history = np.zeros(keep, np.float32)  # the raw samples the filter still needs
        self._buffer = np.zeros(0, np.float32)  # filtered samples from position _start on
        self._start = 0
        #: Output samples produced since the stream started.
        self.produced = 0

    def process(self, samples: np.ndarray) -> np.ndarray:
        """The output samples that ``samples`` (the next input block, 1-D float) complete."""
        samples = np.asarray(samples, np.float32)
        if self.rate_in == self.rate_out:
            self.produced += len(samples)
            return samples
        if self.taps is not None:
            raw = np.concatenate([self._history, samples])
            filtered = np.convolve(raw, self.taps, mode="valid").astype(np.float32)
            self._history = raw[len(raw) - len(self._history) :]
        else:
            filtered = samples
        self._buffer = np.concatenate([self._buffer, filtered])
        end = self._start + len(self._buffer)
        last = math.floor((end - 2 - self.delay) / self.step)  # output j needs positions < end
        if last < self.produced:
            return np.zeros(0, np.float32)
        positions = np.arange(self.produced, last + 1) * self.step + self.delay - self._start
        below = np.floor(positions).astype(np.int64)
        frac = (positions - below).astype(np.float32)
        out = self._buffer[below] * (1 - frac) + self._buffer[below + 1] * frac
        self.produced = last + 1
        drop = min(
            len(self._buffer),
            max(0, math.floor(self.produced * self.step + self.delay) - self._start),
        )
        self._buffer = self._buffer[drop:]
        self._start += drop
        return out


def _lowpass(cutoff: float, length: int) -> np.ndarray:
    """A Hamming-windowed sinc low-pass, ``length`` taps, ``cutoff`` cycles per sample, gain 1."""
    n = np.arange(length) - (length - 1) / 2
    taps = np.sinc(2 * cutoff * n) * np.hamming(length)
    return (taps / taps.sum()).astype(np.float32)
