"""The Worker side: the Worker, its node processes (supervisor and launcher) and its files."""

from __future__ import annotations

from typing import Any

__all__ = ["Worker"]


def __getattr__(name: str) -> Any:
    # Loaded on first use: the launcher (``python -m chimerapy.worker.launcher``) must not pay
    # for aiohttp.
    if name == "Worker":
        from .worker import Worker

        return Worker
    raise AttributeError(f"module 'chimerapy.worker' has no attribute {name!r}")
