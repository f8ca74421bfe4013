"""Control-plane messages: typed JSON envelopes with request ids and replies, as pure code.

Every control message (Manager <-> Worker over a WebSocket, Worker <-> node process over a
ZeroMQ pair) is one JSON object::

    {"type": "start", "id": 7, "data": {...}}                     a request (expects a reply)
    {"type": "stats", "data": {...}}                              an event (no reply)
    {"type": "reply", "reply_to": 7, "ok": true, "data": {...}}   the reply to request 7
    {"type": "reply", "reply_to": 7, "ok": false, "error": "..."}

:func:`decode` checks the shape and the known types' required fields and raises
:class:`ProtocolError` for anything else, so that a malformed, truncated or oversized message
gets a clear error and never reaches a handler. :class:`Requests` pairs replies with requests.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

from ..errors import ProtocolError

__all__ = ["MAX_MESSAGE_BYTES", "Envelope", "Requests", "decode", "encode"]

#: The largest control message accepted (node code travels in commit requests).
MAX_MESSAGE_BYTES = 256 * 1024 * 1024

#: Known message types and the data fields each must carry.
REQUIRED_FIELDS: dict[str, tuple[str, ...]] = {
    "reply": (),
    # Worker <-> Manager, before anything else: the token proof (see net/handshake.py)
    "auth_hello": ("nonce",),
    "auth_challenge": ("nonce", "proof"),
    "auth_proof": ("proof",),
    # Worker -> Manager
    "register": ("name", "id"),
    "heartbeat": (),
    "clock_probe": ("sent",),
    "node_state": ("node", "state"),
    "node_error": ("node", "phase", "traceback"),
    "stats": ("nodes",),
    "node_stats": ("stats",),
    "log": ("records",),
    "preview": ("node", "records"),
    # Manager -> Worker
    "create_nodes": ("session", "nodes"),
    "connect_nodes": ("inputs",),
    "start": (),
    "step": (),
    "record": (),  # previewing nodes begin saving (also Worker -> node process)
    "stop": (),
    "gather": (),
    "destroy_nodes": (),
    "offer_packages": ("packages",),
    "install_packages": ("packages",),
    "list_files": ("session",),
    "delete_files": ("session",),
    "call_method": ("node", "method"),
    "shutdown": (),
    # Worker <-> node process
    "hello": ("node",),
    "load": ("spec",),
    "loaded": ("addresses",),
    "connect": ("inputs", "consumers"),
    "connected": (),
    "clock": ("offset",),
    "stopped": ("stats",),
    "call": ("node", "method"),
    "exit": (),
}


@dataclass
class Envelope:
    """One control message; see the module docstring for the three forms."""

    type: str
    data: dict[str, Any] = field(default_factory=dict)
    id: int | None = None
    reply_to: int | None = None
    ok: bool = True
    error: str | None = None

    def reply(self, data: dict[str, Any] | None = None) -> Envelope:
        """The successful reply to this request."""
        return Envelope("reply", data or {}, reply_to=self.id)

    def fail(self, error: str, data: dict[str, Any] | None = None) -> Envelope:
        """The failure reply to this request, carrying ``error``."""
        return Envelope("reply", data or {}, reply_to=self.id, ok=False, error=error)


def encode(envelope: Envelope) -> str:
    """Serialise ``envelope`` to JSON text."""
    message: dict[str, Any] = {"type": envelope.type, "data": envelope.data}
    if envelope.id is not None:
        message["id"] = envelope.id
    if envelope.type == "reply":
        message["reply_to"] = envelope.reply_to
        message["ok"] = envelope.ok
        if envelope.error is not None:
            message["error"] = envelope.error
    return json.dumps(message, separators=(",", ":"), default=_jsonable)


def decode(raw: str | bytes) -> Envelope:
    """Parse and check one control message.

    Raises:
        ProtocolError: naming what is wrong (size, JSON, type, missing field).
    """
    if len(raw) > MAX_MESSAGE_BYTES:
        raise ProtocolError(f"control message of {len(raw)} bytes exceeds {MAX_MESSAGE_BYTES}")
    try:
        message = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError) as error:
        raise ProtocolError(f"control message is not valid JSON: {type(error).__name__}: {str(error)[:200]}") from None
    if not isinstance(message, dict):
        raise ProtocolError("control message must be a JSON object")
    kind = message.get("type")
    if kind not in REQUIRED_FIELDS:
        raise ProtocolError(f"unknown control message type {kind!r}")
    data = message.get("data", {})
    if not isinstance(data, dict):
        raise ProtocolError(f"{kind}: 'data' must be an object")
    missing = [name for name in REQUIRED_FIELDS[kind] if name not in data]
    if missing:
        raise ProtocolError(f"{kind}: missing field(s) {missing}")
    request_id = message.get("id")
    if request_id is not None and (not isinstance(request_id, int) or isinstance(request_id, bool)):
        raise ProtocolError(f"{kind}: 'id' must be an integer")
    envelope = Envelope(kind, data, id=request_id)
    if kind == "reply":
        reply_to, ok = message.get("reply_to"), message.get("ok")
        if not isinstance(reply_to, int) or not isinstance(ok, bool):
            raise ProtocolError("reply: needs an integer 'reply_to' and a boolean 'ok'")
        problem = message.get("error")
        envelope.reply_to, envelope.ok = reply_to, ok
        envelope.error = None if problem is None else str(problem)
    return envelope


class Requests:
    """Pairs replies with the requests this side sent (one instance per connection)."""

    def __init__(self) -> None:
        self._next_id = 0
        self._pending: dict[int, asyncio.Future[Envelope]] = {}

    def new(self, kind: str, data: dict[str, Any] | None = None) -> tuple[Envelope, asyncio.Future]:
        """A request envelope with a fresh id and the future its reply will complete."""
        self._next_id += 1
        future: asyncio.Future[Envelope] = asyncio.get_running_loop().create_future()
        self._pending[self._next_id] = future
        return Envelope(kind, data or {}, id=self._next_id), future

    def resolve(self, reply: Envelope) -> bool:
        """Complete the request ``reply`` answers; False for an unknown or late reply."""
        future = self._pending.pop(reply.reply_to, None) if reply.reply_to is not None else None
        if future is None or future.done():
            return False
        future.set_result(reply)
        return True

    def forget(self, request_id: int | None) -> None:
        """Drop a request that timed out."""
        if request_id is not None:
            self._pending.pop(request_id, None)

    def fail_all(self, error: BaseException) -> None:
        """Fail every pending request (the connection is gone)."""
        for future in self._pending.values():
            if not future.done():
                future.set_exception(error)
        self._pending.clear()


def _jsonable(value: Any) -> Any:
    try:
        import numpy as np

        if isinstance(value, np.generic):
            return value.item()
    except ImportError:  # pragma: no cover - numpy is a core dependency
        pass
    if isinstance(value, (set, tuple)):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")
