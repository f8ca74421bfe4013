"""The microphone's timing without a device: PortAudio's callback is driven by hand.

A sound server may deliver audio in bursts (PulseAudio's virtual sources: 2 s at a time); the
blocks still get the times at which they were captured, from PortAudio's input ADC time.
"""

from __future__ import annotations

import logging
import re
from typing import NamedTuple

import numpy as np
import pytest

from chimerapy.testing import NodeHarness
from chimerapy_nodes_audio import AudioBlock, Microphone, microphone

pytestmark = pytest.mark.timeout(30)

RATE, BLOCK = 1000, 100  # 0.1 s blocks


class TimeInfo(NamedTuple):
    inputBufferAdcTime: float
    currentTime: float


class Status(NamedTuple):
    input_overflow: bool = False


class HandMic(Microphone):
    """A Microphone whose clock and device are the test's."""

    def prep(self):
        self._reset(RATE)
        self.clock = 1000.0
        self.published = []

    def now(self):
        return self.clock

    def publish(self, chunk):
        self.published.append(chunk)

    def deliver(self, first_capture: float, count: int, *, overflow_at: int | None = None) -> None:
        """``count`` blocks captured from ``first_capture`` on, all delivered now (a burst)."""
        for k in range(count):
            captured = first_capture + k * BLOCK / RATE
            values = np.round(np.arange(BLOCK) / RATE + captured, 3).astype(np.float32)[:, None]
            age = self.clock - captured
            self._on_block(values, BLOCK, TimeInfo(50.0 - age, 50.0), Status(k == overflow_at))


def drain(harness: NodeHarness) -> list[AudioBlock]:
    blocks = []
    while (chunk := harness.step()) is not None:
        blocks.append(AudioBlock.from_chunk(chunk))
    return blocks


def test_bursts_are_placed_by_adc_time_and_cut_at_the_start_and_the_stop():
    mic = HandMic("mic", blocksize=BLOCK)
    with NodeHarness(mic) as harness:
        assert harness.step() is None  # the first step: capture begins at 1000.0
        mic.clock = 1000.95
        mic.deliver(999.95, 10)  # one second of audio, half a block of it before the start
        blocks = drain(harness)
        # every sample's value is the time it was captured: the times must agree with it
        assert [b.frames for b in blocks] == [50] + [100] * 9
        assert blocks[0].timestamp == pytest.approx(1000.0) and blocks[0].samples[
            0, 0
        ] == pytest.approx(1000.0)
        for block in blocks:
            expected = block.timestamp + np.arange(block.frames) / RATE
            np.testing.assert_allclose(block.samples[:, 0], expected, atol=1e-3)
        assert [b.sample_index for b in blocks] == [0, *range(50, 950, 100)]

        # stopped at 1001.42: the audio up to then arrives in the next burst, which is cut
        harness.runtime.request_stop()
        mic.clock = 1001.42
        mic.deliver(1000.95, 10)
        mic.main()
        tail = [AudioBlock.from_chunk(c) for c in mic.published]
        assert [b.frames for b in tail] == [100] * 4 + [70]
        end = tail[-1].timestamp + tail[-1].duration
        assert end == pytest.approx(1001.42)
        assert tail[0].sample_index == 950 and tail[0].samples[0, 0] == pytest.approx(1000.95)


def test_overflows_and_drops_are_counted_sent_and_logged(caplog):
    mic = HandMic("mic", blocksize=BLOCK)
    with NodeHarness(mic) as harness:
        harness.step()
        mic.clock = 1000.3
        mic.deliver(1000.0, 3, overflow_at=1)
        chunks = [harness.step() for _ in range(3)]
        assert [c.get("overflows")["value"] for c in chunks] == [0, 1, 1]
        assert "input overflow: 1 more overflow(s) and 0 more dropped block(s)" in caplog.text

        mic._queue.maxsize = 2  # a consumer far behind: the third block of a burst is dropped
        mic.clock = 1000.6
        mic.deliver(1000.3, 3)
        later = [harness.step() for _ in range(2)]
        assert harness.step() is None
        assert [c.get("dropped_blocks")["value"] for c in later] == [0, 0]
        assert [c.get("sample_index")["value"] for c in later] == [300, 400]
        mic.clock = 1000.7
        mic.deliver(1000.6, 1)
        (chunk,) = [harness.step()]
        block = AudioBlock.from_chunk(chunk)
        assert chunk.get("dropped_blocks")["value"] == 1
        assert block.sample_index == 600  # the dropped block's frames are skipped, times stay right
        assert block.timestamp == pytest.approx(1000.6)
        assert (
            "0 more overflow(s) and 1 more dropped block(s) (totals 1, 1)" not in caplog.text
        )  # < 5 s
        harness.close()
        assert "0 more overflow(s) and 1 more dropped block(s) (totals 1, 1)" in caplog.text


def test_a_device_without_adc_times_falls_back_to_the_block_duration():
    mic = HandMic("mic", blocksize=BLOCK)
    with NodeHarness(mic) as harness:
        harness.step()
        mic.clock = 1000.1
        mic._on_block(np.zeros((BLOCK, 1), np.float32), BLOCK, TimeInfo(0.0, 0.0), Status())
        (block,) = drain(harness)
        assert block.timestamp == pytest.approx(1000.0) and block.frames == BLOCK


def test_a_device_that_goes_quiet_is_reported(monkeypatch, caplog):
    monkeypatch.setattr(microphone, "_STALL", 0.1)
    caplog.set_level(logging.INFO, logger="chimerapy.node.mic")
    mic = HandMic("mic", blocksize=BLOCK)
    with NodeHarness(mic) as harness:
        for _ in range(8):  # at least 0.16 s of empty steps
            assert harness.step() is None
        assert re.search(r"no audio from the device for \d\.\d s: was it disconnected", caplog.text)
        mic.clock = 1000.1
        mic.deliver(1000.0, 1)
        assert harness.step() is not None
        assert "the device delivers audio again" in caplog.text
