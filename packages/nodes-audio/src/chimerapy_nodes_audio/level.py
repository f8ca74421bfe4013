"""audio.level: the RMS and peak level of each audio chunk in dBFS, for meters."""

from __future__ import annotations

import math

import chimerapy as cp
import numpy as np

from chimerapy_nodes_audio.blocks import find_block, to_float

__all__ = ["AudioLevel", "dbfs"]


def dbfs(amplitude: float, floor: float) -> float:
    """``20 * log10(amplitude)`` relative to full scale (1.0), never below ``floor``."""
    if amplitude <= 0.0:
        return floor
    return max(20.0 * math.log10(amplitude), floor)


class AudioLevel(cp.Node):
    """Measures the RMS and peak level of each audio chunk in dBFS (for the dashboard's meter).

    Takes the first input chunk that has a ``samples`` record and emits

    * ``level_dbfs``: float, the RMS over every sample of every channel in dB relative to full
      scale (1.0 for float samples, 32768 for int16): a full-scale sine reads -3.01 dBFS and a
      full-scale square 0 dBFS. Silence (and anything quieter than ``floor_dbfs``) reads
      ``floor_dbfs`` rather than ``-inf``, so the value is always a finite JSON number.
    * ``peak_dbfs``: float, the largest absolute sample in dBFS, with the same floor.
    * ``timestamp``: float, the aligned time of the chunk's first sample (from the input).
    * ``duration``: float, the chunk's length in seconds.

    With ``passthrough`` (the default) the audio records (``samples``, ``rate``, ``channels``,
    ``timestamp``, ``sample_index``) are forwarded too, without a copy, so the node can sit inline
    (tone -> level -> recorder); ``passthrough=False`` emits only the level records.

    Args:
        name: the node's name.
        floor_dbfs: the lowest level reported.
        passthrough: forward the audio records alongside the levels.
    """

    kind = "step"

    def __init__(
        self, name: str = "level", *, floor_dbfs: float = -120.0, passthrough: bool = True
    ) -> None:
        super().__init__(name)
        if not math.isfinite(floor_dbfs) or floor_dbfs >= 0:
            raise ValueError(
                f"AudioLevel {name!r}: floor_dbfs must be a finite negative number, "
                f"got {floor_dbfs}"
            )
        self.floor_dbfs = float(floor_dbfs)
        self.passthrough = passthrough

    def step(self, data_chunks: dict[str, cp.DataChunk]) -> cp.DataChunk | None:
        found = find_block(data_chunks)
        if found is None:
            return None
        _, block = found
        samples = to_float(block.samples, np.float64)
        rms = math.sqrt(float(np.mean(np.square(samples)))) if samples.size else 0.0
        peak = float(np.max(np.abs(samples))) if samples.size else 0.0
        levels = {
            "level_dbfs": dbfs(rms, self.floor_dbfs),
            "peak_dbfs": dbfs(peak, self.floor_dbfs),
            "duration": block.duration,
        }
        if self.passthrough:
            return block.to_chunk(**levels)
        chunk = cp.DataChunk()
        chunk.add("timestamp", block.timestamp)
        for record, value in levels.items():
            chunk.add(record, value)
        return chunk
