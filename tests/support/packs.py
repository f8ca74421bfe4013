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
