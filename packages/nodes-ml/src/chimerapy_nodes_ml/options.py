"""Checks for node options, run when a node is created (errors name the node and the option)."""

from __future__ import annotations

import math
from typing import Any, Literal, overload

__all__ = ["check_int", "check_number"]


@overload
def check_number(
    value: Any, option: str, what: str, *, low: float = ..., high: float = ...,
    optional: Literal[False] = ...,
) -> float: ...
@overload
def check_number(
    value: Any, option: str, what: str, *, low: float = ..., high: float = ..., optional: bool
) -> float | None: ...
def check_number(
    value: Any,
    option: str,
    what: str,
    *,
    low: float = 0.0,
    high: float = math.inf,
    optional: bool = False,
) -> float | None:
    """``value`` as a float in ``[low, high]`` (``None`` if ``optional``), else ValueError."""
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        bounds = f"from {low} to {high}" if math.isfinite(high) else f">= {low}"
        raise ValueError(f"{what}: {option} must be a number {bounds}, got {value!r}")
    return float(value)


@overload
def check_int(
    value: Any, option: str, what: str, *, low: int = ..., optional: Literal[False] = ...
) -> int: ...
@overload
def check_int(value: Any, option: str, what: str, *, low: int = ..., optional: bool) -> int | None: ...
def check_int(
    value: Any, option: str, what: str, *, low: int = 1, optional: bool = False
) -> int | None:
    """``value`` as an int ``>= low`` (``None`` passes when ``optional``), else ValueError."""
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{what}: {option} must be an int >= {low}, got {value!r}")
    return value
