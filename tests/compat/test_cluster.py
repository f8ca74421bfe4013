"""A cluster driven as ChimeraPy 0.0.10's docs, examples and public-API tests drive it."""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path

import av
import chimerapy as cp
import numpy as np
import pytest
from legacy_nodes import ConsumeNode, CounterNode, GenNode, PrepErrorNode, RecordNode, VideoNode

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def manager(tmp_path):
    manager = cp.Manager(logdir=tmp_path / "runs", port=0)
    yield manager
    manager.shutdown()


@pytest.fixture
def worker():
    worker = cp.Worker(name="local", port=0)
    yield worker
    worker.shutdown()


def wait_until(condition, timeout=20.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_logdir_is_the_session_folder_inside_the_folder_given(tmp_path):
    manager = cp.Manager(logdir=str(tmp_path / "runs"), port=0)
    try:
        assert manager.logdir.parent == (tmp_path / "runs").resolve() == manager.root_logdir
        assert manager.logdir.is_dir()
    finally:
        manager.shutdown()


def test_ids_mapping_step_gather_then_start_stop_collect(manager, worker):
    gen_node, con_node = GenNode(name="Gen1"), ConsumeNode(name="Con1")
    graph = cp.Graph()
    graph.add_nodes_from([gen_node, con_node])
    graph.add_edge(gen_node, con_node)
    assert worker.connect(host=manager.host, port=manager.port)
    first_logdir = manager.logdir
    assert manager.commit_graph(graph, {worker.id: [gen_node.id, con_node.id]}) is True
    assert manager.logdir == first_logdir and (manager.logdir / "meta.json").exists()

    assert manager.step()
    expected = {manager.graph.get_id_by_name("Gen1"): 2, manager.graph.get_id_by_name("Con1"): 6}

    def gathered():
        latest = manager.gather()
        return {k: v.get("default")["value"] for k, v in latest.items() if isinstance(v, cp.DataChunk)}

    wait_until(lambda: gathered() == expected)
    assert manager.start()  # stepping may be followed by start()
    wait_until(lambda: manager.node_stats.get("Con1", {}).get("steps", 0) >= 3)
    manager.stop()
    latest = manager.gather()
    assert set(latest) == {gen_node.id, con_node.id}
    assert latest[gen_node.id].get("default")["value"] == 2 and latest["Con1"].get("default")["value"] == 6
    report = manager.collect()  # harmless after stop(), which collected already
    assert report and report["local"]["complete"]
    assert json.loads((manager.logdir / "meta.json").read_text())["collected"]["local"]["complete"]

    # a later session of the same Manager moves logdir on
    assert manager.commit_graph(graph=graph, mapping={"local": ["Gen1", "Con1"]})
    assert manager.logdir != first_logdir and manager.logdir.parent == manager.root_logdir


class SlowCounterNode(CounterNode):
    """Counts once at once, then every 1.5 s (0.0.10's low-frequency test node, shorter)."""

    def step(self):
        time.sleep(0.3 if self.i == 0 else 1.5)
        self.i += 1
        chunk = cp.DataChunk()
        chunk.add("i", self.i)
        return chunk


@pytest.mark.parametrize("follow", ["fast", "slow"])
def test_follow_and_gathered_chunks_compare_equal(manager, worker, follow):
    hf, lf, sn = CounterNode(name="hf"), SlowCounterNode(name="lf"), RecordNode(name="sn")
    graph = cp.Graph()
    graph.add_nodes_from([hf, lf, sn])
    graph.add_edge(src=hf, dst=sn, follow=follow == "fast")
    graph.add_edge(src=lf, dst=sn, follow=follow == "slow")
    worker.connect(host=manager.host, port=manager.port)
    assert manager.commit_graph(graph, {worker.id: [hf.id, lf.id, sn.id]})
    manager.start()
    wait_until(lambda: manager.node_stats.get("lf", {}).get("steps", 0) >= 2)
    manager.stop()
    name_to_id = {data["object"].name: n for n, data in manager.graph.G.nodes(data=True)}
    latest = manager.gather()
    record = latest[name_to_id["sn"]].get("record")["value"]
    assert record["lf"] == latest[name_to_id["lf"]]  # the slow input as sn last saw it
    if follow == "fast":
        assert abs(record["hf"].get("i")["value"] - latest[name_to_id["hf"]].get("i")["value"]) < 5
    else:  # sn stepped only with lf, long after hf moved on
        assert record["hf"] != latest[name_to_id["hf"]]


def test_a_failing_prep_returns_false_quickly_and_keeps_the_error(manager, worker):
    worker.connect(host=manager.host, port=manager.port)
    bad = PrepErrorNode(name="bad")
    graph = cp.Graph()
    graph.add_nodes_from([bad])
    started = time.monotonic()
    assert manager.commit_graph(graph=graph, mapping={worker.name: [bad.name]}) is False
    assert time.monotonic() - started < 30
    assert manager.errors and manager.errors[0].node == "bad" and manager.errors[0].phase == "prep"
    assert "HA! GOTCHA!" in manager.errors[0].remote_traceback
    # nothing hangs: the cluster takes a good graph next
    good = cp.Graph()
    good.add_nodes_from([GenNode(name="Gen1")])
    assert manager.commit_graph(good, {worker.name: ["Gen1"]})


def test_recorded_video_is_collected_with_its_timing(manager, worker):
    node = VideoNode(name="cam", fps=30, period=1 / 12)
    graph = cp.Graph()
    graph.add_nodes_from([node])
    worker.connect(host=manager.host, port=manager.port)
    assert manager.commit_graph(graph, {worker.name: [node.name]})
    manager.start()
    wait_until(lambda: manager.node_stats.get("cam", {}).get("steps", 0) >= 20)
    assert manager.stop()  # stop collects
    assert manager.collect()
    folder = Path(manager.logdir) / worker.name / node.name
    with open(folder / "test.timestamps.csv", newline="") as file:
        times = [float(row["timestamp"]) for row in csv.DictReader(file)]
    with av.open(str(folder / "test.mp4")) as container:
        stream = container.streams.video[0]
        frames, duration = stream.frames, float(stream.duration * stream.time_base)
    span = times[-1] - times[0]
    assert 0 < duration - span <= 1.001 / 30 and frames == round(duration * 30)


class SyntheticCamera(cp.Node):
    """The tutorial's webcam node with the camera replaced by synthetic frames."""

    def prep(self):
        self.index = 0

    def step(self) -> cp.DataChunk:
        time.sleep(1 / 30)
        self.index += 1
        frame = np.full((48, 64, 3), self.index % 256, np.uint8)
        self.save_video(name="test", data=frame, fps=15)
        data_chunk = cp.DataChunk()
        data_chunk.add("frame", frame, "image")
        return data_chunk


class ShowWindow(cp.Node):
    def prep(self):
        self.shown = 0

    def step(self, data_chunks):
        for name, data_chunk in data_chunks.items():
            frame = data_chunk.get("frame")["value"]
            self.shown += 1
            return {"from": name, "shape": list(frame.shape), "shown": self.shown}


class RemoteCameraGraph(cp.Graph):
    def __init__(self):
        super().__init__()
        self.web = SyntheticCamera(name="web")
        self.show = ShowWindow(name="show")
        self.add_nodes_from([self.web, self.show])
        self.add_edge(src=self.web, dst=self.show)
        self.node_ids = [self.web.id, self.show.id]


def test_tutorial_program_with_default_ports(tmp_path):
    manager = cp.Manager(logdir=tmp_path / "runs")  # default port (a free one if 9000 is taken)
    worker = cp.Worker(name="local", id="local")  # default port likewise
    try:
        graph = RemoteCameraGraph()
        worker.connect(host=manager.host, port=manager.port)
        assert manager.commit_graph(graph=graph, mapping={worker.id: graph.node_ids})
        manager.start()
        wait_until(lambda: manager.node_stats.get("show", {}).get("steps", 0) >= 10)
        manager.stop()
        shown = manager.gather()[graph.show.id].get("default")["value"]
        assert shown["from"] == "web" and shown["shape"] == [48, 64, 3] and shown["shown"] >= 10
        assert (manager.logdir / "local" / "web" / "test.mp4").exists()
    finally:
        manager.shutdown()
        worker.shutdown()
