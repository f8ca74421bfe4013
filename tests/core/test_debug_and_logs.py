"""Node debug modes, and logs that reach the Manager, the session folder and a ZeroMQ socket."""

import json
import subprocess
import sys
import time

import numpy as np
import pytest
import zmq

import chimerapy as cp
from chimerapy.net.transport import Subscriber
from support.nodes import CountingSource, Doubler, Talker

pytestmark = pytest.mark.timeout(60)


def test_debug_step_runs_prep_then_steps_by_hand():
    source = CountingSource("src")
    source.debug = "step"
    first = source.debug_step()
    second = source.debug_step()
    assert (first.get("i")["value"], second.get("i")["value"]) == (0, 1)
    assert (first.seq, second.seq, first.producer) == (0, 1, "src")
    double = Doubler("double")
    double.debug = "step"
    out = double.debug_step({"src": second})
    assert out.get("i")["value"] == 2
    source.shutdown()
    double.shutdown()


def test_debug_stream_publishes_on_the_debug_port():
    source = CountingSource("src", period=0.01, image=True)
    source.debug, source.debug_port = "stream", 0
    source.run(blocking=False)
    try:
        subscriber = Subscriber(zmq.Context.instance(), "listener")
        subscriber.connect("src", source.debug_address)
        received = []
        deadline = time.monotonic() + 10
        while len(received) < 5 and time.monotonic() < deadline:
            received += subscriber.receive(0.2)
        assert len(received) >= 5
        frame = received[-1].get("frame")["value"]
        assert frame.shape == (48, 64, 3) and received[-1].get("frame")["content-type"] == "image"
        assert np.all(frame == received[-1].get("i")["value"] % 256)
        subscriber.close()
    finally:
        source.shutdown()


def test_debug_methods_need_the_mode():
    node = cp.Node("plain")
    with pytest.raises(cp.StateError, match="debug='step'"):
        node.debug_step()
    with pytest.raises(cp.StateError, match="debug='stream'"):
        node.run()
    with pytest.raises(cp.StateError, match="only available while the node runs"):
        node.save_text("notes", "hi")
    with pytest.raises(ValueError, match="debug must be"):
        cp.Node("x", debug="verbose")


def test_node_logs_reach_the_session_log_and_the_zmq_socket(make_manager, make_worker):
    manager = make_manager(publish_logs_via_zmq=True)
    subscriber = zmq.Context.instance().socket(zmq.SUB)
    subscriber.setsockopt(zmq.LINGER, 0)
    subscriber.setsockopt(zmq.SUBSCRIBE, b"")
    subscriber.connect(manager.logs_address)
    make_worker("w1", manager)
    graph = cp.Graph()
    graph.add_node(Talker("talker"))
    assert manager.commit_graph(graph, {"w1": ["talker"]})
    manager.start()
    records = []
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not any("hello 42" in r["message"] for r in records):
        if subscriber.poll(200):
            topic, body = subscriber.recv_multipart()
            records.append(json.loads(body))
    manager.stop()
    subscriber.close()
    talk = [r for r in records if "hello 42" in r["message"]]
    assert talk and talk[0]["node"] == "talker" and talk[0]["worker"] == "w1"
    assert "[w1/talker] talker says hello 42" in (manager.session.path / "chimerapy.log").read_text()


def test_cp_worker_joins_and_reports_failure(make_manager, spawn_cp_worker):
    manager = make_manager()
    worker = spawn_cp_worker(manager, "remote")
    assert manager.wait_for_workers(["remote"], timeout=30)
    assert manager.workers["remote"]["pid"] == worker.pid
    graph = cp.Graph()
    graph.add_edge(CountingSource("src", period=0.01), Doubler("double"))
    assert manager.commit_graph(graph, {"remote": ["src", "double"]})
    manager.start()
    time.sleep(0.5)
    manager.stop()
    assert manager.final_stats["double"]["inputs"]["src"]["received"] == manager.final_stats["src"]["outputs"]
    manager.shutdown()
    assert worker.wait(20) == 0
    failed = subprocess.run(
        [sys.executable, "-m", "chimerapy.cli.worker", "--ip", "127.0.0.1", "--port", "1", "--name", "x",
         "--timeout", "2"], capture_output=True, text=True, timeout=30)
    assert failed.returncode == 1 and "127.0.0.1:1" in failed.stderr
