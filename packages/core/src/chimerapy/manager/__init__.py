"""The Manager side: the Manager, its HTTP server, commit planning, sessions, events, collection."""

from __future__ import annotations

from typing import Any

__all__ = ["Manager"]


def __getattr__(name: str) -> Any:
    # Loaded on first use, so that importing a sibling module (sessions, events) stays light.
    if name == "Manager":
        from .manager import Manager

        return Manager
    raise AttributeError(f"module 'chimerapy.manager' has no attribute {name!r}")
