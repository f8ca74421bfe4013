"""Checks that a node pack declares itself as the core's registry expects."""

from __future__ import annotations

import importlib
import importlib.metadata


def assert_declared(distribution: str, module: str, targets: dict[str, str]) -> None:
    """The pack's entry points are exactly ``targets`` (registry name -> "module:Class"), its
    version is its package's, and it depends on the core by range."""
    entries = importlib.metadata.entry_points(group="chimerapy.nodes")
    ours = {e.name: e.value for e in entries if e.value.startswith(module + ".")}
    assert ours == targets
    dist = importlib.metadata.distribution(distribution)
    assert dist.version == importlib.import_module(module).__version__
    assert any(r.startswith("chimerapy-core") and ">=0.1" in r and "<0.2" in r for r in dist.requires)


def load(target: str) -> type:
    """The class a "module:Class" target names."""
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def assert_node_conventions(cls: type, kind: str, **options) -> None:
    """``cls`` follows the pack conventions: a Node declaring ``kind``, a one-line summary, a
    named default ``name`` then typed keyword-only options with defaults, and instances that a
    Worker receives intact (plain options only, nothing opened before prep)."""
    import inspect
    import pickle

    import chimerapy as cp

    assert issubclass(cls, cp.Node) and cls.__dict__["kind"] == kind
    summary = inspect.getdoc(cls).splitlines()[0]
    assert summary.endswith(".") and len(summary) < 100, summary
    first, *rest = list(inspect.signature(cls.__init__).parameters.values())[1:]
    assert first.name == "name" and isinstance(first.default, str) and first.default
    for option in rest:
        assert option.kind is option.KEYWORD_ONLY, option
        assert option.annotation is not option.empty and option.default is not option.empty, option
    node = cls(**options)
    assert node.name == first.default
    clone = pickle.loads(pickle.dumps(node))
    assert {k: v for k, v in vars(clone).items() if k != "_runtime"} == {
        k: v for k, v in vars(node).items() if k != "_runtime"}
