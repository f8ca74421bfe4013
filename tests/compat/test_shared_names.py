"""Two nodes of one name, as ChimeraPy 0.0.10 allowed when the mapping names nodes by id."""

from __future__ import annotations

import csv
import json
import time

import chimerapy as cp
import pytest
from chimerapy.api.rest import cluster_state
from legacy_nodes import DoubleNode, TagNode

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def manager(tmp_path):
    manager = cp.Manager(logdir=tmp_path / "runs", port=0)
    yield manager
    manager.shutdown()


@pytest.fixture
def make_worker(manager):
    workers = []

    def make(name):
        worker = cp.Worker(name=name, port=0)
        workers.append(worker)
        assert worker.connect(host=manager.host, port=manager.port)
        return worker

    yield make
    for worker in workers:
        worker.shutdown()


def wait_until(condition, timeout=30.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def twin_pipelines():
    """``src`` (tag 1) -> ``dbl`` and another ``src`` (tag 2) -> another ``dbl``."""
    src_a, src_b = TagNode(name="src", tag=1), TagNode(name="src", tag=2)
    dbl_a, dbl_b = DoubleNode(name="dbl"), DoubleNode(name="dbl")
    graph = cp.Graph()
    graph.add_nodes_from([src_a, src_b, dbl_a, dbl_b])
    graph.add_edges_from([[src_a, dbl_a], [src_b, dbl_b]])
    return graph, (src_a, src_b, dbl_a, dbl_b)


def run_and_check(manager, graph, mapping, nodes, folders):
    """Commit, run until each node stepped 3 times, stop; check outputs, files, counts and logs.

    ``folders``: unique name -> the Worker whose folder holds that node's files.
    """
    src_a, src_b, dbl_a, dbl_b = nodes
    assert manager.commit_graph(graph=graph, mapping=mapping) is True
    assert manager.start()
    unique = ["src", "src-2", "dbl", "dbl-2"]
    wait_until(lambda: all(manager.node_stats.get(name, {}).get("steps", 0) >= 3 for name in unique))
    assert manager.stop()

    latest = manager.gather()  # keyed by id: both nodes of each name, with their own outputs
    assert set(latest) == {node.id for node in nodes}
    assert {key: chunk.get("default")["value"] for key, chunk in latest.items()} == {
        src_a.id: 1, src_b.id: 2, dbl_a.id: 2, dbl_b.id: 4}
    assert latest[src_b].get("default")["value"] == 2 and latest["src-2"].get("default")["value"] == 2
    with pytest.raises(KeyError, match="2 nodes are named 'src'"):
        latest["src"]

    for name, tag in (("src", "1"), ("src-2", "2")):
        with open(manager.logdir / folders[name] / name / "tags.csv", newline="") as file:
            rows = list(csv.DictReader(file))
        steps = manager.final_stats[name]["steps"]
        assert steps >= 3 and len(rows) == steps, (name, steps, len(rows))
        assert {row["tag"] for row in rows} == {tag}
        assert [int(row["step"]) for row in rows] == list(range(1, steps + 1))
    assert manager.final_stats["dbl"]["steps"] >= 3 and manager.final_stats["dbl-2"]["steps"] >= 3

    assert set(manager.status()["nodes"]) == set(unique)
    meta = json.loads((manager.logdir / "meta.json").read_text())
    assert sorted(name for names in meta["mapping"].values() for name in names) == sorted(unique)
    assert [(n["name"], n["node_name"], n["id"]) for n in meta["graph"]["nodes"]] == [
        ("src", "src", src_a.id), ("src-2", "src", src_b.id), ("dbl", "dbl", dbl_a.id), ("dbl-2", "dbl", dbl_b.id)]
    # the pipeline recorded to run the session again names the nodes by unique name
    assert [node["name"] for node in meta["pipeline"]["nodes"]] == ["src", "src-2", "dbl", "dbl-2"]
    assert {(e["source"], e["target"]) for e in meta["pipeline"]["edges"]} == {("src", "dbl"), ("src-2", "dbl-2")}
    log = (manager.logdir / "chimerapy.log").read_text()
    assert f"[{folders['src']}/src] tag 1 ready" in log and f"[{folders['src-2']}/src-2] tag 2 ready" in log

    state = cluster_state(manager)  # what the REST API and the dashboard show
    assert {name: node["worker"] for name, node in state["nodes"].items() if name.startswith("src")} == {
        "src": folders["src"], "src-2": folders["src-2"]}
    assert state["nodes"]["src-2"]["stats"]["steps"] == manager.final_stats["src-2"]["steps"]
    assert {(e["source"], e["target"]) for e in state["graph"]["edges"]} == {("src", "dbl"), ("src-2", "dbl-2")}


def test_two_nodes_of_one_name_on_one_worker_mapped_by_id(manager, make_worker):
    worker = make_worker("local")
    graph, nodes = twin_pipelines()
    run_and_check(manager, graph, {worker.id: [node.id for node in nodes]}, nodes,
                  {"src": "local", "src-2": "local"})


def test_two_nodes_of_one_name_on_two_workers_mapped_by_id_and_object(manager, make_worker):
    one, two = make_worker("one"), make_worker("two")
    graph, (src_a, src_b, dbl_a, dbl_b) = twin_pipelines()
    # each pipeline crosses from one Worker to the other
    mapping = {one.id: [src_a.id, dbl_b.id], two.id: [src_b, dbl_a.id]}
    run_and_check(manager, graph, mapping, (src_a, src_b, dbl_a, dbl_b), {"src": "one", "src-2": "two"})


def test_a_node_with_two_inputs_of_one_name_is_refused_at_commit(manager, make_worker):
    worker = make_worker("local")
    src_a, src_b, dbl = TagNode(name="src", tag=1), TagNode(name="src", tag=2), DoubleNode(name="dbl")
    graph = cp.Graph()
    graph.add_edges_from([[src_a, dbl], [src_b, dbl]])
    with pytest.raises(cp.GraphError, match=rf"node 'dbl' has two inputs named 'src' \(ids '{src_a.id}' and "
                                            rf"'{src_b.id}'.*rename one"):
        manager.commit_graph(graph, {worker.id: [src_a.id, src_b.id, dbl.id]})
    assert manager.state == "idle"


def test_an_ambiguous_name_in_the_mapping_is_refused(manager, make_worker):
    worker = make_worker("local")
    graph, nodes = twin_pipelines()
    with pytest.raises(cp.MappingError, match=r"names node 'src', but 2 nodes are named 'src'.*id.*or rename"):
        manager.commit_graph(graph, {worker.id: ["src", "dbl"]})
    assert manager.state == "idle"
    by_name = {worker.id: ["src-2", "dbl-2", nodes[0].id, nodes[2].id]}  # unique names are unambiguous
    assert manager.commit_graph(graph, by_name) is True
