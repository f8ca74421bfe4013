"""meta.json holds the whole pipeline (nodes with class, registry name and parameters, edges,
mapping, Workers), the per-edge delivery counters and the collection; and it runs again."""

from __future__ import annotations

import json
import pathlib
import time

import chimerapy as cp
import numpy as np
import pytest
from chimerapy.node.params import init_params
from chimerapy.nodes.recorder import StreamRecorder
from chimerapy.pipeline_checks import check_pipeline
from chimerapy.pipeline import PipelineError, load

pytestmark = pytest.mark.timeout(120)

SMALL, LARGE = np.zeros(3), np.zeros(20_000)  # arrays kept in meta.json, and one too large to keep


class Ticker(cp.Node):
    """Sends ``count`` ``limit`` times, ``period`` seconds apart."""

    def __init__(self, name: str, limit: int = 10, *, period: float = 0.01, label: str = "tick"):
        super().__init__(name)
        self.limit, self.period, self.label = limit, period, label

    def prep(self):
        self.i = 0

    def step(self):
        time.sleep(self.period)
        if self.i >= self.limit:
            return None
        self.i += 1
        return {"count": self.i}


class Doubler(Ticker):
    """A subclass that fixes some of its parent's arguments."""

    def __init__(self, name: str = "doubler", factor: int = 2, **options):
        super().__init__(name, limit=5 * factor, **options)


def test_constructor_arguments_are_kept_as_json_with_defaults_and_unrecorded_ones_named():
    assert init_params(Ticker("t", 3)) == ({"limit": 3, "period": 0.01, "label": "tick"}, [])
    # the class the user instantiated is the one whose arguments count, **options included
    assert init_params(Doubler(factor=np.int64(3), period=0.5)) == ({"factor": 3, "period": 0.5}, [])
    params, unrecorded = init_params(Ticker("t", label=pathlib.Path("/data/x")))
    assert params["label"] == "/data/x" and unrecorded == []

    class Holder(cp.Node):
        def __init__(self, name, model=None, weights=SMALL, big=LARGE):
            super().__init__(name)

    params, unrecorded = init_params(Holder("h", model=object()))
    assert params == {"weights": [0.0, 0.0, 0.0]} and unrecorded == ["model", "big"]
    assert init_params(cp.Node("plain")) == ({}, [])


def wait_for(condition, timeout=60.0):
    """Poll ``condition`` (the Manager's stats arrive as events) until it holds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def run_once(manager, graph, mapping, *, count):
    manager.commit_graph(graph, mapping)
    manager.start()
    wait_for(lambda: manager.node_stats.get("ticker", {}).get("outputs", 0) >= count)
    assert manager.stop()
    return json.loads((manager.session.path / "meta.json").read_text())


def test_meta_holds_the_pipeline_edge_counters_and_collection_and_the_session_runs_again(cluster):
    manager, _ = cluster("meta-w1", "meta-w2")
    graph = cp.Graph()
    ticker, recorder = Ticker("ticker", 12, label="a"), StreamRecorder("rec", fps=15)
    graph.add_edge(ticker, recorder, latest_only=False)
    meta = run_once(manager, graph, {"meta-w1": ["ticker"], "meta-w2": ["rec"]}, count=12)

    pipeline = meta["pipeline"]
    nodes = {node["name"]: node for node in pipeline["nodes"]}
    assert nodes["ticker"]["class"] == "test_meta_pipeline:Ticker" and "registry" not in nodes["ticker"]
    assert nodes["ticker"]["file"] == __file__ and nodes["ticker"]["params"] == {
        "limit": 12, "period": 0.01, "label": "a"
    }
    assert nodes["rec"]["registry"] == "core.recorder"
    assert nodes["rec"]["class"] == "chimerapy.nodes.recorder:StreamRecorder" and "file" not in nodes["rec"]
    assert nodes["rec"]["params"] == {"fps": 15, "image_format": "video"}
    assert pipeline["edges"] == [{"source": "ticker", "target": "rec", "follow": True, "latest_only": False}]
    assert pipeline["mapping"] == {"meta-w1": ["ticker"], "meta-w2": ["rec"]}
    assert pipeline["workers"] == [{"name": "meta-w1", "remote": False}, {"name": "meta-w2", "remote": False}]
    assert pipeline["name"] and pipeline["manager"] == {"host": manager.host, "port": manager.port}
    # Workers with their hosts and versions, each edge's delivery, the collection
    assert {"host", "hostname", "versions"} <= set(meta["workers"]["meta-w2"])
    (edge,) = meta["edge_stats"]
    assert (edge["source"], edge["target"], edge["received"]) == ("ticker", "rec", 12)
    assert all(item["complete"] for item in meta["collected"].values())

    # the same pipeline, from meta.json alone
    again = load(manager.session.path / "meta.json")
    assert again.logdir == str(manager.session.path.parent) and again.runtime > 0
    manager.commit_pipeline(again)
    assert manager.session.path != pathlib.Path(meta["session"])
    manager.start()
    wait_for(lambda: manager.node_stats.get("ticker", {}).get("outputs", 0) >= 12)
    assert manager.stop()
    second = json.loads((manager.session.path / "meta.json").read_text())
    assert second["pipeline"]["nodes"] == pipeline["nodes"] and second["pipeline"]["edges"] == pipeline["edges"]
    assert second["pipeline"]["mapping"] == pipeline["mapping"]
    lines = (manager.session.path / "meta-w2" / "rec" / "ticker.default.jsonl").read_text().splitlines()
    assert [json.loads(line)["data"] for line in lines] == [{"count": i} for i in range(1, 13)]  # again


def write_meta(tmp_path, nodes, **extra):
    session = tmp_path / "runs" / "20260101-000000-abcdef"
    session.mkdir(parents=True)
    pipeline = {"name": "p", "workers": [{"name": "w"}], "nodes": nodes, "edges": [],
                "mapping": {"w": [n["name"] for n in nodes]}, **extra}
    (session / "meta.json").write_text(json.dumps({"session": session.name, "pipeline": pipeline,
                                                   "start_time": 100.0, "stop_time": 102.5}))
    return session


def test_a_node_class_that_cannot_be_imported_is_named_with_the_reason(tmp_path):
    session = write_meta(tmp_path, [
        {"name": "ghost", "class": "no_such_module_anywhere:Ghost", "params": {}},
        {"name": "gone", "class": "vanished:Node", "file": str(tmp_path / "vanished.py")},
        {"name": "local", "class": "test_meta_pipeline:Ticker.<locals>.Inner"},
        {"name": "renamed", "class": "test_meta_pipeline:NoLongerHere"},
        {"name": "heavy", "class": "test_meta_pipeline:Ticker", "unrecorded": ["model"]},
        {"name": "wrong", "class": "test_meta_pipeline:Ticker", "params": {"speed": 2}},
    ])
    with pytest.raises(PipelineError) as error:
        load(session)  # the session folder is enough
    problems = dict(error.value.problems)
    assert "no module named 'no_such_module_anywhere'" in problems["nodes[0].class"]
    assert "vanished.py, does not exist any more" in problems["nodes[1].class"]
    assert "inside a function" in problems["nodes[2].class"]
    assert "defines no 'NoLongerHere'" in problems["nodes[3].class"]
    assert "model could not be recorded" in problems["nodes[4].params"]
    assert "speed" in problems["nodes[5].params"]


def test_a_script_class_is_imported_from_its_file_and_the_run_lasts_as_long_as_the_session(tmp_path):
    script = tmp_path / "my_experiment_nodes.py"
    script.write_text("import chimerapy as cp\n\nclass Blink(cp.Node):\n"
                      "    def __init__(self, name, rate=1.0):\n        super().__init__(name)\n"
                      "        self.rate = rate\n")
    session = write_meta(tmp_path, [
        {"name": "blink", "class": "my_experiment_nodes:Blink", "file": str(script), "params": {"rate": 4.0}},
    ])
    pipeline = load(session / "meta.json")
    assert pipeline.runtime == 2.5 and pipeline.logdir == str(session.parent)
    checked = check_pipeline(pipeline)
    graph, mapping = checked.graph, checked.mapping
    (node,) = graph.nodes
    assert type(node).__name__ == "Blink" and node.name == "blink" and node.rate == 4.0
    assert mapping == {"w": ["blink"]}


def test_a_meta_json_of_an_older_version_says_it_holds_no_pipeline(tmp_path):
    session = tmp_path / "old"
    session.mkdir()
    (session / "meta.json").write_text(json.dumps({"session": "old", "graph": {"nodes": []}}))
    with pytest.raises(PipelineError, match="holds no pipeline description"):
        load(session / "meta.json")
