"""Graph building and validation."""

import logging

import networkx as nx
import pytest

import chimerapy as cp


def nodes(*names):
    return [cp.Node(name) for name in names]


def test_build_and_follow_default():
    a, b, c = nodes("a", "b", "c")
    graph = cp.Graph()
    graph.add_nodes([a, b, c])
    graph.add_edges([(a, c), (b, c)])
    assert graph.is_valid()
    assert graph.followed(c) is a
    graph.add_edge(b, c, follow=True)
    assert graph.followed(c) is b
    assert [n.name for n in graph.topological_order()][-1] == "c"


def test_only_one_followed_input():
    a, b, c = nodes("a", "b", "c")
    graph = cp.Graph()
    graph.add_edge(a, c, follow=True)
    with pytest.raises(cp.GraphError, match="already follows 'a'"):
        graph.add_edge(b, c, follow=True)


def test_cycle_is_named():
    a, b, c = nodes("a", "b", "c")
    graph = cp.Graph()
    graph.add_edges([(a, b), (b, c), (c, a)])
    assert not graph.is_valid()
    with pytest.raises(cp.GraphError, match="cycle: (a -> b -> c -> a|b -> c -> a -> b|c -> a -> b -> c)"):
        graph.validate()


def test_shared_names_get_unique_names_and_self_loops_are_refused(caplog):
    first, second, third = nodes("a", "a", "a")
    taken = cp.Node("a-2")  # a node already named like a derived name keeps its name
    graph = cp.Graph()
    graph.add_nodes([first, second, taken, third])
    assert graph.names() == ["a", "a", "a-2", "a"]
    assert list(graph.unique_names().values()) == ["a", "a-3", "a-2", "a-4"]
    assert graph.unique_name(second) == "a-3" and graph.unique_names() == graph.unique_names()
    assert graph.node(second.id) is second and graph.node("a-3") is second and graph.node("a-2") is taken
    with pytest.raises(cp.GraphError, match=r"3 nodes are named 'a'.*its id"):
        graph.node("a")
    with caplog.at_level(logging.WARNING, logger="chimerapy.graph"):
        assert graph.get_id_by_name("a") == third.id  # the last one added, as 0.0.10 gave it
    assert "3 nodes are named 'a'" in caplog.text
    assert [n["name"] for n in graph.to_dict()["nodes"]] == ["a", "a-3", "a-2", "a-4"]
    assert [n["node_name"] for n in graph.to_dict()["nodes"]] == ["a", "a", "a-2", "a"]
    b = cp.Node("b")
    with pytest.raises(cp.GraphError, match="itself"):
        graph.add_edge(b, b)


def test_from_networkx_and_lookup():
    a, b = nodes("a", "b")
    g = nx.DiGraph()
    g.add_edge(a, b)
    graph = cp.Graph(g)
    assert graph.node("b") is b and graph.node(a.id) is a
    with pytest.raises(cp.GraphError, match="no node named 'zz'"):
        graph.node("zz")
    assert graph.to_dict()["edges"] == [{"source": "a", "target": "b", "follow": False, "latest_only": False}]


def test_empty_graph_and_non_nodes():
    with pytest.raises(cp.GraphError, match="empty"):
        cp.Graph().validate()
    with pytest.raises(cp.GraphError, match="Node instances"):
        cp.Graph().add_node("a")


def test_plot_uses_matplotlib_when_installed(tmp_path):
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    a, b = nodes("a", "b")
    graph = cp.Graph()
    graph.add_edge(a, b)
    figure = graph.plot(font_size=10, node_size=300)
    figure.savefig(tmp_path / "g.png")
    assert (tmp_path / "g.png").stat().st_size > 0


def test_derived_names_follow_the_name_rule_at_the_longest():
    from chimerapy.names import MAX_NAME_LENGTH, is_valid_name

    long = "x" * MAX_NAME_LENGTH
    unique = cp.Graph()
    twins = nodes(long, long, long)
    unique.add_nodes(twins)
    names = list(unique.unique_names().values())
    assert names[0] == long and len(set(names)) == 3
    assert all(is_valid_name(name) and len(name) <= MAX_NAME_LENGTH for name in names)
    assert names[1].endswith("-2") and names[2].endswith("-3")


def test_two_inputs_of_one_name_are_refused_naming_the_node_and_both_producers():
    cam_a, cam_b, merge = nodes("cam", "cam", "merge")
    graph = cp.Graph()
    graph.add_edges([(cam_a, merge), (cam_b, merge)])
    assert graph.is_valid()  # a DAG; but it cannot run
    with pytest.raises(cp.GraphError, match=rf"node 'merge' has two inputs named 'cam' \(ids '{cam_a.id}' and "
                                            rf"'{cam_b.id}', unique names 'cam' and 'cam-2'\).*rename one"):
        graph.validate()
