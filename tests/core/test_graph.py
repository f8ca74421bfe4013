"""Graph building and validation."""

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


def test_duplicate_names_and_self_loops():
    graph = cp.Graph()
    graph.add_node(cp.Node("a"))
    with pytest.raises(cp.GraphError, match="two nodes are named 'a'"):
        graph.add_node(cp.Node("a"))
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
