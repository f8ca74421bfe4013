"""Real sessions for the archive tests: nodes that record every kind of stream and remember what
they saw, and session-scoped fixtures that record one clean and one faulty session.

Written against the public API (`cp.Manager`, `cp.Worker`, `cp.Graph`, `cp.Node`) only.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import chimerapy as cp
import numpy as np
import pytest

from support.processes import new_marker, wait_until_gone
from support.requirements import missing

BITS = 12
SIZE = (240, 320)
FPS = 30
RATE, BLOCK = 16000, 800


def stamp_index(frame: np.ndarray, index: int) -> None:
    """Write ``index`` into the top row of ``frame`` as 16x16 black or white blocks (bit k at x=16k)."""
    for bit in range(BITS):
        frame[0:16, 16 * bit : 16 * bit + 16] = 255 if (index >> bit) & 1 else 0


def read_index(frame: np.ndarray) -> int:
    """The index :func:`stamp_index` wrote (robust to H.264 and JPEG)."""
    return sum(1 << bit for bit in range(BITS) if frame[0:16, 16 * bit : 16 * bit + 16].mean() > 127)


class ArchiveCamera(cp.Node):
    """30 fps video with its index in the pixels; a table of the times it saw; JSON, text, images
    (JSON and text hold the time seen just before their own save).

    With ``pause_at``, sleeps 1 s once before that frame (a gap), noting when in table "pause".
    """

    def __init__(self, name, pause_at=None):
        super().__init__(name)
        self.pause_at = pause_at

    def prep(self):
        self.i = 0
        self.due = time.monotonic()

    def step(self):
        self.due += 1 / FPS
        time.sleep(max(0.0, self.due - time.monotonic()))
        if self.i == self.pause_at:
            self.save_tabular("pause", {"frame": self.i, "seen": self.now()})
            time.sleep(1.0)
            self.due = time.monotonic()
        frame = np.full((*SIZE, 3), 60, np.uint8)
        stamp_index(frame, self.i)
        seen = self.now()
        self.save_video("frames", frame, FPS, timing="vfr")
        self.save_tabular("truth", {"frame": self.i, "seen": seen})
        if self.i % 10 == 0:
            self.save_json("events", {"frame": self.i, "seen": self.now()})
        if self.i % 15 == 0:
            self.save_text("notes", f"frame {self.i} at {self.now()!r}\n")
        if self.i % 30 == 0:
            self.save_image("snap", frame)
        chunk = cp.DataChunk()
        chunk.add("i", self.i)
        self.i += 1
        return chunk


class ArchiveMic(cp.Node):
    """16 kHz int16 audio in 800-sample blocks (block k holds the value k); a table of the times it saw."""

    def prep(self):
        self.k = 0
        self.due = time.monotonic()

    def step(self):
        self.due += BLOCK / RATE
        time.sleep(max(0.0, self.due - time.monotonic()))
        seen = self.now()
        self.save_audio("mic", np.full(BLOCK, self.k, np.int16), RATE, 1)
        self.save_tabular("truth", {"block": self.k, "seen": seen})
        self.k += 1


class ClockBeacon(cp.Node):
    """For each chunk from the camera: its index, this process's raw wall clock and its aligned time."""

    def step(self, data_chunks):
        chunk = data_chunks["camera"]
        self.save_tabular("clock", {"i": chunk.get("i")["value"], "raw": time.time(), "seen": self.now()})


class SlowConsumer(cp.Node):
    """Takes 0.2 s per chunk: on a latest-only edge from a 30 fps source, most chunks are skipped."""

    def step(self, data_chunks):
        time.sleep(0.2)
        self.save_tabular("got", {"i": data_chunks["camera"].get("i")["value"]})


@dataclass
class Recorded:
    """A recorded session and what the test did to it (Manager times)."""

    path: Path
    skewed: bool
    events: dict[str, float] = field(default_factory=dict)


def libfaketime() -> str | None:
    for candidate in ("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
                      "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1"):
        if os.path.exists(candidate):
            return candidate
    return None


def start_cp_worker(manager, name, env):
    """`cp-worker` NAME joining ``manager`` in its own process: the Manager's certificate pinned by
    its fingerprint, the token through the environment (never on the command line)."""
    return subprocess.Popen([sys.executable, "-m", "chimerapy.cli.worker", "--ip", manager.host, "--port",
                             str(manager.port), "--name", name, "--fingerprint", manager.fingerprint],
                            env={**env, "CHIMERAPY_TOKEN": manager.token}, stdin=subprocess.DEVNULL)


def wait_for(predicate, timeout, message):
    """Poll ``predicate`` until it holds; fail with ``message`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, message
        time.sleep(0.05)


def steps_of(manager, node):
    """How many steps ``node`` has made, as the Manager last heard."""
    return manager.node_stats.get(node, {}).get("steps", 0)


def record_with_skewed_worker(logdir: Path, graph: cp.Graph, mapping: dict[str, list[str]], *,
                              until: Callable[[cp.Manager], bool], timeout: float = 60.0) -> Path:
    """Record ``graph`` on three Workers, in-process "w1" and "w2" and a `cp-worker` "skewed" under
    faketime with its clock 30 s behind, until ``until(manager)`` holds; returns the session folder."""
    if not shutil.which("faketime") or libfaketime() is None:
        missing("Debian's faketime (apt-get install faketime)")
    marker, env = new_marker()
    manager = cp.Manager(logdir=logdir, port=0)
    workers = [cp.Worker(name, port=0) for name in ("w1", "w2")]
    skewed = None
    try:
        for worker in workers:
            assert worker.connect(manager.host, manager.port, timeout=10)
        skewed = start_cp_worker(manager, "skewed", {**env, "FAKETIME": "-30s", "LD_PRELOAD": libfaketime()})
        assert manager.wait_for_workers(["w1", "w2", "skewed"], timeout=60), "Workers did not join"
        time.sleep(2.0)  # the skewed Worker's clock probes settle (it probes in a burst, then steadily)
        assert manager.commit_graph(graph, mapping)
        manager.start()
        wait_for(lambda: until(manager), timeout, "the nodes are too slow")
        assert manager.stop()
        path = manager.session.path
    finally:
        manager.shutdown()
        for worker in workers:
            worker.shutdown()
        if skewed is not None:
            try:
                skewed.wait(30)
            except subprocess.TimeoutExpired:
                skewed.kill()
    assert wait_until_gone(marker) == []
    return path


def record_clean(logdir: Path) -> Recorded:
    """Three Workers, one of them (a `cp-worker` under faketime) with its clock 30 s behind."""
    graph = cp.Graph()
    camera, mic, beacon = ArchiveCamera("camera"), ArchiveMic("mic"), ClockBeacon("beacon")
    graph.add_nodes([camera, mic, beacon])
    graph.add_edge(camera, beacon)
    path = record_with_skewed_worker(
        logdir, graph, {"w1": ["camera"], "w2": ["mic"], "skewed": ["beacon"]},
        until=lambda manager: steps_of(manager, "camera") >= 90 and steps_of(manager, "mic") >= 60)
    return Recorded(path, skewed=True)


def record_faulty(logdir: Path) -> Recorded:
    """A 1 s pause in the camera, a slow consumer on a latest-only edge, a Worker killed mid-run;
    a clock jump is then written into meta.json's offset series."""
    marker, env = new_marker()
    manager = cp.Manager(logdir=logdir, port=0)
    worker = cp.Worker("w1", port=0)
    doomed = None
    events: dict[str, float] = {}
    try:
        assert worker.connect(manager.host, manager.port, timeout=10)
        doomed = start_cp_worker(manager, "doomed", env)
        assert manager.wait_for_workers(["doomed"], timeout=60)
        graph = cp.Graph()
        camera, slow, mic = ArchiveCamera("camera", pause_at=45), SlowConsumer("slow"), ArchiveMic("mic")
        graph.add_nodes([camera, slow, mic])
        graph.add_edge(camera, slow, latest_only=True)
        assert manager.commit_graph(graph, {"w1": ["camera", "slow"], "doomed": ["mic"]})
        manager.start()
        wait_for(lambda: steps_of(manager, "mic") >= 30, 60, "the doomed Worker never recorded")
        events["killed"] = time.time()
        doomed.send_signal(signal.SIGKILL)
        wait_for(lambda: "doomed" in manager.status()["lost_workers"], 20, "the lost Worker was not noticed")
        wait_for(lambda: steps_of(manager, "camera") >= 120, 60, "the camera is too slow")
        manager.stop()
        path = manager.session.path
    finally:
        manager.shutdown()
        worker.shutdown()
        if doomed is not None:
            doomed.wait(30)
    assert wait_until_gone(marker) == []
    meta = json.loads((path / "meta.json").read_text())
    history = meta["clock_offsets"]["w1"]["history"]
    jump_at = meta["start_time"] + 1.5  # from then on, the Worker's clock reads 250 ms early
    history.append([jump_at, history[-1][1] + 0.25, 0.0002])
    meta["clock_offsets"]["w1"]["history"] = sorted(
        [when, offset + (0.25 if when > jump_at else 0.0), spread] for when, offset, spread in history)
    (path / "meta.json").write_text(json.dumps(meta))
    events["clock_jump"] = jump_at
    return Recorded(path, skewed=False, events=events)


@pytest.fixture(scope="session")
def clean_session(tmp_path_factory) -> Recorded:
    """One clean session for the whole test run (recorded once, about 15 s)."""
    return record_clean(tmp_path_factory.mktemp("clean"))


@pytest.fixture(scope="session")
def faulty_session(tmp_path_factory) -> Recorded:
    """One session with planted problems for the whole test run."""
    return record_faulty(tmp_path_factory.mktemp("faulty"))
