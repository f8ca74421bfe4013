"""Bad input and failing nodes get clear errors; nothing hangs; nothing is left behind."""

import socket
import time

import pytest

import chimerapy as cp
from support.nodes import Collector, CountingSource, IgnoresStop, RaisesIn, collected

pytestmark = pytest.mark.timeout(120)


def test_prep_failure_fails_the_commit_with_the_remote_traceback(cluster):
    manager, _ = cluster("w1")
    graph = cp.Graph()
    graph.add_edge(CountingSource("src"), RaisesIn("fragile", "prep"))
    with pytest.raises(cp.CommitError) as info:
        manager.commit_graph(graph, {"w1": ["src", "fragile"]}, strict=True)
    (error,) = info.value.errors
    assert (error.node, error.phase, error.worker) == ("fragile", "prep", "w1")
    assert "fragile fails in prep on purpose" in error.remote_traceback
    assert "def prep" in error.remote_traceback or "in prep" in error.remote_traceback
    assert "fragile" in str(info.value)
    assert manager.state == "idle"
    # the cluster is usable again: a good graph commits and runs
    good = cp.Graph()
    good.add_node(CountingSource("src", period=0.01))
    assert manager.commit_graph(good, {"w1": ["src"]})


def test_step_failure_is_reported_and_the_cluster_goes_on(cluster, tmp_path):
    manager, _ = cluster("w1")
    src, bad, sink = CountingSource("src", period=0.01), RaisesIn("bad", "step"), Collector("sink", tmp_path / "got")
    graph = cp.Graph()
    graph.add_edge(src, bad)
    graph.add_edge(src, sink)
    assert manager.commit_graph(graph, {"w1": ["src", "bad", "sink"]})
    manager.start()
    time.sleep(1.0)
    started = time.monotonic()
    assert manager.stop()
    assert time.monotonic() - started < 10
    step_errors = [e for e in manager.errors if e.phase == "step"]
    assert step_errors and step_errors[0].node == "bad"
    assert "bad fails in step on purpose" in step_errors[0].remote_traceback
    assert manager.final_stats["bad"]["step_errors"] > 10  # it kept being called
    assert len(collected(tmp_path / "got")) == manager.final_stats["src"]["outputs"]  # the rest kept running
    log = (manager.session.path / "chimerapy.log").read_text()
    assert "bad fails in step on purpose" in log


def test_teardown_failure_is_reported(cluster):
    manager, _ = cluster("w1")
    graph = cp.Graph()
    graph.add_node(RaisesIn("bad", "teardown"))
    assert manager.commit_graph(graph, {"w1": ["bad"]})
    manager.start()
    time.sleep(0.2)
    manager.stop()
    deadline = time.monotonic() + 5
    while not manager.errors and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [(e.node, e.phase) for e in manager.errors] == [("bad", "teardown")]
    assert "fails in teardown on purpose" in manager.errors[0].remote_traceback


def test_node_that_ignores_stop_is_ended_within_bounds(make_manager, make_worker):
    manager = make_manager(drain_timeout=1.0)
    make_worker("w1", manager)
    graph = cp.Graph()
    graph.add_node(IgnoresStop("stubborn"))
    assert manager.commit_graph(graph, {"w1": ["stubborn"]})
    manager.start()
    time.sleep(0.3)
    started = time.monotonic()
    manager.stop()
    manager.shutdown()
    assert time.monotonic() - started < 15
    # the leftover-process fixture checks that the stubborn process is gone


def test_cycle_is_refused_before_anything_starts(cluster):
    manager, _ = cluster("w1")
    a, b = CountingSource("a"), CountingSource("b")
    graph = cp.Graph()
    graph.add_edges([(a, b), (b, a)])
    with pytest.raises(cp.GraphError, match="cycle: (a -> b -> a|b -> a -> b)"):
        manager.commit_graph(graph, {"w1": ["a", "b"]})
    assert manager.state == "idle"


@pytest.mark.parametrize("mapping, error, match", [
    ({"ghost": ["src"]}, cp.MappingError, "unknown Worker 'ghost'"),
    ({"w1": ["src", "nobody"]}, cp.MappingError, "unknown node 'nobody'"),
    ({"w1": []}, cp.MappingError, r"\['src'\] are not mapped"),
])
def test_bad_mapping_is_refused(cluster, mapping, error, match):
    manager, _ = cluster("w1")
    graph = cp.Graph()
    graph.add_node(CountingSource("src"))
    with pytest.raises(error, match=match):
        manager.commit_graph(graph, mapping)


def test_calls_out_of_order_name_the_fix(cluster):
    manager, _ = cluster("w1")
    with pytest.raises(cp.StateError, match="commit_graph"):
        manager.start()
    with pytest.raises(cp.StateError, match="commit_graph"):
        manager.stop()
    manager.shutdown()
    with pytest.raises(cp.StateError, match="create a new Manager"):
        manager.commit_graph(cp.Graph(), {})


def test_worker_that_cannot_reach_the_manager(make_worker, caplog):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    worker = make_worker("lonely")
    started = time.monotonic()
    assert worker.connect("127.0.0.1", port, timeout=2) is False
    assert time.monotonic() - started < 10
    assert f"127.0.0.1:{port}" in caplog.text


def test_duplicate_worker_name_is_refused(cluster, make_worker, caplog):
    manager, _ = cluster("w1")
    twin = make_worker("w1")
    assert twin.connect(manager.host, manager.port, timeout=5) is False
    assert "already connected" in caplog.text


def test_max_num_of_workers(make_manager, make_worker, caplog):
    manager = make_manager(max_num_of_workers=1)
    make_worker("w1", manager)
    extra = make_worker("w2")
    assert extra.connect(manager.host, manager.port, timeout=5) is False
    assert "at most 1 Workers" in caplog.text


def test_ports_report_what_they_got(make_manager, make_worker):
    first = make_manager(port=0)
    assert first.port > 0
    second = make_manager(port=first.port)  # taken: falls back to a free port
    assert second.port not in (0, first.port)
    worker = make_worker("w", port=0)
    assert worker.port > 0
    other = make_worker("w2", port=worker.port)
    assert other.port not in (0, worker.port)
