"""JSON in and out for the Manager's REST API: bodies, responses, and errors as ``{"error": ...}``.

Handlers raise :class:`ApiError` (or let a ChimeraPy error through); :func:`error_middleware`
answers every failure under ``/api`` with a 4xx JSON body that names what was wrong and the fix:

    ApiError                 its own status (400 malformed body, 404 unknown session ...)
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

__all__ = ["ApiError", "dumps", "error_middleware", "json_response", "read_json"]

log = logging.getLogger(__name__)

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


async def read_json(request: web.Request, *, what: str) -> Any:
    """The request's JSON body (raises ApiError 400 naming ``what`` was expected)."""
    text = await request.text()
    if not text.strip():
        raise ApiError(400, f"the body is empty; send {what} as JSON")
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise ApiError(400, f"the body is not valid JSON ({error.msg} at line {error.lineno}, "
                            f"column {error.colno}); send {what} as JSON") from None


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
