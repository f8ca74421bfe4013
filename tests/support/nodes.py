"""Nodes used by the tests. Written only against the public API (`import chimerapy as cp`)."""

from __future__ import annotations

import os
import pickle
import time
from pathlib import Path

import numpy as np

import chimerapy as cp


class CountingSource(cp.Node):
    """Emits chunks {"i": 0, 1, 2, ...} (and an image when `image=True`), `count` of them at most."""

    def __init__(self, name, count=None, period=0.0, image=False):
        super().__init__(name)
        self.count, self.period, self.image = count, period, image

    def prep(self):
        self.i = 0

    def step(self):
        if self.count is not None and self.i >= self.count:
            time.sleep(0.01)
            return None
        if self.period:
            time.sleep(self.period)
        chunk = cp.DataChunk()
        chunk.add("i", self.i)
        if self.image:
            chunk.add("frame", np.full((48, 64, 3), self.i % 256, np.uint8), "image")
        self.i += 1
        return chunk


class ValuesSource(cp.Node):
    """Emits each value of `values` once, as record "v", then nothing."""

    def __init__(self, name, values, content_type="other"):
        super().__init__(name)
        self.values, self.content_type = values, content_type

    def prep(self):
        self.i = 0

    def step(self):
        time.sleep(0.005)
        if self.i >= len(self.values):
            return None
        chunk = cp.DataChunk()
        chunk.add("v", self.values[self.i], self.content_type)
        self.i += 1
        return chunk


class Dawdler(cp.Node):
    """Takes each chunk slowly (``seconds`` per step): a producer at full speed keeps its queue full."""

    def __init__(self, name, seconds=0.0005):
        super().__init__(name)
        self.seconds = seconds

    def step(self, data_chunks):
        time.sleep(self.seconds)


class Doubler(cp.Node):
    """Passes on {"i": 2 * i} from its single input."""

    def step(self, data_chunks):
        (chunk,) = data_chunks.values()
        out = cp.DataChunk()
        out.add("i", chunk.get("i")["value"] * 2)
        return out


class Summer(cp.Node):
    """Sums record "i" over all inputs; remembers which producers were present."""

    def step(self, data_chunks):
        out = cp.DataChunk()
        out.add("i", sum(c.get("i")["value"] for c in data_chunks.values()))
        out.add("from", sorted(data_chunks))
        return out


class Collector(cp.Node):
    """Writes every received chunk (producer, seq, record values) to `path` with pickle at teardown."""

    def __init__(self, name, path):
        super().__init__(name)
        self.path = str(path)

    def prep(self):
        self.received = []

    def step(self, data_chunks):
        for producer, chunk in data_chunks.items():
            values = {name: record["value"] for name, record in chunk.items()}
            types = {name: record["content-type"] for name, record in chunk.items()}
            self.received.append((producer, chunk.seq, values, types))

    def teardown(self):
        Path(self.path).write_bytes(pickle.dumps(self.received))


def collected(path):
    """What a Collector wrote: a list of (producer, seq, values, content types)."""
    return pickle.loads(Path(path).read_bytes())


class RaisesIn(cp.Node):
    """Raises RuntimeError in the phase named `phase` ("prep", "step", "teardown")."""

    def __init__(self, name, phase):
        super().__init__(name)
        self.phase = phase

    def prep(self):
        if self.phase == "prep":
            raise RuntimeError(f"{self.name} fails in prep on purpose")

    def step(self, data_chunks=None):
        time.sleep(0.01)
        if self.phase == "step":
            raise RuntimeError(f"{self.name} fails in step on purpose")
        return 1

    def teardown(self):
        if self.phase == "teardown":
            raise RuntimeError(f"{self.name} fails in teardown on purpose")


class IgnoresStop(cp.Node):
    """A source whose step blocks far longer than any stop grace period."""

    def step(self):
        time.sleep(3600)


class Talker(cp.Node):
    """Logs a marker line from its step."""

    def step(self):
        time.sleep(0.05)
        self.logger.info("talker says hello %d", 42)
        return None


class Tunable(cp.Node):
    """Emits a chunk with record "level" every 50 ms; a registered method sets the level while it runs."""

    def __init__(self, name="tunable", level: float = 1.0):
        super().__init__(name)
        self.level = level

    def step(self):
        time.sleep(0.05)
        chunk = cp.DataChunk()
        chunk.add("level", self.level)
        return chunk

    @cp.register
    def set_level(self, level: float, *, note: str = "") -> float:
        """Set the emitted level; returns the previous one."""
        previous, self.level = self.level, level
        return previous

    @cp.register
    def fail(self) -> None:
        raise RuntimeError("fails on purpose")


class Annotator(cp.Node):
    """Records, every 0.1 s, a table row (``step`` and a sine ``wave``); every second also a JSON
    event ``{"event": "tick", "i": step}`` and a text line ``"note <step>"``."""

    def prep(self):
        self.i = 0
        self.due = time.monotonic()

    def step(self):
        self.due += 0.1
        time.sleep(max(0.0, self.due - time.monotonic()))
        self.save_tabular("values", {"step": self.i, "wave": float(np.sin(self.i / 5))})
        if self.i % 10 == 0:
            self.save_json("events", {"event": "tick", "i": self.i})
            self.save_text("notes", f"note {self.i}\n")
        self.i += 1


class Beacon(cp.Node):
    """Records a row ``{"raw": <its wall clock>}`` every 50 ms."""

    def step(self):
        time.sleep(0.05)
        self.save_tabular("beats", {"raw": time.time()})


class Ticker(cp.Node):
    """Records a numbered row ``{"i": 0, 1, ...}`` every 20 ms and sends the number on."""

    def prep(self):
        self.i = 0

    def step(self):
        time.sleep(0.02)
        self.save_tabular("ticks", {"i": self.i})
        self.i += 1
        return self.i - 1


class PrepCountingCamera(cp.Node):
    """A camera that keeps count: appends its pid to the file `prep_log` in each prep, then every
    `period` s emits {"i", "pid", "frame" (a 64x48 image)} and saves a row {"i"} to the table
    "rows" and the frame to the video "video"."""

    def __init__(self, name, prep_log, period=0.03):
        super().__init__(name)
        self.prep_log, self.period = str(prep_log), period

    def prep(self):
        with open(self.prep_log, "a", encoding="utf-8") as log:
            log.write(f"{os.getpid()}\n")
        self.i = 0

    def step(self):
        time.sleep(self.period)
        frame = np.full((48, 64, 3), (self.i * 8) % 256, np.uint8)
        self.save_tabular("rows", {"i": self.i})
        self.save_video("video", frame, fps=30)
        chunk = cp.DataChunk()
        chunk.add("i", self.i)
        chunk.add("pid", os.getpid())
        chunk.add("frame", frame, "image")
        self.i += 1
        return chunk


class JsonSink(cp.Node):
    """Saves the record "i" of each chunk it gets as a JSON line of "seen"."""

    def step(self, data_chunks):
        for chunk in data_chunks.values():
            self.save_json("seen", {"i": chunk.get("i")["value"]})


def prep_pids(prep_log) -> list[int]:
    """The pids a PrepCountingCamera wrote to `prep_log`, one per prep."""
    path = Path(prep_log)
    return [int(line) for line in path.read_text().split()] if path.exists() else []
