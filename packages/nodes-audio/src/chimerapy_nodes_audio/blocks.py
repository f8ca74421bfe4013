"""Audio on the wire: the records of an audio chunk, and sample format conversions.

An audio source emits one :class:`chimerapy.DataChunk` per block with the records

=================  ===============================================================================
``samples``        numpy array ``(n, channels)``: ``float32`` in [-1, 1) (the default) or ``int16``
                   full-scale PCM; one stream keeps one dtype for its whole life
``rate``           int, sample frames per second
``channels``       int
``timestamp``      float, Manager-aligned time of the block's first sample; consecutive blocks are
                   contiguous: ``timestamp[k+1] - timestamp[k] == n_k / rate``
``sample_index``   int, index of the block's first sample frame since the stream started
``clock_drift``    float, seconds the Manager-aligned clock has moved away from the stream's own
                   clock since the start (see :mod:`chimerapy_nodes_audio.drift`)
=================  ===============================================================================

The microphone adds ``overflows`` and ``dropped_blocks`` (cumulative counts). Consumers take the
first input chunk that has a ``samples`` record, whatever its producer is called
(:func:`find_block`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import chimerapy as cp
import numpy as np

__all__ = ["SAMPLE_DTYPES", "AudioBlock", "check_dtype", "convert", "find_block", "to_float"]

#: The sample formats a stream may carry.
SAMPLE_DTYPES = ("float32", "int16")

_INT16_SCALE = 32768.0


@dataclass(frozen=True)
class AudioBlock:
    """One block of an audio stream, as its records travel in a DataChunk.

    ``samples`` is not copied: a block built from a received chunk holds the read-only view of
    the message buffer, and a block sent with :meth:`to_chunk` must not be modified afterwards.
    """

    samples: np.ndarray
    rate: int
    channels: int
    timestamp: float
    sample_index: int

    @property
    def frames(self) -> int:
        """Sample frames in the block."""
        return len(self.samples)

    @property
    def duration(self) -> float:
        """The block's length in seconds."""
        return self.frames / self.rate

    def to_chunk(self, **extra: Any) -> cp.DataChunk:
        """A DataChunk with the audio records, plus ``extra`` records (name -> value)."""
        chunk = cp.DataChunk()
        chunk.add("samples", self.samples)
        chunk.add("rate", int(self.rate))
        chunk.add("channels", int(self.channels))
        chunk.add("timestamp", float(self.timestamp))
        chunk.add("sample_index", int(self.sample_index))
        for name, value in extra.items():
            chunk.add(name, value)
        return chunk

    @classmethod
    def from_chunk(cls, chunk: cp.DataChunk) -> AudioBlock:
        """Read the audio records of ``chunk``; ``(n,)`` mono samples become ``(n, 1)``.

        Raises:
            ValueError: a record is missing or does not match the others (names the producer).
        """
        try:
            samples = chunk.get("samples")["value"]
            rate = int(chunk.get("rate")["value"])
            channels = int(chunk.get("channels")["value"])
            timestamp = float(chunk.get("timestamp")["value"])
            sample_index = int(chunk.get("sample_index")["value"])
        except KeyError as error:
            raise ValueError(f"audio chunk from {chunk.producer!r}: {error.args[0]}") from None
        if not isinstance(samples, np.ndarray):
            raise TypeError(
                f"audio chunk from {chunk.producer!r}: samples must be a numpy array, "
                f"not {type(samples).__name__}"
            )
        if samples.ndim == 1 and channels == 1:
            samples = samples.reshape(-1, 1)
        if samples.ndim != 2 or samples.shape[1] != channels:
            raise ValueError(
                f"audio chunk from {chunk.producer!r}: samples of shape {samples.shape} do not "
                f"match channels={channels}"
            )
        if rate <= 0:
            raise ValueError(
                f"audio chunk from {chunk.producer!r}: rate must be positive, got {rate}"
            )
        return cls(samples, rate, channels, timestamp, sample_index)


def find_block(data_chunks: Mapping[str, cp.DataChunk]) -> tuple[str, AudioBlock] | None:
    """The first input chunk that has a ``samples`` record, as ``(producer, block)``."""
    for producer, chunk in data_chunks.items():
        if "samples" in chunk:
            return producer, AudioBlock.from_chunk(chunk)
    return None


def check_dtype(dtype: str) -> str:
    """Return ``dtype`` if it is a stream sample format, else raise ValueError."""
    if dtype not in SAMPLE_DTYPES:
        raise ValueError(f"dtype must be one of {SAMPLE_DTYPES}, got {dtype!r}")
    return dtype


def to_float(samples: np.ndarray, dtype: type = np.float32) -> np.ndarray:
    """Samples as floats in [-1, 1): ``int16`` is divided by 32768; floats are only cast."""
    if samples.dtype == np.int16:
        return samples.astype(dtype) / dtype(_INT16_SCALE)
    return samples.astype(dtype, copy=False)


def convert(samples: np.ndarray, dtype: str) -> np.ndarray:
    """Samples in the stream format ``dtype`` (``"float32"`` or ``"int16"``).

    Floats become ``int16`` by ``round(x * 32768)`` clipped to the int16 range, the exact inverse
    of :func:`to_float` for values that came from ``int16``. Returns ``samples`` itself when it
    already has the format.
    """
    if samples.dtype == np.dtype(check_dtype(dtype)):
        return samples
    if dtype == "float32":
        return to_float(samples)
    scaled = np.rint(samples.astype(np.float64) * _INT16_SCALE)
    return np.clip(scaled, -32768, 32767).astype(np.int16)
