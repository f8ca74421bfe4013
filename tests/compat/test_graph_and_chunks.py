"""Graph building and DataChunk use as ChimeraPy 0.0.10's docs and tests write them."""

from __future__ import annotations

import json
import logging
import time

import chimerapy as cp
import networkx as nx
import numpy as np
import pytest


def test_add_nodes_from_and_add_edges_from_with_lists():
    a, b, c, d, e, f = (cp.Node(name=n) for n in "abcdef")
    graph = cp.Graph()
    graph.add_nodes_from([a, b, c, d, e, f])
    graph.add_edges_from([[a, b], [c, d], [c, e], [b, e], [d, f], [e, f]])
    assert graph.is_valid()
    assert sorted((s.name, t.name) for s, t in graph.G.edges()) == [
        ("a", "b"), ("b", "e"), ("c", "d"), ("c", "e"), ("d", "f"), ("e", "f")]
    assert [n.name for n in graph.topological_order()][-1] == "f"


def test_graph_subclass_defines_its_nodes_and_edges():
    class SimpleGraph(cp.Graph):
        def __init__(self):
            super().__init__()
            self.prod = cp.Node(name="prod")
            self.cons = cp.Node(name="cons")
            self.add_nodes_from([self.prod, self.cons])
            self.add_edge(src=self.prod, dst=self.cons)
            self.node_ids = [self.prod.id, self.cons.id]

    graph = SimpleGraph()
    assert graph.names() == ["prod", "cons"] and graph.inputs(graph.cons)[0][0] is graph.prod
    assert graph.get_id_by_name("cons") == graph.cons.id and graph.has_node_by_id(graph.prod.id)


def test_follow_overrides_the_first_input():
    hf, lf, sn = cp.Node(name="hf"), cp.Node(name="lf"), cp.Node(name="sn")
    graph = cp.Graph()
    graph.add_nodes_from([hf, lf, sn])
    graph.add_edge(src=hf, dst=sn)
    graph.add_edge(src=lf, dst=sn, follow=True)
    assert graph.followed(sn) is lf


def test_graph_from_a_networkx_digraph_and_node_objects_in_its_data():
    a, b = cp.Node(name="a"), cp.Node(name="b")
    g = nx.DiGraph()
    g.add_edge(a, b)
    graph = cp.Graph(g)
    assert graph.names() == ["a", "b"] and graph.G.has_edge(a, b)
    name_to_node = {data["object"].name: n for n, data in graph.G.nodes(data=True)}
    assert name_to_node == {"a": a, "b": b}


def test_a_cycle_is_refused():
    a, b = cp.Node(name="a"), cp.Node(name="b")
    graph = cp.Graph()
    graph.add_edges_from([(a, b), (b, a)])
    assert not graph.is_valid()


def test_data_chunk_records_meta_and_equality():
    before = time.time()
    chunk = cp.DataChunk()
    chunk.add("frame", (np.random.rand(10, 10, 3) * 255).astype(np.uint8), "image")
    chunk.add("value", {"a": [1, 2.5, "x"]})
    meta = chunk.get("meta")
    assert meta["content-type"] == "meta" and meta["value"]["ownership"] == []
    assert before <= meta["value"]["created"].timestamp() <= time.time()
    assert chunk.get("value")["value"] == {"a": [1, 2.5, "x"]}

    same = cp.DataChunk()
    same.add("frame", chunk.get("frame")["value"].copy(), "image")
    same.add("value", {"a": [1, 2.5, "x"]})
    assert chunk == same
    same.add("value", {"a": [1, 2.5, "y"]})
    assert chunk != same
    other = cp.DataChunk()
    other.add("frame", chunk.get("frame")["value"], "other")
    other.add("value", {"a": [1, 2.5, "x"]})
    assert chunk != other  # content types differ


def test_data_chunk_to_json_and_back():
    chunk = cp.DataChunk()
    chunk.add("image", (np.random.rand(10, 10, 3) * 255).astype(np.uint8), content_type="image")
    chunk.add("nested", {"t": (1, 2), "raw": b"\x00\x01", "inner": cp.DataChunk()})
    text = json.dumps(chunk.to_json())
    back = cp.DataChunk.from_json(json.loads(text))
    assert back == chunk and back.created == chunk.created
    assert back.get("image")["value"].dtype == np.uint8 and back.get("nested")["value"]["t"] == (1, 2)


def test_json_refuses_arbitrary_objects_unless_pickling_is_allowed():
    chunk = cp.DataChunk()
    chunk.add("odd", {1, 2})
    with pytest.raises(TypeError, match="allow_pickle"):
        chunk.to_json()
    encoded = chunk.to_json(allow_pickle=True)
    with pytest.raises(ValueError, match="allow_pickle"):
        cp.DataChunk.from_json(encoded)
    assert cp.DataChunk.from_json(encoded, allow_pickle=True).get("odd")["value"] == {1, 2}


def test_a_chunk_built_by_hand_has_a_time():
    before = time.time()
    chunk = cp.DataChunk()
    chunk.add("frame", np.zeros((4, 4, 3), np.uint8), "image")
    assert chunk.produced_at is None and before <= chunk.time == chunk.created <= time.time()
    chunk.produced_at = chunk.created + 1.0  # once sent, the production time counts
    assert chunk.time == chunk.created + 1.0


def test_cp_debug_logs_to_the_terminal(capfd):
    cp.debug()
    try:
        cp._logger.getLogger("chimerapy.compat-test").debug("hello from the debug logger")
        assert "hello from the debug logger" in capfd.readouterr().err
        assert logging.getLogger("chimerapy").level == logging.DEBUG
    finally:
        cp.debug(False)
