"""Registry of the systems under test, selectable by group name with ``--systems``."""

from __future__ import annotations

from collections.abc import Callable

from benchmarks.systems.base import System
from benchmarks.systems.chimerapy_family import (
    ChimeraPy,
    ChimeraPy0010,
    ChimeraPyBaseline,
    ChimeraPyInPlace,
    ChimeraPyWritten,
    Engine,
)
from benchmarks.systems.dora import Dora
from benchmarks.systems.limits import limits

GROUPS: dict[str, Callable[[], list[System]]] = {
    "limits": limits,
    "chimerapy": lambda: [ChimeraPy()],
    "chimerapy-written": lambda: [ChimeraPyWritten()],
    "chimerapy-inplace": lambda: [ChimeraPyInPlace()],
    "chimerapy-baseline": lambda: [ChimeraPyBaseline()],
    "cp0010": lambda: [ChimeraPy0010()],
    "engine": lambda: [Engine()],
    "dora": lambda: [Dora()],
}

#: What ``run`` measures unless told: the limits, this project and its peers (the variants of
#: this project are asked for by name).
DEFAULT_GROUPS = ["limits", "chimerapy", "cp0010", "engine", "dora"]


def select(groups: list[str]) -> list[System]:
    """Systems of the named groups, in the order given."""
    unknown = [g for g in groups if g not in GROUPS]
    if unknown:
        raise ValueError(f"unknown system(s) {unknown}; choose from {', '.join(GROUPS)}")
    return [system for group in groups for system in GROUPS[group]()]


__all__ = ["DEFAULT_GROUPS", "GROUPS", "System", "select"]
