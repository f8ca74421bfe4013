"""Node packs in tests: checks that a pack declares itself as the core's registry expects, and fake packs."""

from __future__ import annotations

import importlib
import importlib.metadata
import textwrap
from pathlib import Path


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


def fake_pack(root: Path, dist: str, version: str, module: str, nodes: dict[str, str], source: str) -> None:
    """Write an 'installed' pack into ``root`` (put it on sys.path): a module and a dist-info
    declaring ``nodes`` (registry name -> class name) as entry points."""
    (root / f"{module}.py").write_text(textwrap.dedent(source))
    info = root / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    lines = "\n".join(f"{name} = {module}:{cls}" for name, cls in nodes.items())
    (info / "entry_points.txt").write_text(f"[chimerapy.nodes]\n{lines}\n")
