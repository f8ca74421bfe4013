"""Nodes written the way ChimeraPy 0.0.10's documentation, examples and tests write them.

``import chimerapy as cp``; ``step`` with no argument for sources; ``save_*`` with 0.0.10's
keyword names (``data=``) and PyAudio format constants; frames as float arrays in [0, 255].
"""

from __future__ import annotations

import os
import time

import chimerapy as cp
import numpy as np
import pandas as pd

PA_INT16 = 8  # pyaudio.paInt16


class GenNode(cp.Node):
    def prep(self):
        self.value = 2

    def step(self):
        time.sleep(0.2)
        return self.value


class ConsumeNode(cp.Node):
    def prep(self):
        self.coef = 3

    def step(self, data_chunks: dict[str, cp.DataChunk]):
        return self.coef * data_chunks["Gen1"].get("default")["value"]


class CounterNode(cp.Node):
    """Counts its steps into a record ``i``."""

    def prep(self):
        self.i = 0

    def step(self):
        time.sleep(0.05)
        self.i += 1
        chunk = cp.DataChunk()
        chunk.add("i", self.i)
        return chunk


class RecordNode(cp.Node):
    """Keeps the latest chunk of each input, as 0.0.10's SubsequentNode did."""

    def prep(self):
        self.record = {}

    def step(self, data: dict[str, cp.DataChunk]):
        for name, chunk in data.items():
            self.record[name] = chunk
        chunk = cp.DataChunk()
        chunk.add("record", self.record)
        return chunk


class PrepErrorNode(cp.Node):
    def prep(self):
        raise RuntimeError("HA! GOTCHA!")


class AudioNode(cp.Node):
    def __init__(self, name, chunk=1024, channels=2, format=PA_INT16, rate=44100, **kwargs):
        super().__init__(name, **kwargs)
        self.chunk = chunk
        self.channels = channels
        self.format = format
        self.rate = rate

    def step(self):
        data = np.random.rand(self.chunk) * 2 - 1  # interleaved, float64, for a paInt16 file
        self.save_audio(name="test", data=data, channels=self.channels, format=self.format, rate=self.rate)


class VideoNode(cp.Node):
    def __init__(self, name, fps=15, period=1 / 15, **kwargs):
        super().__init__(name, **kwargs)
        self.fps = fps
        self.period = period

    def step(self):
        time.sleep(self.period)
        frame = np.random.rand(48, 64, 3) * 255  # float64, as 0.0.10's tests saved them
        self.save_video(name="test", data=frame, fps=self.fps)


class ImageNode(cp.Node):
    def step(self):
        self.save_image(name="test", data=np.random.rand(20, 30, 3) * 255)


class TabularNode(cp.Node):
    def step(self):
        self.save_tabular(name="test", data={"time": time.time(), "content": "HELLO"})
        self.save_tabular(name="test", data=pd.Series({"time": time.time(), "content": "GOODBYE"}))
        self.save_tabular(name="test", data=pd.DataFrame({"time": [time.time()], "content": ["WAIT!"]}))


class PidNode(cp.Node):
    """Records the process it runs in, and outputs its step count."""

    def prep(self):
        self.steps = 0

    def step(self):
        time.sleep(0.05)
        self.steps += 1
        self.save_tabular(name="pid", data={"pid": os.getpid(), "step": self.steps})
        return self.steps


class TagNode(cp.Node):
    """A source that logs its ``tag`` once, then saves it with its step count and outputs it."""

    def __init__(self, name, tag=0, **kwargs):
        super().__init__(name, **kwargs)
        self.tag = tag

    def prep(self):
        self.count = 0
        self.logger.info("tag %s ready", self.tag)

    def step(self):
        time.sleep(0.05)
        self.count += 1
        self.save_tabular(name="tags", data={"tag": self.tag, "step": self.count})
        return self.tag


class DoubleNode(cp.Node):
    """Outputs twice the value of its input named ``source``."""

    def __init__(self, name, source="src", **kwargs):
        super().__init__(name, **kwargs)
        self.source = source

    def step(self, data_chunks):
        return 2 * data_chunks[self.source].get("default")["value"]
