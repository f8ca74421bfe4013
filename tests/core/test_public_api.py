"""The public API of `import chimerapy as cp` is pinned."""

import inspect

import chimerapy as cp


def test_all_is_pinned():
    assert sorted(cp.__all__) == sorted([
        "AuthenticationError", "ChimeraPyError", "CommitError", "DataChunk", "Graph", "GraphError",
        "Manager", "MappingError", "Node", "NodeError", "ProtocolError", "RecordError",
        "RegistryError", "StateError", "Worker", "WorkerLostError", "__version__", "open_session",
        "register", "debug",
    ])
    for name in cp.__all__:
        assert hasattr(cp, name)


def test_seed_signatures():
    def params(callable_):
        return list(inspect.signature(callable_).parameters)

    assert params(cp.Node.__init__)[:4] == ["self", "name", "debug", "debug_port"]
    assert params(cp.Worker.__init__)[:5] == ["self", "name", "port", "delete_temp", "id"]
    assert params(cp.Worker.connect)[:4] == ["self", "host", "port", "timeout"]
    assert params(cp.Manager.__init__)[:6] == [
        "self", "logdir", "port", "max_num_of_workers", "publish_logs_via_zmq", "dashboard_api"]
    assert params(cp.Manager.commit_graph)[:4] == ["self", "graph", "mapping", "send_packages"]
    assert params(cp.Graph.plot)[:3] == ["self", "font_size", "node_size"]
    for method in ("step", "start", "stop", "shutdown"):
        assert callable(getattr(cp.Manager, method))
    for method in ("prep", "step", "teardown", "main"):
        assert callable(getattr(cp.Node, method))
    assert inspect.signature(cp.Worker.__init__).parameters["port"].default == 10000
    assert inspect.signature(cp.Manager.__init__).parameters["port"].default == 9000


def test_errors_inherit_the_builtin_they_resemble():
    assert issubclass(cp.GraphError, ValueError) and issubclass(cp.WorkerLostError, ConnectionError)
    assert issubclass(cp.AuthenticationError, PermissionError) and issubclass(cp.RegistryError, LookupError)
    assert all(issubclass(getattr(cp, n), cp.ChimeraPyError) for n in cp.__all__ if n.endswith("Error"))
