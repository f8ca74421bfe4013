"""JSON in and out for the Manager's REST API: bodies, responses, and errors as ``{"error": ...}``.

Handlers raise :class:`ApiError` (or let a ChimeraPy error through); :func:`error_middleware`
answers every failure under ``/api`` with a 4xx JSON body that names what was wrong and the fix:

    ApiError                 its own status (400 malformed body, 413 body too large, 404 unknown session ...)
    PipelineError            400, with ``problems`` as a list of ``{"path", "message"}``
    GraphError, MappingError, RegistryError   400
    CommitError              422, with each failing node's ``errors`` (node, phase, traceback)
    StateError, WorkerLostError               409: the call does not fit the cluster's state
    anything else            500 (logged with its traceback)
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from ..errors import (
    ChimeraPyError,
    CommitError,
    GraphError,
    MappingError,
    RegistryError,
    StateError,
    WorkerLostError,
)
from ..pipeline import PipelineError

__all__ = ["MAX_JSON_BYTES", "MAX_JSON_DEPTH", "ApiError", "dumps", "error_middleware", "json_response", "read_json"]

log = logging.getLogger(__name__)

#: The largest JSON body a request may carry (a pipeline of 1,000 nodes is far smaller).
MAX_JSON_BYTES = 4 * 1024 * 1024
#: The deepest nesting of objects and lists a JSON body may have.
MAX_JSON_DEPTH = 64
_TOO_DEEP = object()

#: json.dumps that writes values JSON cannot hold (paths, numpy scalars) as strings.
dumps = functools.partial(json.dumps, default=str)


class ApiError(ChimeraPyError):
    """A request the API refuses: ``status`` and a message naming the problem and the fix."""

    def __init__(self, status: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.extra = extra


def json_response(data: Any, status: int = 200) -> web.Response:
    """``data`` as a JSON response (values JSON cannot hold are written as strings)."""
    return web.json_response(data, status=status, dumps=dumps)


async def read_json(request: web.Request, *, what: str, limit: int = MAX_JSON_BYTES) -> Any:
    """The request's JSON body, read up to ``limit`` bytes.

    Raises:
        ApiError: 413 for a body over ``limit`` (refused before it is read whole), 400 for an
            empty body, one that is not UTF-8 JSON, or one nested deeper than
            :data:`MAX_JSON_DEPTH`; each names the problem and ``what`` was expected.
    """
    raw = await _read_capped(request, limit)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ApiError(400, f"the body is not UTF-8 text (byte {error.start} cannot be decoded); "
                            f"send {what} as JSON") from None
    if not text.strip():
        raise ApiError(400, f"the body is empty; send {what} as JSON")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise ApiError(400, f"the body is not valid JSON ({error.msg} at line {error.lineno}, "
                            f"column {error.colno}); send {what} as JSON") from None
    except RecursionError:
        data = _TOO_DEEP
    if data is _TOO_DEEP or _depth_exceeds(data, MAX_JSON_DEPTH):
        raise ApiError(400, f"the body is nested more than {MAX_JSON_DEPTH} levels deep; send {what} as JSON "
                            f"with at most {MAX_JSON_DEPTH} levels of objects and lists")
    return data


async def _read_capped(request: web.Request, limit: int) -> bytes:
    """The body, refused with 413 as soon as it is known to exceed ``limit`` bytes."""
    too_large = ApiError(413, f"the body is larger than {limit} bytes, the most a JSON request may carry")
    if request.content_length is not None and request.content_length > limit:
        raise too_large
    parts, size = [], 0
    async for block in request.content.iter_chunked(1 << 16):
        size += len(block)
        if size > limit:
            raise too_large
        parts.append(block)
    return b"".join(parts)


def _depth_exceeds(data: Any, limit: int) -> bool:
    """Whether ``data`` nests objects and lists more than ``limit`` deep (iterative: no recursion)."""
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            children: Any = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


def _as_api_error(error: Exception) -> ApiError | None:
    """The API answer for a ChimeraPy error, or None for an unexpected one."""
    if isinstance(error, PipelineError):
        problems = [{"path": path, "message": message} for path, message in error.problems]
        return ApiError(400, str(error), problems=problems)
    if isinstance(error, CommitError):
        errors = [{"node": e.node, "phase": e.phase, "worker": e.worker, "traceback": e.remote_traceback}
                  for e in error.errors]
        return ApiError(422, error.args[0], errors=errors)
    if isinstance(error, (GraphError, MappingError, RegistryError)):
        return ApiError(400, str(error))
    if isinstance(error, (StateError, WorkerLostError)):
        return ApiError(409, str(error))
    return None


def _routes(app: web.Application) -> list[str]:
    """``METHOD /path`` of every API route."""
    return sorted({f"{route.method} {route.resource.canonical}" for route in app.router.routes()
                   if route.resource is not None and route.resource.canonical.startswith("/api")
                   and route.method != "HEAD"})


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Answer every failure of an ``/api`` route as JSON ``{"error": ...}``."""
    if not request.path.startswith("/api"):
        return await handler(request)
    try:
        return await handler(request)
    except ApiError as error:
        problem = error
    except web.HTTPException as error:
        if error.status < 400:
            raise
        hint = f"; the API routes: {', '.join(_routes(request.app))}" if error.status in (404, 405) else ""
        problem = ApiError(error.status, f"{request.method} {request.path}: {error.reason}{hint}")
    except Exception as error:
        known = _as_api_error(error)
        if known is None:
            log.exception("API %s %s failed", request.method, request.path)
            known = ApiError(500, f"{request.method} {request.path} failed: {type(error).__name__}: {error}")
        problem = known
    return json_response({"error": str(problem), **problem.extra}, status=problem.status)
