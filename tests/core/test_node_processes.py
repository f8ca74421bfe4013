"""Node processes come from the Worker's launcher (a fork server): each is its own process with
its own random numbers, a dead launcher is replaced, and a graph committed but never started
ends in order."""

import json
import os
import signal
import time

import numpy as np
import psutil
import pytest

import chimerapy as cp
from support.nodes import CountingSource, Summer

pytestmark = pytest.mark.timeout(120)


class Dice(cp.Node):
    """Draws from numpy's global generator in prep and keeps the draw."""

    def prep(self):
        self.save_json("draw", {"pid": os.getpid(), "draw": np.random.randint(0, 2**31, 4).tolist()})

    def step(self):
        time.sleep(0.05)


def draws(manager, worker, names):
    return [json.loads((manager.session.path / worker / name / "draw.jsonl").read_text())["data"] for name in names]


def test_forked_nodes_are_separate_processes_with_their_own_random_numbers(cluster):
    manager, (worker,) = cluster("w1")
    graph = cp.Graph()
    graph.add_nodes([Dice("d1"), Dice("d2"), Dice("d3")])
    assert manager.commit_graph(graph, {"w1": ["d1", "d2", "d3"]})
    names = {psutil.Process(p.pid).name() for p in worker.supervisor.nodes.values()}
    assert names == {"cp-d1", "cp-d2", "cp-d3"}  # what top and htop show
    manager.start()
    assert manager.stop()
    found = draws(manager, "w1", ["d1", "d2", "d3"])
    assert len({item["pid"] for item in found}) == 3
    assert len({tuple(item["draw"]) for item in found}) == 3, found


def test_a_dead_launcher_is_replaced_and_leaves_no_process_behind(cluster):
    manager, (worker,) = cluster("w1")
    launcher = psutil.Process(worker.supervisor._launcher.pid)
    graph = cp.Graph()
    graph.add_node(Dice("d1"))
    assert manager.commit_graph(graph, {"w1": ["d1"]})
    orphan = psutil.Process(next(iter(worker.supervisor.nodes.values())).pid)
    launcher.send_signal(signal.SIGKILL)
    orphan.wait(15)  # its node process follows it (parent-death signal)
    graph = cp.Graph()
    graph.add_edge(CountingSource("numbers", count=5), Summer("sum"))
    assert manager.commit_graph(graph, {"w1": ["numbers", "sum"]})  # with a new launcher
    manager.start()
    deadline = time.monotonic() + 30
    while manager.node_stats.get("sum", {}).get("steps", 0) < 5:
        assert time.monotonic() < deadline, "the new graph never streamed"
        time.sleep(0.05)
    assert manager.stop()
    assert manager.final_stats["sum"]["inputs"]["numbers"]["received"] == 5


def test_a_graph_committed_but_never_started_ends_without_errors(cluster):
    manager, _ = cluster("w1")
    graph = cp.Graph()
    graph.add_edge(CountingSource("numbers", count=5), Summer("sum"))
    assert manager.commit_graph(graph, {"w1": ["numbers", "sum"]})
    manager.shutdown()
    assert manager.errors == []
