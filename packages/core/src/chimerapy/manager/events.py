"""EventHub: the Manager's stream of live events (states, stats, errors, logs, previews).

Events are JSON-ready dicts with a ``"type"``: ``state``, ``workers``, ``node_state``,
``stats``, ``error``, ``log``, ``preview``, ``collect``. Publishing never blocks; each subscriber
has a bounded queue, and a subscriber that falls behind loses its oldest events (and is told
how many in a ``dropped`` event) rather than slowing the cluster.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

__all__ = ["EventHub"]


class EventHub:
    """Fans events out to subscribers on one event loop.

    Args:
        loop: the loop that subscribers await on.
        queue_size: events a subscriber may have pending before the oldest are dropped.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, queue_size: int = 1000) -> None:
        self._loop = loop
        self._queue_size = queue_size
        self._subscribers: set[asyncio.Queue] = set()

    def publish(self, event: dict[str, Any]) -> None:
        """Send ``event`` to every subscriber (callable from any thread)."""
        event.setdefault("time", time.time())
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            self._fan_out(event)
        elif not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._fan_out, event)

    def subscribe(self) -> asyncio.Queue:
        """A new queue receiving every later event (call on the hub's loop)."""
        queue: asyncio.Queue = asyncio.Queue(self._queue_size)
        self._subscribers.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue) -> None:
        """Stop delivering to ``queue``."""
        self._subscribers.discard(queue)

    def _fan_out(self, event: dict[str, Any]) -> None:
        for queue in self._subscribers:
            if queue.full():
                dropped = 0
                while queue.qsize() > self._queue_size // 2:
                    queue.get_nowait()
                    dropped += 1
                queue.put_nowait({"type": "dropped", "count": dropped, "time": time.time()})
            queue.put_nowait(event)
