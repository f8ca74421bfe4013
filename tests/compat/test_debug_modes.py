"""``debug="step"`` and ``debug="stream"`` as ChimeraPy 0.0.10's "Debugging Nodes" page uses them."""

from __future__ import annotations

import csv
import os
import socket
import time

import chimerapy as cp
import pytest
import zmq
from chimerapy.net.transport import Subscriber
from legacy_nodes import CounterNode, PidNode, TabularNode, VideoNode

pytestmark = pytest.mark.timeout(60)


class Camera(cp.Node):
    """Sets attributes in its own __init__ after the parent's, as the docs' TestingVideoNode does."""

    def __init__(self, name: str, id: int = 0, debug=None):
        super().__init__(name, debug)
        self.device = id
        self.opened_with = None

    def prep(self):
        self.opened_with = self.device  # prep sees what the subclass set

    def step(self):
        chunk = cp.DataChunk()
        chunk.add("device", self.opened_with)
        return chunk


def test_step_mode_runs_prep_in_the_constructor_and_step_by_hand():
    node = Camera("test", 3, "step")
    assert node.opened_with == 3  # prep ran when the node was made, after the subclass's __init__
    outputs = [node.step() for _ in range(3)]
    assert [o.get("device")["value"] for o in outputs] == [3, 3, 3]
    node.shutdown()


def test_step_mode_debug_true_of_the_older_page():
    node = Camera("test", 5, True)
    assert node.debug == "step" and node.opened_with == 5
    node.shutdown()


def test_step_with_data_chunks_and_files_in_logdir():
    source = CounterNode(name="count", debug="step")
    chunks = [source.step() for _ in range(4)]
    assert [c.get("i")["value"] for c in chunks] == [1, 2, 3, 4]
    table = TabularNode(name="tn", debug="step")
    for _ in range(2):
        table.step()
    table.shutdown()  # closes the files: every row is there
    with open(table.logdir / "test.csv", newline="") as file:
        assert len(list(csv.DictReader(file))) == 6
    source.shutdown()


def test_a_failing_prep_in_step_mode_raises_at_construction():
    class Broken(cp.Node):
        def prep(self):
            raise RuntimeError("no camera")

    with pytest.raises(cp.NodeError, match="'broken' raised in prep"):
        Broken(name="broken", debug="step")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_stream_mode_runs_in_its_own_process_and_publishes_on_debug_port():
    port = free_port()
    node = PidNode(name="pid", debug="stream", debug_port=port)
    node.start()
    subscriber = Subscriber(zmq.Context.instance(), "listener")
    try:
        subscriber.connect("pid", f"tcp://127.0.0.1:{port}")
        received = []
        deadline = time.monotonic() + 20
        while len(received) < 3 and time.monotonic() < deadline:
            received += subscriber.receive(0.2)
        assert len(received) >= 3 and node.is_alive()
        values = [c.get("default")["value"] for c in received]
        assert values == sorted(values) and values[-1] >= 3
    finally:
        subscriber.close()
        node.shutdown()
        node.join()
    assert node.exitcode == 0 and not node.is_alive()
    with open(node.logdir / "pid.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    assert rows and {int(r["pid"]) for r in rows} != {os.getpid()}  # not this process
    assert len({int(r["pid"]) for r in rows}) == 1


def test_stream_mode_video_file_lasts_as_long_as_the_node_ran():
    node = VideoNode(name="vn", fps=30, period=1 / 10, debug="stream")
    expected = node.logdir / "test.mp4"
    node.start()
    time.sleep(2.0)  # the recording length is the point of this test
    node.shutdown()
    node.join(30)
    assert node.exitcode == 0 and expected.exists()
    import av

    with av.open(str(expected)) as container:
        stream = container.streams.video[0]
        frames, duration = stream.frames, float(stream.duration * stream.time_base)
    assert 1.2 <= duration <= 2.2 and abs(frames - duration * 30) < 1
