"""Shutdown steps that take longer than they should are named in the log.

A shutdown that hangs rarely hangs the same way twice: the step that waited is named when it
happens (with how long it took), so that one occurrence in a long log says where to look.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable
from typing import TypeVar

__all__ = ["SLOW_STEP", "named_if_slow"]

#: Seconds after which a shutdown step is reported.
SLOW_STEP = 1.0

log = logging.getLogger("chimerapy.worker")

T = TypeVar("T")


async def named_if_slow(step: Awaitable[T], who: str, what: str) -> T:
    """Await ``step``; if it took more than :data:`SLOW_STEP`, warn that ``who``'s ``what`` did."""
    began = time.monotonic()
    try:
        return await step
    finally:
        took = time.monotonic() - began
        if took > SLOW_STEP:
            log.warning("%s: shutting down, %s took %.1f s", who, what, took)
