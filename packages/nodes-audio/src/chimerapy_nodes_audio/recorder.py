"""audio.recorder: records an audio input into the session archive with ``save_audio``."""

from __future__ import annotations

import warnings
from typing import ClassVar

import chimerapy as cp
import numpy as np

from chimerapy_nodes_audio.blocks import AudioBlock, find_block

__all__ = ["AudioRecorder"]

#: The longest gap filled with silence, in seconds; a longer one is only reported.
_MAX_FILL = 60.0


class AudioRecorder(cp.Node):
    """Records any audio input into ``<record_name>.wav`` with :meth:`chimerapy.Node.save_audio`.

    Takes the first input chunk that has a ``samples`` record, whatever its producer is called,
    and appends its samples as they are (float32 or int16) with the chunk's ``timestamp`` as the
    time of its first sample. The core writes ``<record_name>.wav``, ``<record_name>.audio.json`` (start
    time, rate, channels) and ``<record_name>.blocks.csv`` (each block's first frame and time), into
    the node's folder of the session archive.

    A block is saved once, even if the node steps again on another input. A gap in
    ``sample_index`` (blocks lost upstream) is logged and counted in the ``gaps`` attribute; with
    ``fill_gaps`` it is filled with silence (up to 60 s) so that the WAV's sample positions stay
    on the stream's time line. A stream that starts over (the index goes back) is logged and
    appended.

    Args:
        name: the node's name.
        record_name: the name of the recording in the archive (the file stem).
        fill_gaps: write silence in place of samples lost upstream.
        record: the former name of ``record_name`` (still accepted, with a warning).
    """

    kind = "sink"
    renamed_options: ClassVar[dict[str, str]] = {"record": "record_name"}

    def __init__(
        self, name: str = "audio_recorder", *, record_name: str = "audio", fill_gaps: bool = True,
        record: str | None = None,
    ) -> None:
        super().__init__(name)
        if record is not None:
            warnings.warn("AudioRecorder's option 'record' is now called 'record_name'", DeprecationWarning,
                          stacklevel=2)
            record_name = record
        if not record_name:
            raise ValueError(f"AudioRecorder {name!r}: record_name must be a non-empty name")
        self.record_name = record_name
        self.fill_gaps = fill_gaps

    def prep(self) -> None:
        self._next: tuple[str, int] | None = None  # (producer, expected sample_index)
        self._last: tuple[str, int | None] | None = None  # (producer, seq) of the last saved chunk
        self.gaps = 0
        self.frames = 0

    def step(self, data_chunks: dict[str, cp.DataChunk]) -> None:
        found = find_block(data_chunks)
        if found is None:
            return
        producer, block = found
        seq = data_chunks[producer].seq
        if self._last == (producer, seq) and seq is not None:
            return
        self._last = (producer, seq)
        self._check_continuity(producer, block)
        self.save_audio(
            self.record_name, block.samples, block.rate, block.channels, timestamp=block.timestamp
        )
        self.frames += block.frames
        self._next = (producer, block.sample_index + block.frames)

    def teardown(self) -> None:
        if self.frames or self.gaps:
            self.logger.info(
                "recorded %d frames into %s.wav (%d gaps)", self.frames, self.record_name, self.gaps
            )

    def _check_continuity(self, producer: str, block: AudioBlock) -> None:
        if self._next is None:
            return
        previous, expected = self._next
        if previous != producer or block.sample_index == expected:
            return
        missing = block.sample_index - expected
        if missing < 0:
            self.logger.warning(
                "audio from %s went back from frame %d to %d (a restarted stream); appending",
                producer,
                expected,
                block.sample_index,
            )
            return
        self.gaps += 1
        fill = self.fill_gaps and missing <= _MAX_FILL * block.rate
        self.logger.warning(
            "%d frames (%.3f s) missing from %s before frame %d%s",
            missing,
            missing / block.rate,
            producer,
            block.sample_index,
            "; filled with silence" if fill else "",
        )
        if fill:
            silence = np.zeros((missing, block.channels), dtype=block.samples.dtype)
            start = block.timestamp - missing / block.rate
            self.save_audio(self.record_name, silence, block.rate, block.channels, timestamp=start)
            self.frames += missing
