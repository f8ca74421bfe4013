"""audio.file: plays a WAV file in real time as audio chunks."""

from __future__ import annotations

import time
from pathlib import Path

import chimerapy as cp

from chimerapy_nodes_audio.blocks import AudioBlock, check_dtype
from chimerapy_nodes_audio.pacing import BlockPacer
from chimerapy_nodes_audio.wavfile import WavReader

__all__ = ["AudioFile"]


class AudioFile(cp.Node):
    """Plays a WAV file in real time as audio chunks, as if it were a microphone.

    The file is opened in ``prep`` (a missing or unsupported file fails the commit with an
    :class:`~chimerapy_nodes_audio.errors.AudioFileError` naming it) and read block by block:
    blocks of ``blocksize`` frames (the last one shorter) at the file's own rate and channel count,
    on an absolute real-time schedule, with the audio records of
    :mod:`chimerapy_nodes_audio.blocks`. At the end of the file the node logs it and idles until
    stopped, or with ``loop`` starts over: the stream (its ``sample_index`` and timestamps) goes
    on without a break.

    Args:
        name: the node's name.
        path: the WAV file (PCM 8/16/24/32-bit or float 32/64-bit; see
            :mod:`chimerapy_nodes_audio.wavfile`). It must exist on the Worker that runs the node.
        blocksize: frames per emitted chunk.
        dtype: ``"float32"`` or ``"int16"`` samples, whatever the file holds.
        loop: start over at the end of the file.
        realtime: False emits as fast as the consumers take it (offline processing).
    """

    kind = "source"

    def __init__(
        self,
        name: str = "audio_file",
        *,
        path: str = "",
        blocksize: int = 1024,
        dtype: str = "float32",
        loop: bool = False,
        realtime: bool = True,
    ) -> None:
        super().__init__(name)
        if not path:
            raise ValueError(f"AudioFile {name!r} needs path=<a WAV file>")
        if blocksize <= 0:
            raise ValueError(f"AudioFile {name!r}: blocksize must be positive, got {blocksize}")
        self.path = str(Path(path))
        self.blocksize = int(blocksize)
        self.dtype = check_dtype(dtype)
        self.loop = loop
        self.realtime = realtime

    def prep(self) -> None:
        self._reader = WavReader(self.path, dtype=self.dtype)
        if self._reader.frames == 0:
            self._reader.close()
            raise ValueError(f"AudioFile {self.name!r}: {self.path!r} holds no audio")
        self._pacer = BlockPacer(
            self._reader.rate, clock=self.now, logger=self.logger, realtime=self.realtime
        )
        self._frame = 0
        self._ended = False
        self.logger.info(
            "playing %s: %d frames, %d Hz, %d channel(s)%s",
            self.path,
            self._reader.frames,
            self._reader.rate,
            self._reader.channels,
            ", looped" if self.loop else "",
        )

    def step(self) -> cp.DataChunk | None:
        if self._ended:
            time.sleep(0.05)
            return None
        if not self._pacer.started:
            self._pacer.start()
        if self._reader.position >= self._reader.frames:
            if not self.loop:
                self._ended = True
                self.logger.info("end of %s after %d frames", self.path, self._frame)
                return None
            self._reader.rewind()
        frames = min(self.blocksize, self._reader.frames - self._reader.position)
        if not self._pacer.wait(self._frame + frames, lambda: self.running):
            return None
        samples = self._reader.read(frames)
        block = AudioBlock(
            samples,
            self._reader.rate,
            self._reader.channels,
            self._pacer.timestamp(self._frame),
            self._frame,
        )
        self._frame += len(samples)
        return block.to_chunk(clock_drift=self._pacer.measure_drift())

    def teardown(self) -> None:
        reader = getattr(self, "_reader", None)
        if reader is not None:
            reader.close()
